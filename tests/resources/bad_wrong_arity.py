"""A one-input stage called with two inputs."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")
more_books = sf.source("more_books", "data/more/", format="text")


@sf.stage
def words(lines):
    return lines


@sf.pipeline
def wordcount():
    return words(books, more_books)
