"""Parameters of every type, one of them required: the stage reports the Python type each value arrives as."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

items = sf.source("items", "items.csv")
limit = sf.param("limit", default=2, type=int)
label = sf.param("label", type=str)
ratio = sf.param("ratio", default=0.5)
loud = sf.param("loud", default=False, type=bool)


@sf.stage
def tagged(items: DataFrame, limit: int, label: str, ratio: float, loud: bool) -> DataFrame:
    """The ``limit`` largest items, each with the values and their Python types."""
    kinds = "/".join(type(value).__name__ for value in (limit, label, ratio, loud))
    return (
        items.orderBy(F.desc("amount"))
        .limit(limit)
        .select(
            "item",
            (F.col("amount") * ratio).alias("scaled"),
            F.lit(label.upper() if loud else label).alias("label"),
            F.lit(kinds).alias("kinds"),
        )
    )


@sf.pipeline(engine="duckdb")
def params():
    return tagged(items, limit, label, ratio, loud)
