"""A scheduled pipeline: deployed, it starts a run every day at 03:00 UTC by itself (schedule tests)."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

lines = sf.source("lines", "s3://my-bucket/lines/", format="text")


@sf.stage
def shout(lines: DataFrame) -> DataFrame:
    return lines.select(F.upper("value").alias("line"))


@sf.pipeline(storage="s3://my-bucket/sparkflow/", schedule="cron(0 3 * * ? *)")
def nightly():
    return shout(lines)
