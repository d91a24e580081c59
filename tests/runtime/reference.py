"""An independent reference: run a pipeline's stage functions as one plain PySpark job (no sparkflow
storage, no runtime), reading each source with Spark's own readers, and compare outputs as sorted rows."""

from __future__ import annotations

import os
from typing import Any

from sparkflow.dsl.pipeline import Pipeline


def reference_outputs(spark: Any, pipeline: Pipeline) -> dict[str, Any]:
    """Every output of ``pipeline`` computed in one Spark job: node id -> DataFrame or value."""
    trace = pipeline.trace()
    folder = os.path.dirname(os.path.abspath(pipeline.origin.file))
    values: dict[str, Any] = {}
    for name, source in trace.sources.items():
        path = source.uri if "://" in source.uri else os.path.join(folder, source.uri)
        options = dict(source.options)
        if source.format == "text":
            values[name] = spark.read.text(path)
        elif source.format == "parquet":
            values[name] = spark.read.parquet(path)
        elif source.format == "csv":
            schema = options.pop("schema", None)
            reader = spark.read.options(**{k: str(v).lower() if isinstance(v, bool) else v for k, v in options.items()})
            values[name] = reader.csv(path, schema=schema) if schema else reader.csv(path, inferSchema=True)
        else:
            schema = options.pop("schema", None)
            values[name] = spark.read.json(path, schema=schema) if schema else spark.read.json(path)
    for node_id, call in trace.calls.items():  # recorded in call order: inputs always come first
        values[node_id] = call.stage.fn(*(values[upstream] for _, upstream in call.inputs))
    return {node: values[node] for node in trace.outputs}


def rows(frame: Any) -> list[tuple[Any, ...]]:
    """A DataFrame's rows as sorted tuples (order-insensitive comparison of results)."""
    return sorted((tuple(row) for row in frame.collect()), key=repr)


def normalized(found: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows with integral floats as ints: DuckDB sums BIGINT as DOUBLE (see docs/engines.md)."""
    return sorted(
        (tuple(int(v) if isinstance(v, float) and v.is_integer() else v for v in row) for row in found), key=repr
    )


def committed_rows(spark: Any, location: str) -> list[tuple[Any, ...]]:
    """The sorted rows of a committed output on the local disk (only the files its manifest lists)."""
    import json
    from pathlib import Path

    manifest = json.loads((Path(location) / "_COMMITTED.json").read_text())
    return rows(spark.read.parquet(*(str(Path(location) / name) for name in manifest["files"])))
