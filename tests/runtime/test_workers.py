"""Local runs one after another in one process (a notebook, tests) reuse the process's warm DuckDB workers, and
still run what the pipeline file says now and under the environment the process has now."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime import workers
from sparkflow.runtime.local import run_plan
from sparkflow.targets.local import LOCAL

PIPELINE = """
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import sparkflow as sf

lines = sf.source("lines", "lines.txt", format="text")


@sf.stage
def said(lines: DataFrame) -> DataFrame:
    return lines.select(F.{function}("value").alias("line"))


@sf.pipeline(engine="duckdb")
def warm():
    return said(lines)
"""


def run(folder: Path, run_id: str) -> tuple[list[str], set[int]]:
    """The run's output lines and the process ids of the workers that ran it."""
    pipeline = load_pipeline(str(folder / "pipeline.py"))
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(folder / "store"), run_id=run_id)
    assert summary.status == "succeeded", summary.error
    lines = sorted(ds.dataset(summary.outputs["said"], format="parquet").to_table().column("line").to_pylist())
    current = workers._Workers.current("duckdb")
    return lines, {worker.pid for worker in current._idle}


def test_runs_one_after_another_reuse_the_workers_and_see_an_edited_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lines.txt").write_text("quack\nWaddle\n", encoding="utf-8")
    (tmp_path / "pipeline.py").write_text(PIPELINE.format(function="upper"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    first, started = run(tmp_path, "r1")
    assert first == ["QUACK", "WADDLE"] and started
    (tmp_path / "pipeline.py").write_text(PIPELINE.format(function="lower"), encoding="utf-8")
    second, again = run(tmp_path, "r2")
    assert second == ["quack", "waddle"]  # the edited file, loaded again by the warm worker
    assert again == started  # no new worker
    monkeypatch.setenv("SPARKFLOW_TEST_MARK", "another environment")
    third, fresh = run(tmp_path, "r3")
    assert third == ["quack", "waddle"] and fresh and not fresh & started  # workers started under the new one
    assert not [pid for pid in started if os.path.exists(f"/proc/{pid}")]  # the retired ones stopped
