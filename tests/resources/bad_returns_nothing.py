"""The pipeline calls its stage but forgets to return its output."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage
def words(lines):
    return lines


@sf.pipeline
def wordcount():
    words(books)
