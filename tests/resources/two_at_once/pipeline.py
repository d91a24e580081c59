"""Two whole stages over one source, which one DuckDB process is asked to run at the same time."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

orders = sf.source("orders", "orders.csv", schema="order_id INT, customer_id INT, amount DOUBLE, order_date DATE")


@sf.stage
def per_customer(orders: DataFrame) -> DataFrame:
    return orders.groupBy("customer_id").agg(F.sum("amount").alias("total"), F.count("*").alias("orders"))


@sf.stage
def per_day(orders: DataFrame) -> DataFrame:
    return orders.where(F.col("amount") > 10).groupBy("order_date").agg(F.max("amount").alias("top"))


@sf.pipeline
def two_at_once():
    return per_customer(orders), per_day(orders)
