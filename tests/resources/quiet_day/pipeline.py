"""A folder of JSON lines whose first file is empty (a quiet day's export) and whose records carry a field only
sometimes, split by key; DECIMAL columns declared in CSV and JSON schemas."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

events = sf.source("events", "events/", format="json")
prices = sf.source("prices", "prices.csv", schema="customer STRING, price DECIMAL(10,2), day DATE")
discounts = sf.source("discounts", "prices.jsonl", schema="customer STRING, discount DECIMAL(10,2)")


@sf.stage(partition_by="customer")
def per_customer(events: DataFrame, prices: DataFrame, discounts: DataFrame) -> DataFrame:
    counted = events.groupBy("customer").agg(F.count("*").alias("events"), F.count("gift").alias("gifts"))
    return counted.join(prices, "customer", "left").join(discounts, "customer", "left")


@sf.pipeline
def quiet_day():
    return per_customer(events, prices, discounts)
