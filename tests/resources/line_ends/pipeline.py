"""A folder of CSV files exported on different systems: '\\n' line ends in one file, '\\r\\n' in the next."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

orders = sf.source("orders", "orders/", format="csv")
typed = sf.source("typed", "orders/", format="csv", schema="order_id INT, customer STRING, note STRING")


@sf.stage
def notes(orders: DataFrame) -> DataFrame:
    return orders.select("order_id", "customer", "note")


@sf.stage
def per_customer(typed: DataFrame) -> DataFrame:
    return typed.groupBy("customer").agg(F.count("*").alias("orders"), F.max("note").alias("last_note"))


@sf.pipeline
def line_ends():
    return notes(orders), per_customer(typed)
