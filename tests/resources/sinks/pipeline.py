"""Sinks of every kind: per-customer totals and the large orders, each published two ways."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

orders = sf.source("orders", "orders.csv", schema="order_id INT, customer STRING, amount DOUBLE")

parquet_append = sf.sink("parquet_append", "tables/parquet_append/", mode="append")
delta_overwrite = sf.sink("delta_overwrite", "tables/delta_overwrite/", format="delta")
parquet_overwrite = sf.sink("parquet_overwrite", "tables/parquet_overwrite/", partition_cols="customer")
delta_append = sf.sink(
    "delta_append", "tables/delta_append/", format="delta", mode="append", partition_cols=["customer"]
)


@sf.stage(partition_by="customer")
def totals(orders: DataFrame) -> DataFrame:
    return orders.groupBy("customer").agg(F.round(F.sum("amount"), 2).alias("total"), F.count("*").alias("orders"))


@sf.stage(partition="rows")
def large(orders: DataFrame) -> DataFrame:
    return orders.where(F.col("amount") > 50)


@sf.pipeline
def sinks():
    by_customer = parquet_append(totals(orders))
    delta_overwrite(by_customer)
    big = delta_append(large(orders))
    parquet_overwrite(big)
    return by_customer, big
