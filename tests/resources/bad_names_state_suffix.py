"""A stage named like the failure state of another ('<stage>-failed')."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage
def totals(lines):
    return lines


@sf.stage(name="totals-failed")
def failures(lines):
    return lines


@sf.pipeline
def report():
    return totals(books), failures(books)
