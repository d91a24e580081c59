"""Trigger mistakes, one per pipeline: each is a CompileError naming the line of its sf.on_new_objects(...)."""

import sparkflow as sf

books = sf.source("books", "s3://in-bucket/books/", format="text")
local = sf.source("local", "data/books/", format="text")
one_file = sf.source("one_file", "s3://in-bucket/books/2026.txt", format="text")
n = sf.param("n", type=int)


@sf.stage
def shout(lines):
    return lines


@sf.stage
def top(lines, n):
    return lines


@sf.pipeline(trigger=sf.on_new_objects("bookz"))
def misspelt():
    return shout(books)


@sf.pipeline(trigger=sf.on_new_objects("local"))
def local_folder():
    return shout(local)


@sf.pipeline(trigger=sf.on_new_objects("one_file"))
def one_object():
    return shout(one_file)


@sf.pipeline(trigger=sf.on_new_objects("books"))
def required_param():
    return top(books, n)


@sf.pipeline(storage="s3://in-bucket/", trigger=sf.on_new_objects("books"))
def writes_where_it_watches():
    return shout(books)
