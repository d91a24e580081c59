"""The load runs' pipeline: one rows stage cut into 1 KiB chunks, thousands of chunk tasks over a few MB (see
``tests/faults/load.py``)."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

entries = sf.source("entries", "entries.csv", schema="id BIGINT, account STRING, amount BIGINT", header=True)


@sf.stage(partition="rows", chunk_size="1KB")
def postings(entries: DataFrame) -> DataFrame:
    """Entries that move money."""
    return entries.where(F.col("amount") != 0)


@sf.pipeline(storage="s3://sparkflow-faults/")
def bulk() -> DataFrame:
    return postings(entries)
