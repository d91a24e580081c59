"""Revenue per country: a join of two CSV tables on the customer key, then an aggregate; both results are
published as tables when a run succeeds."""

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

orders = sf.source(
    "orders", "data/orders.csv", schema="order_id INT, customer_id INT, amount DOUBLE, order_date DATE", size="5GB"
)
customers = sf.source("customers", "data/customers.csv", schema="customer_id INT, name STRING, country STRING")

# Tables other tools read, at stable locations (relative ones are under the storage root; any s3:// or gs:// works):
# the enriched orders as Parquet in Hive-style country=XX/ folders, replaced by each run, and every run's revenue
# appended to a Delta table.
enriched_orders = sf.sink("enriched_orders", "tables/enriched_orders/", partition_cols="country")
revenue_history = sf.sink("revenue_history", "tables/revenue_history/", format="delta", mode="append")


@sf.stage(partition_by="customer_id", memory="3GB")
def enrich(orders: DataFrame, customers: DataFrame) -> DataFrame:
    """Each order with its customer's country (a join: both inputs share the key)."""
    return orders.join(customers, "customer_id").select("order_id", "customer_id", "country", "amount", "order_date")


def country_totals(partials: DataFrame) -> DataFrame:
    """Partial revenues and order counts of one country add up. Exact because amounts are whole cents: a partial
    revenue rounded to cents is the partial sum itself (an average or a rounding to less would not merge)."""
    return partials.groupBy("country").agg(
        F.round(F.sum("revenue"), 2).alias("revenue"),
        F.sum("orders").alias("orders"),
    )


@sf.stage(partition_by="country", retries=3, combine=country_totals)
def revenue_by_country(enriched: DataFrame) -> DataFrame:
    """Revenue and order count per country; each chunk totals its orders first (combine=), so only one row per
    country and chunk is shuffled."""
    return enriched.groupBy("country").agg(
        F.round(F.sum("amount"), 2).alias("revenue"),
        F.count("*").alias("orders"),
    )


@sf.pipeline(storage="s3://my-bucket/sparkflow/")
def revenue():
    enriched = enriched_orders(enrich(orders, customers))
    return revenue_history(revenue_by_country(enriched))
