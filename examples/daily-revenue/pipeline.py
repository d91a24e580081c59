"""Daily revenue, named as a user would name it: the pipeline, its stages and its sink carry dashes.

Each target derives the names it needs from these (see sparkflow/dsl/names.py): a Step Functions state is the
stage's name as it is, a Workflows variable turns '-' into '_', a CloudFormation stack '_' into '-'."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

orders = sf.source("orders", "data/orders.csv", schema="order_id INT, customer_id INT, amount DOUBLE, order_date DATE")
best_days_table = sf.sink("best-days-table", "tables/best-days/")


@sf.stage(name="daily-totals", partition_by="order_date")
def daily_totals(orders: DataFrame) -> DataFrame:
    """Revenue and orders per day."""
    return orders.groupBy("order_date").agg(F.round(F.sum("amount"), 2).alias("revenue"), F.count("*").alias("orders"))


@sf.stage(name="best-days", memory="1GB")
def best_days(daily: DataFrame) -> DataFrame:
    """The seven days with the most revenue."""
    return daily.orderBy(F.desc("revenue"), "order_date").limit(7)


@sf.pipeline(name="daily-revenue", storage="s3://my-bucket/sparkflow/")
def daily_revenue():
    return best_days_table(best_days(daily_totals(orders)))
