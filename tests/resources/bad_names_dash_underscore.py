"""Two stage names that GCP Workflows variables cannot tell apart ('-' becomes '_'); AWS states can."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage(name="daily-totals")
def with_dash(lines):
    return lines


@sf.stage(name="daily_totals")
def with_underscore(lines):
    return lines


@sf.pipeline
def totals():
    return with_dash(books), with_underscore(books)
