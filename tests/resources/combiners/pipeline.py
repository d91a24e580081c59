"""Key stages that combine before their shuffle (combine=): two right combiners, a wrong one that sparkflow verify
must name, a merge that fails, and a stage whose output drops its key."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

events = sf.source("events", "../misdeclared/events.csv", schema="user STRING, page STRING, ms INT")


def merged(partials: DataFrame) -> DataFrame:
    """Views add up, the slowest of the slowest is the slowest."""
    return partials.groupBy("page").agg(F.sum("views").alias("views"), F.max("slowest").alias("slowest"))


@sf.stage(partition_by="page", combine=merged)
def per_page(events: DataFrame) -> DataFrame:
    return events.groupBy("page").agg(F.count("*").alias("views"), F.max("ms").alias("slowest"))


@sf.stage(partition_by="user", combine=True)
def longest(events: DataFrame) -> DataFrame:
    """Right with combine=True: the max of maxima, and the output has the input's columns."""
    return events.groupBy("user").agg(F.max("ms").alias("ms"))


@sf.stage(partition_by="page", combine=lambda partials: partials.groupBy("page").count())
def hits(events: DataFrame) -> DataFrame:
    """Wrong: the merge counts partial rows (one per chunk) instead of adding the partial counts."""
    return events.groupBy("page").count()


def broken(partials: DataFrame) -> DataFrame:
    raise ValueError("boom: partial counts do not merge")


@sf.stage(partition_by="page", combine=broken)
def failing(events: DataFrame) -> DataFrame:
    return events.groupBy("page").count()


@sf.stage(partition_by="page", combine=True)
def keyless(events: DataFrame) -> DataFrame:
    """Wrong: its output drops the key its partial results are shuffled by."""
    return events.groupBy("page").count().select("count")


@sf.pipeline
def combined():
    return per_page(events), longest(events)


@sf.pipeline
def miscombined():
    return hits(events)


@sf.pipeline
def broken_merge():
    return failing(events)


@sf.pipeline
def dropped_key():
    return keyless(events)
