"""Stages whose partition declarations are wrong for their code (sparkflow verify must name each), and one that is
right. Every page occurs in every part of the file, so a split of the input shows each mistake."""

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

import sparkflow as sf

events = sf.source("events", "events.csv", schema="user STRING, page STRING, ms INT")


@sf.stage(partition="rows")
def slowest(events: DataFrame) -> DataFrame:
    """Sorts and limits: the three slowest of all events, not of each chunk."""
    return events.orderBy(F.desc("ms"), "user", "page").limit(3)


@sf.stage(partition="rows")
def pages(events: DataFrame) -> DataFrame:
    """Deduplicates the whole input."""
    return events.select("page").distinct()


@sf.stage(partition="rows")
def ranked(events: DataFrame) -> DataFrame:
    """A window over the whole input."""
    return events.withColumn("rank", F.row_number().over(Window.orderBy(F.desc("ms"), "user", "page")))


@sf.stage(partition_by="user")
def views(events: DataFrame) -> DataFrame:
    """Keyed by user, but it counts per page: rows of one page are spread over buckets."""
    return events.groupBy("page").count()


@sf.stage(partition_by="page")
def per_page(events: DataFrame) -> DataFrame:
    """Right: rows of one page meet in one bucket."""
    return events.groupBy("page").agg(F.count("*").alias("views"), F.max("ms").alias("slowest"))


@sf.stage(partition="rows")
def fast(events: DataFrame) -> DataFrame:
    """Right: a filter is row-wise."""
    return events.where(F.col("ms") < 100)


@sf.pipeline
def misdeclared():
    return slowest(events), pages(events), ranked(events), views(events), per_page(events), fast(events)
