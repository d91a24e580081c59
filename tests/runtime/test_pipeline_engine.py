"""The runtime runs a stage on its pipeline's ``engine=`` when the stage declares none: the engine a task starts
(``_Resources.engine``) and the local executor's choice of a DuckDB worker both read the resolved engine."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.errors import EnvironmentProblem
from sparkflow.loading import load_pipeline
from sparkflow.runtime.execute import _Resources, pipeline_trace
from sparkflow.runtime.local import run_plan
from tests.runtime.configs import runtime_config

PIPELINE = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F
    import sparkflow as sf

    events = sf.source("events", "events.csv", schema="user STRING, amount BIGINT")

    @sf.stage
    def totals(events: DataFrame) -> DataFrame:
        return events.groupBy("user").agg(F.sum("amount").alias("total"))

    @sf.stage
    def kind(totals: DataFrame) -> str:
        return type(totals).__module__

    @sf.stage(engine="spark")
    def on_spark(events: DataFrame) -> DataFrame:
        return events

    @sf.pipeline(engine="duckdb")
    def ducks():
        return kind(totals(events))

    @sf.pipeline(engine="duckdb")
    def mixed():
        return on_spark(events), totals(events)
    """
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "events.csv").write_text("user,amount\na,5\nb,7\na,3\n")
    return tmp_path


def test_task_resources_start_the_pipeline_engine(folder: Path) -> None:
    """This process is not activated for DuckDB, so starting the engine of a duckdb stage is refused: proof that
    the runtime asked for duckdb (starting Spark would have succeeded)."""
    pipeline = load_pipeline(str(folder / "pipeline.py"), "mixed")
    calls = pipeline_trace(pipeline).calls
    assert {node: call.stage.options.engine for node, call in calls.items()} == {
        "on_spark": "spark",
        "totals": "duckdb",
    }
    run = {"id": "r1", "storage": f"{folder / 'store'}/"}
    config = runtime_config(pipeline, str(folder / "store"))
    resources = _Resources(config.plan.task("totals"), calls["totals"], config, run)
    with pytest.raises(EnvironmentProblem, match=r"a stage with engine 'duckdb' needs a process"):
        resources.engine()


def test_local_run_puts_undeclared_stages_on_duckdb(folder: Path) -> None:
    pipeline = load_pipeline(str(folder / "pipeline.py"), "ducks")
    summary = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(folder / "store"))
    assert summary.status == "succeeded", summary
    assert str(summary.nodes["kind"].value).startswith("sqlframe.duckdb")  # the DataFrame the stage was given
    # The duckdb engine writes one part-00000.parquet per output; Spark names its part files with a uuid.
    manifest = json.loads((Path(summary.nodes["totals"].output or "") / "_COMMITTED.json").read_text())
    assert [Path(name).name for name in manifest["files"]] == ["part-00000.parquet"]
    assert summary.nodes["totals"].rows == 2
