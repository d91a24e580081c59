"""A pipeline to resume: every form a stage runs in, then a last stage that refuses a bad input.

``paid`` (row-wise) runs fused inside ``spend``'s map tasks; ``spend`` is a key stage (split, map, reduce, commit);
``tidy`` is a row-wise split stage (split, map, commit) that ``statuses`` reads whole; ``report`` refuses a
negative fee in ``prices`` (the user's own exception: final, never retried), and ``summary`` depends on it. A run
whose ``prices`` holds a negative fee fails at ``report`` after every other stage committed; with the fee fixed,
resuming it runs only ``report`` and ``summary``.
"""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

orders = sf.source(
    "orders", "orders.csv", header=True, schema="order_id INT, customer_id INT, amount DOUBLE, status STRING"
)
prices = sf.source("prices", "prices.csv", header=True, schema="status STRING, fee DOUBLE")


@sf.stage(partition="rows")
def paid(orders: DataFrame) -> DataFrame:
    return orders.where(F.col("status") != "cancelled")


@sf.stage(partition_by="customer_id")
def spend(paid: DataFrame) -> DataFrame:
    return paid.groupBy("customer_id").agg(F.sum("amount").alias("spent"))


@sf.stage(partition="rows")
def tidy(orders: DataFrame) -> DataFrame:
    return orders.select("order_id", F.upper("status").alias("status"))


@sf.stage
def statuses(tidy: DataFrame) -> DataFrame:
    return tidy.groupBy("status").count()


@sf.stage
def report(spend: DataFrame, statuses: DataFrame, prices: DataFrame) -> DataFrame:
    negative = prices.where(F.col("fee") < 0).count()
    if negative:
        raise ValueError(f"prices holds {negative} negative fee(s): fix the prices file")
    fee = prices.agg(F.sum("fee").alias("fees"))
    return spend.crossJoin(statuses.agg(F.sum("count").alias("orders"))).crossJoin(fee)


@sf.stage
def summary(report: DataFrame) -> DataFrame:
    return report.agg(F.sum("spent").alias("spent"), F.max("orders").alias("orders"), F.max("fees").alias("fees"))


@sf.pipeline(storage="s3://bucket/sparkflow/", engine="duckdb")
def resumable():
    return summary(report(spend(paid(orders)), statuses(tidy(orders)), prices))
