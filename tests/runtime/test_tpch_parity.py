"""Sail and DuckDB give what Spark gives on an analytical workload of the TPC-H kind (tests/runtime/tpch): every
query a sparkflow stage over Parquet tables, run by `sparkflow run --engine sail` and `--engine duckdb`, compared with
the same stage functions run as one plain PySpark job: the same rows, exactly (decimals at the same scale), and the
same Parquet schema: names and types as pyarrow reads the files each engine writes. Which columns a file marks
REQUIRED (never null) is each engine's own judgement, a documented difference (docs/engines.md); a query an engine
refuses is listed below, with what its error names."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from tests.runtime.reference import reference_outputs, rows
from tests.runtime.test_engine_parity import committed_frame
from tests.runtime.tpch.generate import write_tables

WORKLOAD = Path(__file__).resolve().parent / "tpch"


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tpch")
    shutil.copy(WORKLOAD / "pipeline.py", folder / "pipeline.py")
    write_tables(folder)
    return folder / "pipeline.py"


def parquet_schema(folder: Path) -> list[tuple[str, str, bool]]:
    """Names, types and nullability of the Parquet files in ``folder``, as pyarrow reads them (all alike)."""
    import pyarrow.parquet as pq

    schemas = {
        tuple((f.name, str(f.type), f.nullable) for f in pq.read_schema(path)) for path in folder.glob("*.parquet")
    }
    assert len(schemas) == 1, schemas
    return list(schemas.pop())


# Queries an engine refuses (EngineUnsupported, naming what it cannot run; docs/engines.md), each with what the error
# names: every other query must give Spark's rows and types.
UNSUPPORTED: dict[str, dict[str, str]] = {
    "sail": {"orders_by_month": "two aggregates of one column in one agg(), one of them over a cast of it"},
    "duckdb": {},
}
# Queries whose results differ from Spark's: column types as found, then whether values differ. None do: Sail's own
# avg of a decimal (q1) and decimal division (q14) did, until sparkflow's rewrite (sparkflow/runtime/sail_semantics.py;
# test_engine_parity.py::test_sail_decimal_*).
DIFFERENCES: dict[str, dict[str, list[str]]] = {"sail": {}, "duckdb": {}}


@pytest.mark.spark
@pytest.mark.long  # make test's time: tests/runtime/test_engine_parity.py compares the engines operation by operation
@pytest.mark.parametrize("engine", ["sail", "duckdb"])
def test_every_query_gives_spark_rows_and_schema(spark: Any, workload: Path, engine: str, tmp_path: Path) -> None:
    pipeline = load_pipeline(str(workload))
    summary = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path), engine=engine)
    refused = {node: item.error for node, item in summary.nodes.items() if item.status == "failed"}
    assert {node: error and error.startswith("EngineUnsupported") for node, error in refused.items()} == dict.fromkeys(
        UNSUPPORTED[engine], True
    ), refused
    assert all(reason in (refused[node] or "") for node, reason in UNSUPPORTED[engine].items()), refused
    expected = reference_outputs(spark, pipeline)
    committed = {node: item.output for node, item in summary.nodes.items() if item.status == "committed"}
    assert set(committed) | set(UNSUPPORTED[engine]) == set(expected) and len(expected) == 14
    differences: dict[str, list[str]] = {}
    for query, location in sorted(committed.items()):
        assert location is not None
        found, wanted = rows(committed_frame(spark, location)), rows(expected[query])
        expected[query].coalesce(1).write.parquet(str(tmp_path / "spark" / query))
        on_engine, on_spark = parquet_schema(Path(location)), parquet_schema(tmp_path / "spark" / query)
        # Nullability (REQUIRED or OPTIONAL in the file) is each engine's own: see docs/engines.md and
        # test_engine_parity.py::test_known_difference_parquet_nullability.
        types = [(name, kind, theirs) for (name, kind, _), (_, theirs, _) in zip(on_engine, on_spark, strict=True)]
        differences[query] = [f"{name}: {kind} (Spark: {theirs})" for name, kind, theirs in types if kind != theirs]
        if found != wanted:
            differences[query].append("values differ")
    assert {query: found for query, found in differences.items() if found} == DIFFERENCES[engine]
