"""Pipelines whose shapes stress the GCP emitter: wide fan-outs (more than 10 branches per parallel step) and
parallel steps nested deeper than the two levels Workflows allows."""

from pyspark.sql import DataFrame

import sparkflow as sf

events = sf.source("events", "data/events.jsonl", format="json")
other = sf.source("other", "data/other.jsonl", format="json")


@sf.stage
def tag(events: DataFrame) -> DataFrame:
    """One of many independent stages on the same input."""
    return events


@sf.stage
def join(left: DataFrame, right: DataFrame) -> DataFrame:
    """Two inputs meet."""
    return left.unionByName(right)


@sf.pipeline(storage="gs://bucket/sparkflow/")
def wide12():
    """12 independent stages: one parallel step of 10 branches, two of them nested parallel steps of 2 stages."""
    return tuple(tag(events) for _ in range(12))


@sf.pipeline(storage="gs://bucket/sparkflow/")
def wide25():
    """25 independent stages: 10 branches, each a nested parallel step of 2 or 3 stages."""
    return tuple(tag(events) for _ in range(25))


@sf.pipeline(storage="gs://bucket/sparkflow/")
def wide150():
    """150 independent stages: 10 branches of 10 nested branches, each running 1 or 2 stages in turn."""
    return tuple(tag(events) for _ in range(150))


@sf.pipeline(storage="gs://bucket/sparkflow/")
def wide1500():
    """1,500 independent stages: more than a workflow's source may hold (about 100 bytes a stage)."""
    return tuple(tag(events) for _ in range(1500))


@sf.pipeline(storage="gs://bucket/sparkflow/")
def deep():
    """Parallel inside parallel inside parallel: the innermost level must run its branches in turn."""
    a1 = tag(events)
    a3 = tag(a1)
    inner = join(tag(a3), tag(a3))
    return join(tag(a1), inner), tag(other)
