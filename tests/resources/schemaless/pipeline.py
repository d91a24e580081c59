"""CSV sources without schema=, joined on a key: each side must be read with its own inferred schema (a shared
scratch folder once gave the second input the first one's column names). ``notes`` reuses column names of
``orders`` (cust, amount) with other types, so a mix-up cannot pass unnoticed; its notes hold doubled quotes."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

orders = sf.source("orders", "orders.csv")
customers = sf.source("customers", "customers.csv")
notes = sf.source("notes", "notes.csv")


@sf.stage(partition_by="cust")
def enrich(orders: DataFrame, customers: DataFrame, notes: DataFrame) -> DataFrame:
    noted = notes.select("cust", F.col("amount").alias("weight"), "note")
    return orders.join(customers, "cust").join(noted, "cust", "left")


@sf.stage(partition_by="country")
def by_country(enriched: DataFrame) -> DataFrame:
    return enriched.groupBy("country").agg(
        F.round(F.sum("amount"), 2).alias("revenue"),
        F.count("*").alias("orders"),
        F.sum("weight").alias("weight"),
        F.count("note").alias("noted"),
        F.min("note").alias("a_note"),  # written RFC 4180 style, 'a ""quoted"" note': read as 'a "quoted" note'
    )


@sf.pipeline
def schemaless():
    return by_country(enrich(orders, customers, notes))
