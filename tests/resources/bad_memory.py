"""A stage forced onto a function asks for more memory than a Lambda function has (10,240 MB)."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage(memory="12GB", placement="function")
def words(lines):
    return lines


@sf.pipeline
def wordcount():
    return words(books)
