"""Row-wise stages feeding split stages in every way the fuse pass fuses them: a chain of two (paid -> priced)
into a join whose other input is row-wise too (tidy), and a row-wise stage read by two stages (not fused)."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

orders = sf.source(
    "orders", "fusion/orders.csv", header=True, schema="order_id INT, customer_id INT, amount DOUBLE, status STRING"
)
customers = sf.source("customers", "fusion/customers.csv", header=True)


@sf.stage(partition="rows")
def paid(orders: DataFrame) -> DataFrame:
    return orders.where(F.col("status") == "paid")


@sf.stage(partition="rows")
def priced(paid: DataFrame) -> DataFrame:
    return paid.withColumn("cents", (F.col("amount") * 100).cast("long"))


@sf.stage(partition="rows")
def tidy(customers: DataFrame) -> DataFrame:
    return customers.select(
        F.col("customer_id").cast("int").alias("customer_id"), F.trim("name").alias("name"), "country"
    )


@sf.stage(partition_by="customer_id")
def spend(priced: DataFrame, tidy: DataFrame) -> DataFrame:
    """A join and an aggregate: wrong if one customer's rows were split across reducers."""
    joined = priced.join(tidy, "customer_id").select("customer_id", "name", "cents")  # sqlframe: select after
    return joined.groupBy("customer_id", "name").agg(F.sum("cents").alias("cents"))


@sf.stage(partition_by="country")
def by_country(tidy: DataFrame) -> DataFrame:
    return tidy.groupBy("country").count()


@sf.stage
def report(spend: DataFrame, by_country: DataFrame) -> DataFrame:
    return spend.crossJoin(by_country.agg(F.sum("count").alias("customers")))


@sf.pipeline(storage="s3://bucket/sparkflow/")
def fusion():
    tidied = tidy(customers)
    return report(spend(priced(paid(orders)), tidied), by_country(tidied))
