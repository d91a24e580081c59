"""Whole stages of every size: the place pass puts each where it fits.

Beside it, placement.shrink.json (a fixture written for these tests, not a measurement) says the three aggregates
write a ten-thousandth of what they read, as a local run with --record-shrink would record: report then reads
54 MB and fits a function."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

clicks = sf.source("clicks", "data/clicks/", format="csv", size="3GB", header=True)
logs = sf.source("logs", "data/logs/", format="json", size="40GB")
archive = sf.source("archive", "data/archive/", format="parquet", size="500GB")


@sf.stage
def visitors(clicks: DataFrame) -> DataFrame:
    """3 GB whole: more than a 2 GB function takes, a small container."""
    return clicks.select("user").distinct()


@sf.stage(memory="4GB")
def sessions(logs: DataFrame) -> DataFrame:
    """40 GB whole: a big container on AWS; beyond Cloud Run jobs on GCP, so serverless Spark there."""
    return logs.groupBy("user").agg(F.count("*").alias("events"))


@sf.stage(timeout="3h")
def history(archive: DataFrame) -> DataFrame:
    """500 GB whole: no machine holds it; serverless Spark, for the hours the estimate gives it."""
    return archive.groupBy("user").agg(F.sum("amount").alias("spent"))


@sf.stage
def report(visitors: DataFrame, sessions: DataFrame, history: DataFrame) -> DataFrame:
    """Small inputs (the aggregates' outputs, shrunk as placement.shrink.json says): a function."""
    return visitors.join(sessions, "user", "left").join(history, "user", "left")


@sf.pipeline(storage="s3://bucket/sparkflow/")
def placement():
    return report(visitors(clicks), sessions(logs), history(archive))
