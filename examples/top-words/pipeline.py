"""Top words: word count with two parameters, how many words to keep and how short a word may be.

`sparkflow run examples/top-words/pipeline.py --param n=5` keeps five; a deployed run takes them from its input
({"params": {"n": 5}}). Each stage function receives a plain int.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

# Word count's books (a relative location is resolved against this file's folder when run locally).
books = sf.source("books", "../wordcount/data/books/", format="text", size="40GB")
n = sf.param("n", default=3, type=int)
min_length = sf.param("min_length", default=1, type=int)


@sf.stage(partition="rows")
def words(lines: DataFrame, min_length: int) -> DataFrame:
    """One row per word of at least min_length letters: any split of the lines gives the same words."""
    found = lines.select(F.explode(F.split(F.lower("value"), r"[^a-z']+")).alias("word"))
    return found.where(F.length("word") >= max(min_length, 1))


@sf.stage(partition_by="word")
def counts(words: DataFrame) -> DataFrame:
    """All rows of one word must meet in one task to be counted."""
    return words.groupBy("word").count()


@sf.stage(memory="1GB")
def top(counts: DataFrame, n: int) -> DataFrame:
    """The n most frequent words (ties by word); needs all counts at once."""
    return counts.orderBy(F.desc("count"), "word").limit(n)


@sf.pipeline(name="top-words", storage="s3://my-bucket/sparkflow/")
def top_words():
    return top(counts(words(books, min_length)), n)
