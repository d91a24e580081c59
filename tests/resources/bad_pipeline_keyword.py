"""A pipeline keyword misspelt."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage
def counts(words):
    return words


@sf.pipeline(storag="s3://my-bucket/sparkflow/")
def wordcount():
    return counts(books)
