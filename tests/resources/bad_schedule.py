"""A pipeline whose schedule has five fields (unix cron), not EventBridge's six."""

import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage(partition="rows")
def words(lines):
    return lines


@sf.pipeline(schedule="cron(0 3 * * *)")
def wordcount():
    return words(books)
