"""Sources whose declared files are of compressions sparkflow does not read: both are reported, each at its line."""

from pyspark.sql import DataFrame

import sparkflow as sf

logs = sf.source("logs", "s3://my-bucket/logs/app.log.xz", format="text")
table = sf.source("table", "data/table.parquet.gz")


@sf.stage
def joined(logs: DataFrame, table: DataFrame) -> DataFrame:
    return logs.crossJoin(table)


@sf.pipeline
def compressed():
    return joined(logs, table)
