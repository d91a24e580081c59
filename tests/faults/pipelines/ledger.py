"""Fault trials' own pipeline: a rows stage, a key stage and a whole stage over generated CSV entries (the run
passes the entries' location; see ``tests/faults/driver.py``)."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

entries = sf.source("entries", "entries.csv", schema="id BIGINT, account STRING, amount BIGINT", header=True)


@sf.stage(partition="rows")
def postings(entries: DataFrame) -> DataFrame:
    """Entries that move money, with their side."""
    side = F.when(F.col("amount") > 0, F.lit("credit")).otherwise(F.lit("debit"))
    return entries.where(F.col("amount") != 0).withColumn("side", side)


@sf.stage(partition_by="account")
def balances(postings: DataFrame) -> DataFrame:
    """Balance and number of postings per account."""
    return postings.groupBy("account").agg(F.sum("amount").alias("balance"), F.count("*").alias("postings"))


@sf.stage
def largest(balances: DataFrame) -> DataFrame:
    """The five largest balances."""
    return balances.orderBy(F.desc("balance"), "account").limit(5)


@sf.pipeline(storage="s3://sparkflow-faults/")
def ledger() -> DataFrame:
    return largest(balances(postings(entries)))
