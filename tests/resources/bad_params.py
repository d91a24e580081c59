"""Parameter mistakes, one per pipeline: each is a CompileError (or DefinitionError) naming its line."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")
n = sf.param("n", default=3)
other_n = sf.param("n", default=4)
words = sf.param("words", default="x")


@sf.stage
def top(lines, n):
    return lines


@sf.stage
def words_stage(lines):
    return lines


@sf.pipeline
def two_params_one_name():
    return top(top(books, n), other_n)


@sf.pipeline
def named_like_a_stage():
    return top(books, sf.param("top", default=1))


@sf.pipeline
def computed_in_the_pipeline():
    return top(books, n + 1)


@sf.pipeline
def a_literal():
    return top(books, 3)
