"""A pipeline asks for an engine that does not exist."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage(partition="rows")
def words(lines):
    return lines


@sf.pipeline(engine="duckbd")
def wordcount():
    return words(books)
