"""A pipeline on the duckdb engine, for the zip deployment tests: a whole stage over text, and a key stage over
Parquet that is split into chunks and shuffled into buckets (where the duckdb engine uses pyarrow)."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

lines = sf.source("lines", "data/lines.txt", format="text")
sales = sf.source("sales", "data/sales/", format="parquet")


@sf.stage
def shout(lines: DataFrame) -> DataFrame:
    return lines.select(F.upper("value").alias("line"))


@sf.stage(partition_by="user", memory="1GB")
def totals(sales: DataFrame) -> DataFrame:
    return sales.groupBy("user").agg(F.sum("amount").alias("total"), F.count("*").alias("orders"))


@sf.pipeline(engine="duckdb", storage="s3://my-bucket/sparkflow/")
def ducks():
    return shout(lines), totals(sales)
