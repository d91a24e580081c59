"""Sinks used wrongly: one given a value, one given a source, one published to twice, one named like a stage."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")
lines_table = sf.sink("lines_table", "tables/lines/")
count_table = sf.sink("count_table", "tables/count/")
raw_table = sf.sink("raw_table", "tables/raw/")
echo = sf.sink("echo", "tables/echo/")


@sf.stage
def echo_stage(lines):
    return lines


@sf.stage
def count(lines) -> int:
    return 0


@sf.stage(name="echo")
def shout(lines):
    return lines


@sf.pipeline
def bad_sinks():
    lines = echo_stage(books)
    lines_table(lines)
    lines_table(lines)
    count_table(count(books))
    raw_table(books)
    return echo(shout(lines))
