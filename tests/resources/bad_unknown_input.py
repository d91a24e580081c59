"""A stage is given a plain string path instead of a source or another stage's output."""

import sparkflow as sf


@sf.stage
def words(lines):
    return lines


@sf.pipeline
def wordcount():
    return words("data/books/")
