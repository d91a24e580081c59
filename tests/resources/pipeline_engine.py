"""A pipeline whose engine is duckdb: stages that say nothing run on DuckDB, a stage's own engine= wins."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage(partition="rows")
def words(lines):
    return lines


@sf.stage(engine="spark", memory="1GB")
def counts(words):
    return words


@sf.stage(engine="duckdb")
def top(counts):
    return counts


@sf.pipeline(engine="duckdb")
def on_duckdb():
    return top(counts(words(books)))


@sf.pipeline
def on_default():
    return top(counts(words(books)))
