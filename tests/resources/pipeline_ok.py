"""A correct pipeline: the base the error cases differ from (and the one compiled for an unknown target)."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage(partition="rows")
def words(lines):
    return lines


@sf.pipeline
def wordcount():
    return words(books)
