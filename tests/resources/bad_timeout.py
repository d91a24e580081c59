"""A stage forced onto a function may run longer than a Lambda function may (900 s)."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage(timeout="16m", placement="function")
def words(lines):
    return lines


@sf.pipeline
def wordcount():
    return words(books)
