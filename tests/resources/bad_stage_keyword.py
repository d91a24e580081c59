"""A stage keyword misspelt."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage(partiton_by="word")
def counts(words):
    return words


@sf.pipeline
def wordcount():
    return counts(books)
