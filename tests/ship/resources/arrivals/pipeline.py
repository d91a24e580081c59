"""A triggered pipeline: deployed, each new object under s3://arrivals-in/books/ starts a run that reads it (trigger
tests)."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

books = sf.source("books", "s3://arrivals-in/books/", format="text")
n = sf.param("n", default=10)


@sf.stage
def shout(lines: DataFrame, n: int) -> DataFrame:
    return lines.select(F.upper("value").alias("line")).limit(n)


@sf.pipeline(storage="s3://arrivals-out/sparkflow/", trigger=sf.on_new_objects("books"))
def arrivals():
    return shout(books, n)
