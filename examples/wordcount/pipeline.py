"""Word count: the hello world of data pipelines, with each stage declaring how it may be split."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

# A relative location is resolved against this file's folder when run locally; on AWS or GCP pass the real
# location in the run's input ({"sources": {"books": "s3://bucket/books/"}}).
books = sf.source("books", "data/books/", format="text", size="40GB")


@sf.stage(partition="rows")
def words(lines: DataFrame) -> DataFrame:
    """One row per word: any split of the lines gives the same words."""
    return lines.select(F.explode(F.split(F.lower("value"), r"[^a-z']+")).alias("word")).where("word != ''")


def summed(partials: DataFrame) -> DataFrame:
    """Partial counts of the same word, from different chunks, add up."""
    return partials.groupBy("word").agg(F.sum("count").alias("count"))


@sf.stage(partition_by="word", combine=summed)
def counts(words: DataFrame) -> DataFrame:
    """All rows of one word must meet in one task to be counted; each chunk counts its words first (combine=),
    so only one row per word and chunk is shuffled."""
    return words.groupBy("word").count()


@sf.stage(memory="1GB")
def top(counts: DataFrame) -> DataFrame:
    """The twenty most frequent words; needs all counts at once."""
    return counts.orderBy(F.desc("count"), "word").limit(20)


@sf.pipeline(storage="s3://my-bucket/sparkflow/")
def wordcount():
    return top(counts(words(books)))
