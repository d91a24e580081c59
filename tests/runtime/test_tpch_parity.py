"""The DuckDB engine gives what Spark gives on an analytical workload of the TPC-H kind (tests/runtime/tpch): every
query a sparkflow stage over Parquet tables, run by `sparkflow run --engine duckdb`, compared with the same stage
functions run as one plain PySpark job: the same rows, exactly (decimals at the same scale), and the same Parquet
schema: names and types as pyarrow reads the files each engine writes. Which columns a file marks REQUIRED (never
null) is each engine's own judgement, the one documented difference (docs/engines.md)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from tests.runtime.reference import reference_outputs, rows
from tests.runtime.test_duckdb_parity import committed_frame
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


@pytest.mark.spark
@pytest.mark.long  # make test's time: tests/runtime/test_duckdb_parity.py compares the engines operation by operation
def test_every_query_on_duckdb_gives_spark_rows_and_schema(spark: Any, workload: Path, tmp_path: Path) -> None:
    pipeline = load_pipeline(str(workload))
    summary = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path), engine="duckdb")
    assert summary.status == "succeeded", summary
    expected = reference_outputs(spark, pipeline)
    assert set(summary.outputs) == set(expected) and len(expected) == 14
    for query, location in sorted(summary.outputs.items()):
        assert rows(committed_frame(spark, location)) == rows(expected[query]), query
        expected[query].coalesce(1).write.parquet(str(tmp_path / "spark" / query))
        on_duckdb, on_spark = parquet_schema(Path(location)), parquet_schema(tmp_path / "spark" / query)
        # Nullability (REQUIRED or OPTIONAL in the file) is each engine's own: see docs/engines.md and
        # test_duckdb_parity.py::test_known_difference_parquet_nullability.
        assert [column[:2] for column in on_duckdb] == [column[:2] for column in on_spark], query
