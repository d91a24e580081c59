"""Stages whose own code fails: an exception raised two calls deep, a column name misspelt, a flaky call."""

import os
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

orders = sf.source("orders", "orders.csv", schema="order_id INT, customer_id INT, amount DOUBLE, order_date DATE")


def check(frame: DataFrame) -> None:
    raise ValueError("boom: the orders are not checked")


@sf.stage
def checked(orders: DataFrame) -> DataFrame:
    check(orders)
    return orders


@sf.stage
def totals(orders: DataFrame) -> DataFrame:
    return orders.groupBy("customer_id").agg(F.sum("amout").alias("total"))


@sf.stage(retry_on=ConnectionError, retries=2)
def flaky(orders: DataFrame) -> DataFrame:
    """Fails the first time it runs in a folder (SPARKFLOW_TEST_FLAKY), as a call to a flaky service would."""
    marker = Path(os.environ["SPARKFLOW_TEST_FLAKY"]) / "called"
    if not marker.exists():
        marker.touch()
        raise ConnectionError("the service did not answer")
    return orders


@sf.pipeline
def boom():
    return checked(orders)


@sf.pipeline
def typo():
    return totals(orders)


@sf.pipeline
def retried():
    return flaky(orders)


@sf.stage
def kept(orders: DataFrame) -> DataFrame:
    return orders


@sf.pipeline
def malformed():
    return kept(orders)
