"""An independent reference: run a pipeline's stage functions as one plain PySpark job (no sparkflow
storage, no runtime), reading each source with Spark's own readers, and compare outputs as sorted rows."""

from __future__ import annotations

import os
from typing import Any

from sparkflow.dsl.pipeline import Pipeline


def reference_outputs(spark: Any, pipeline: Pipeline, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every output of ``pipeline`` computed in one Spark job: node id -> DataFrame or value; ``params`` gives
    parameter values (the others take their defaults)."""
    trace = pipeline.trace()
    values = reference_frames(spark, pipeline, params)
    return {node: values[node] for node in trace.outputs}


def reference_frames(spark: Any, pipeline: Pipeline, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every node of ``pipeline`` (sources and stage calls) as one plain PySpark job would compute it: each source
    read with Spark's own reader and the source's options, then the stage functions called in the order the
    pipeline calls them, a parameter (sf.param) as its value in ``params`` or its default. Node id -> DataFrame or
    value.

    CSV is read as RFC 4180 says (``escape='"'``: a quote inside a quoted field written as two quotes), as a PySpark
    user reading such files must ask for: Spark's default escape character, a backslash, misreads those fields."""
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
            options.setdefault("escape", '"')
            reader = spark.read.options(**{k: str(v).lower() if isinstance(v, bool) else v for k, v in options.items()})
            values[name] = reader.csv(path, schema=schema) if schema else reader.csv(path, inferSchema=True)
        else:
            schema = options.pop("schema", None)
            values[name] = spark.read.json(path, schema=schema) if schema else spark.read.json(path)
    for name, declared in trace.params.items():
        values[name] = (params or {}).get(name, declared.default)
    for node_id, call in trace.calls.items():  # recorded in call order: inputs always come first
        values[node_id] = call.stage.fn(*(values[upstream] for _, upstream in call.inputs))
    return values


def rows(frame: Any) -> list[tuple[Any, ...]]:
    """A DataFrame's rows as sorted tuples (order-insensitive comparison of results)."""
    return sorted((tuple(row) for row in frame.collect()), key=repr)


def committed_rows(spark: Any, location: str) -> list[tuple[Any, ...]]:
    """The sorted rows of a committed output on the local disk (only the files its manifest lists)."""
    import json
    from pathlib import Path

    manifest = json.loads((Path(location) / "_COMMITTED.json").read_text())
    return rows(spark.read.parquet(*(str(Path(location) / name) for name in manifest["files"])))


def readers_see_the_committed_rows(spark: Any, summary: Any) -> None:
    """Every dataset output of a run, read as tools that never open the manifest read it — pyarrow's dataset,
    pandas, Spark and a DuckDB glob over the folder — holds exactly the rows its manifest lists, and no reader
    sees anything else (an attempt, a shuffle bucket, a part of another stage)."""
    import json
    from pathlib import Path

    import duckdb
    import pandas as pd
    import pyarrow.dataset as ds

    checked = 0
    for node in summary.nodes.values():
        if node.output is None or node.output.startswith("kv:"):
            continue
        folder = Path(node.output)
        manifest = json.loads((folder / "_COMMITTED.json").read_text())
        expected = _canonical_rows(
            row for name in manifest["files"] for row in ds.dataset(str(folder / name)).to_table().to_pylist()
        )
        assert len(expected) == manifest["rows"] == node.rows, node.node
        found = {
            "pyarrow.dataset": ds.dataset(str(folder)).to_table().to_pylist(),
            "pandas.read_parquet": pd.read_parquet(str(folder)).to_dict("records"),
            "spark.read.parquet": [row.asDict() for row in spark.read.parquet(str(folder)).collect()],
            "duckdb read_parquet glob": _duckdb_rows(duckdb, f"SELECT * FROM read_parquet('{folder}/**/*.parquet')"),
        }
        for reader, read in found.items():
            assert _canonical_rows(read) == expected, (node.node, reader)
        assert (folder / "_SUCCESS").exists(), node.node
        checked += 1
    assert checked, "the run has dataset outputs"


def _duckdb_rows(duckdb: Any, query: str) -> list[dict[str, Any]]:
    with duckdb.connect() as connection:
        relation = connection.sql(query)
        return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def _canonical_rows(found: Any) -> list[tuple[Any, ...]]:
    """Rows (dicts) in one form whichever reader made them: numpy scalars as Python values, NaN as None."""
    import math

    def value(item: Any) -> Any:
        item = item.item() if hasattr(item, "item") and not isinstance(item, (str, bytes)) else item
        if isinstance(item, float) and math.isnan(item):
            return None
        if hasattr(item, "date") and type(item).__name__ == "Timestamp":
            return item.date()
        return item

    return sorted((tuple(value(item) for item in row.values()) for row in found), key=repr)
