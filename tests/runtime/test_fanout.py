"""Split stages run locally: with a forced tiny chunk size (many chunks and buckets) every example gives exactly
what one plain PySpark job gives, on both engines, and every output folder reads as exactly its committed rows
with pyarrow, pandas, Spark and a DuckDB glob; a flaky chunk task is retried without duplicating rows, and skew is
reported."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from sparkflow.compiler import plan_pipeline
from sparkflow.errors import InputError
from sparkflow.layout import work_location
from sparkflow.loading import load_pipeline
from sparkflow.runtime import execute, fanout
from sparkflow.runtime.execute import handle_event
from sparkflow.runtime.local import run_plan
from sparkflow.targets.local import LOCAL
from tests.examples import example, long_but
from tests.runtime.configs import runtime_config
from tests.runtime.reference import readers_see_the_committed_rows, reference_outputs, rows

pytestmark = pytest.mark.spark
TINY = 2048  # bytes per chunk: every example's inputs become several chunks and several buckets


def committed_rows(spark: Any, location: str) -> list[tuple[Any, ...]]:
    manifest = json.loads((Path(location) / "_COMMITTED.json").read_text())
    return rows(spark.read.parquet(*(str(Path(location) / name) for name in manifest["files"])))


@pytest.mark.parametrize("path", long_but("wordcount"))  # a split join: test_join_buckets_*; all on duckdb below
def test_split_run_equals_one_plain_job(spark: Any, path: Path, tmp_path: Path) -> None:
    pipeline = load_pipeline(str(path))
    plan = plan_pipeline(pipeline, LOCAL)
    summary = run_plan(plan, pipeline, storage_root=str(tmp_path), chunk_bytes=TINY)
    assert summary.status == "succeeded", summary
    split = [task.id for task in plan.tasks if task.fanout]
    assert split, "every example has split stages"
    for node in split:
        assert (summary.nodes[node].chunks or 0) > 1, node
        if plan.task(node).fanout.mode == "key":  # type: ignore[union-attr]
            assert (summary.nodes[node].buckets or 0) > 1, node
    expected = reference_outputs(spark, pipeline)
    for sink, location in summary.outputs.items():
        assert committed_rows(spark, location) == rows(expected[sink]), sink
    readers_see_the_committed_rows(spark, summary)


@pytest.mark.parametrize("path", long_but("wordcount", "clickstream", "revenue"))
def test_split_run_on_duckdb_equals_one_plain_job(spark: Any, path: Path, tmp_path: Path) -> None:
    """The same split phases with the DuckDB engine (its shuffle writes buckets with DuckDB's own COPY)."""
    pipeline = load_pipeline(str(path))
    summary = run_plan(
        plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path), chunk_bytes=TINY, engine="duckdb"
    )
    assert summary.status == "succeeded", summary
    assert any((node.buckets or 0) > 1 for node in summary.nodes.values())
    expected = reference_outputs(spark, pipeline)
    for sink, location in summary.outputs.items():
        assert committed_rows(spark, location) == rows(expected[sink]), sink
    readers_see_the_committed_rows(spark, summary)


def test_join_buckets_both_inputs_by_the_same_key(spark: Any, tmp_path: Path) -> None:
    """revenue's enrich joins orders and customers: both are split and bucketed by customer_id."""
    pipeline = load_pipeline(str(example("revenue")))
    summary = run_plan(
        plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path), chunk_bytes=TINY, keep_work=True
    )
    assert summary.status == "succeeded"
    plan_file = Path(work_location(str(tmp_path), "revenue", summary.run_id, "enrich")) / "split" / "plan.json"
    plan = json.loads(plan_file.read_text())
    assert [item["param"] for item in plan["inputs"]] == ["orders", "customers"]
    assert all(item["chunks"] >= 1 for item in plan["inputs"]) and plan["buckets"] > 1
    enriched = tmp_path / "revenue" / summary.run_id / "enrich"
    reference = reference_outputs(spark, pipeline)
    orders = spark.read.csv(str(example("revenue").parent / "data/orders.csv"), header=True, inferSchema=True)
    customers = spark.read.csv(str(example("revenue").parent / "data/customers.csv"), header=True, inferSchema=True)
    assert len(committed_rows(spark, str(enriched))) == orders.join(customers, "customer_id").count()
    assert committed_rows(spark, summary.outputs["revenue_by_country"]) == rows(reference["revenue_by_country"])


def test_flaky_chunk_task_is_retried_and_counted_once(spark: Any, tmp_path: Path, monkeypatch: Any) -> None:
    pipeline = load_pipeline(str(example("wordcount")))
    failures: dict[tuple[str, int], int] = {}
    original = fanout._map

    def flaky(job: Any, plan: dict[str, Any], item: int) -> dict[str, Any]:
        key = (job.call.node_id, item)
        if item == 1 and failures.get(key, 0) < 2:
            failures[key] = failures.get(key, 0) + 1
            original(job, plan, item)  # the work is done and committed ...
            raise ConnectionError("... but the answer is lost")  # ... and the task still fails
        return original(job, plan, item)

    monkeypatch.setattr(fanout, "_map", flaky)
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path), chunk_bytes=TINY)
    assert summary.status == "succeeded"
    assert failures == {("counts", 1): 2}  # words runs inside counts' map tasks
    expected = reference_outputs(spark, pipeline)
    assert committed_rows(spark, summary.outputs["top"]) == rows(expected["top"])
    counts = tmp_path / "wordcount" / summary.run_id / "counts"
    assert len(committed_rows(spark, str(counts))) == summary.nodes["counts"].rows


def test_skewed_bucket_is_reported(spark: Any, tmp_path: Path) -> None:
    module = tmp_path / "skewed.py"
    module.write_text(
        "import sparkflow as sf\n"
        "events = sf.source('events', 'events.csv', schema='user STRING, payload STRING')\n"
        "@sf.stage(partition_by='user')\n"
        "def per_user(events):\n"
        "    return events.groupBy('user').count()\n"
        "@sf.pipeline\n"
        "def skewed():\n"
        "    return per_user(events)\n"
    )
    # 3,000 rows of one key with hard-to-compress payloads (~120 KB even as Parquet), 20 rows of other keys.
    payload = [hashlib.sha1(str(n).encode()).hexdigest() for n in range(3020)]
    lines = (
        ["user,payload"] + [f"hot,{payload[n]}" for n in range(3000)] + [f"u{n},{payload[3000 + n]}" for n in range(20)]
    )
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    pipeline = load_pipeline(str(module))
    config = runtime_config(pipeline=pipeline, storage_root=str(tmp_path / "store"))
    run = {"id": "r1", "storage": f"{tmp_path / 'store'}/"}
    base = {"version": 1, "pipeline": "skewed", "node": "per_user", "run": run}
    split = handle_event({**base, "phase": "split", "chunk_bytes": 16 * 1024}, config)["output"]
    for chunk in range(split["chunks"]):
        handle_event({**base, "phase": "map", "chunk": chunk}, config)
    key = spark.createDataFrame([("hot",)], ["user"]).select(F.col("user").cast("string"))
    hot = key.select(F.pmod(F.hash("user"), F.lit(split["buckets"]))).first()[0]
    # Refused by the partition task, from the map tasks' indexes, before any reducer runs.
    with pytest.raises(InputError, match=rf"bucket {hot} holds .*skew on \['user'\]"):
        handle_event({**base, "phase": "partition"}, config)
    assert execute.pipeline_trace(pipeline).calls["per_user"].stage.options.partition_by == ("user",)


def test_phase_of_a_whole_stage_is_refused(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(example("wordcount")))
    config = runtime_config(pipeline=pipeline, storage_root=str(tmp_path))
    event = {"version": 1, "pipeline": "wordcount", "node": "top", "phase": "map", "chunk": 0}
    with pytest.raises(
        Exception, match=r"stage 'top' runs on its whole input in plan '[0-9a-f]{16}' and has no 'map' phase"
    ):
        handle_event({**event, "run": {"id": "r1", "storage": f"{tmp_path}/"}}, config)
