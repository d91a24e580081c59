"""A stage that may run longer than a Workflows HTTP call can wait (30 minutes): on a function if forced there,
as a Cloud Run job otherwise."""

from pyspark.sql import DataFrame

import sparkflow as sf

events = sf.source("events", "data/events.jsonl", format="json")


@sf.stage(timeout="45m", placement="function")
def slow(events: DataFrame) -> DataFrame:
    """Fits Cloud Run's 60 minutes, not Workflows' 30."""
    return events


@sf.stage(timeout="45m")
def patient(events: DataFrame) -> DataFrame:
    """The same stage, placed by the compiler."""
    return events


@sf.pipeline(storage="gs://bucket/sparkflow/")
def long_stage():
    return slow(events)


@sf.pipeline(storage="gs://bucket/sparkflow/")
def long_job():
    return patient(events)
