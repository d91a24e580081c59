"""Slow pages: a diamond. Cleaned events feed two independent stages, per-page statistics and a latency
threshold (a small value, passed through the KV store), which meet again in the last stage."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

events = sf.source("events", "data/events.jsonl", format="json", size="2GB")


@sf.stage(partition="rows")
def clean(events: DataFrame) -> DataFrame:
    """Drop events without a page or a duration; normalise page paths."""
    return events.where(F.col("page").isNotNull() & F.col("ms").isNotNull()).select(
        F.lower(F.trim("page")).alias("page"), "user", F.col("ms").cast("long").alias("ms")
    )


@sf.stage(partition_by="page")
def page_stats(clean: DataFrame) -> DataFrame:
    """Views and mean latency per page."""
    return clean.groupBy("page").agg(F.count("*").alias("views"), F.round(F.avg("ms"), 1).alias("avg_ms"))


@sf.stage
def slow_threshold(clean: DataFrame) -> float:
    """The latency that 75% of events stay under: a single number, not a dataset."""
    return float(clean.agg(F.percentile("ms", 0.75)).first()[0])


@sf.stage(memory="1GB")
def slow_pages(page_stats: DataFrame, threshold: float) -> DataFrame:
    """Pages whose mean latency is over the threshold, slowest first."""
    return page_stats.where(F.col("avg_ms") > threshold).orderBy(F.desc("avg_ms"), "page")


@sf.pipeline(storage="s3://my-bucket/sparkflow/")
def clickstream():
    cleaned = clean(events)
    return slow_pages(page_stats(cleaned), slow_threshold(cleaned))
