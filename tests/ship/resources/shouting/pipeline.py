"""A small pipeline of whole stages (no split, no fan-out): deploy and watch tests run it end to end."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

lines = sf.source("lines", "data/lines.txt", format="text")


@sf.stage
def shout(lines: DataFrame) -> DataFrame:
    return lines.select(F.upper("value").alias("line"))


@sf.stage(memory="1GB")
def longest(shout: DataFrame) -> DataFrame:
    return shout.orderBy(F.desc(F.length("line")), "line").limit(2)


@sf.pipeline(storage="s3://my-bucket/sparkflow/")
def shouting():
    return longest(shout(lines))
