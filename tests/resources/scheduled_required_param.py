"""A scheduled pipeline whose parameter `n` has no default: a scheduled run would have no value for it."""

import sparkflow as sf

books = sf.source("books", "gs://bucket/books/", format="text")
n = sf.param("n", type=int)
label = sf.param("label", default="nightly")


@sf.stage
def top(lines, n, label):
    return lines.limit(n)


@sf.pipeline(schedule="rate(1 day)")
def nightly():
    return top(books, n, label)
