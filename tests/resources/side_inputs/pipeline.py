"""Two row-wise stages fused into a key stage, each with a side input read whole under the same parameter name
(``lookup``) but from different sources: every read of a task needs scratch space of its own."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

lines = sf.source("lines", "lines.txt", format="text")
stop = sf.source("stop", "stop.txt", format="text")
greek = sf.source("greek", "greek.txt", format="text")


@sf.stage(partition="rows")
def words(lines: DataFrame, lookup: DataFrame) -> DataFrame:
    """Words that are not stop words."""
    found = lines.select(F.explode(F.split("value", " ")).alias("word")).where("word != ''")
    return found.join(lookup.select(F.col("value").alias("word")), "word", "left_anti")


@sf.stage(partition="rows")
def greek_words(words: DataFrame, lookup: DataFrame) -> DataFrame:
    """Only the words of the Greek alphabet list."""
    return words.join(lookup.select(F.col("value").alias("word")), "word", "left_semi")


@sf.stage(partition_by="word")
def counts(words: DataFrame) -> DataFrame:
    return words.groupBy("word").count()


@sf.pipeline
def side_inputs():
    return counts(greek_words(words(lines, stop), greek))
