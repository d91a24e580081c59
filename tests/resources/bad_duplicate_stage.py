"""Two different functions declare a stage called 'words'."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage
def words(lines):
    return lines


@sf.stage(name="words")
def tokens(lines):
    return lines


@sf.pipeline
def wordcount():
    return tokens(words(books))
