"""Sinks: a run publishes outputs to tables at stable locations once every stage committed, and other tools read
them — Parquet folders with pyarrow, pandas, DuckDB and Spark, Delta tables with deltalake. Appending twice keeps
both runs' rows once each; publishing a run again, killed half-way, or twice at once leaves its rows exactly once.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.errors import ConfinementError, InputError, SparkflowError
from sparkflow.loading import load_pipeline
from sparkflow.runtime.execute import handle_event
from sparkflow.runtime.local import RunSummary, run_plan
from sparkflow.targets.local import LOCAL
from tests.runtime.configs import runtime_config

SINKS = Path(__file__).resolve().parents[1] / "resources" / "sinks"
pytestmark = pytest.mark.spark


def run(root: Path, run_id: str, orders: str = "orders.csv", **options: Any) -> RunSummary:
    pipeline = load_pipeline(str(SINKS / "pipeline.py"))
    summary = run_plan(
        plan_pipeline(pipeline, LOCAL),
        pipeline,
        storage_root=str(root),
        run_id=run_id,
        inputs={"orders": str(SINKS / orders)},
        **options,
    )
    assert summary.status == "succeeded", (summary.error, {n.node: n.error for n in summary.nodes.values()})
    return summary


def delta_rows(uri: str) -> list[tuple[Any, ...]]:
    from deltalake import DeltaTable

    return sorted(tuple(row.values()) for row in DeltaTable(uri).to_pyarrow_table().to_pylist())


def folder_rows(uri: str) -> list[tuple[Any, ...]]:
    """A Parquet sink read as pyarrow reads a Hive-partitioned folder (partition columns last)."""
    import pyarrow.dataset as ds

    table = ds.dataset(uri, format="parquet", partitioning="hive").to_table()
    return sorted(tuple(row.values()) for row in table.to_pylist())


def output_rows(spark: Any, summary: RunSummary, node: str, last: str | None = None) -> list[tuple[Any, ...]]:
    """The rows of a run's output, with column ``last`` moved to the end (where a Hive-partitioned read puts it)."""
    frame = spark.read.parquet(summary.outputs[node])
    if last is not None:
        frame = frame.select(*[name for name in frame.columns if name != last], last)
    return sorted(tuple(row) for row in frame.collect())


def test_every_sink_is_read_by_other_tools(spark: Any, tmp_path: Path) -> None:
    import duckdb
    import pandas as pd

    summary = run(tmp_path, "r1")
    uris = {name: item["uri"] for name, item in summary.sinks.items()}
    assert uris == {name: str(tmp_path / "tables" / name) for name in uris} and len(uris) == 4
    totals, large = output_rows(spark, summary, "totals"), output_rows(spark, summary, "large", last="customer")

    assert folder_rows(uris["parquet_append"]) == totals
    assert sorted(pd.read_parquet(uris["parquet_append"]).itertuples(index=False, name=None)) == totals
    found = duckdb.sql(f"SELECT * FROM read_parquet('{uris['parquet_append']}/**/*.parquet')").fetchall()
    assert sorted(found) == totals
    assert sorted(tuple(row) for row in spark.read.parquet(uris["parquet_append"]).collect()) == totals

    assert folder_rows(uris["parquet_overwrite"]) == large
    assert sorted(tuple(row) for row in spark.read.parquet(uris["parquet_overwrite"]).collect()) == large
    assert sorted(p.name for p in Path(uris["parquet_overwrite"]).iterdir() if not p.name.startswith("_")) == [
        f"customer={name}" for name in ("ada", "bob", "cy", "dee")
    ]

    assert delta_rows(uris["delta_overwrite"]) == totals
    assert delta_rows(uris["delta_append"]) == output_rows(spark, summary, "large")  # Delta keeps the column order
    latest = json.loads((tmp_path / "sinks" / "_latest.json").read_text())
    assert latest["run_id"] == "r1" and latest["sinks"] == uris
    assert latest["outputs"]["totals"] == summary.outputs["totals"]


def test_appending_twice_keeps_both_runs_rows_once_each(spark: Any, tmp_path: Path) -> None:
    from deltalake import DeltaTable

    first = run(tmp_path, "r1")
    second = run(tmp_path, "r2", orders="more_orders.csv")
    uris = {name: item["uri"] for name, item in second.sinks.items()}
    totals = output_rows(spark, first, "totals") + output_rows(spark, second, "totals")
    large = output_rows(spark, first, "large") + output_rows(spark, second, "large")
    assert folder_rows(uris["parquet_append"]) == sorted(totals)
    assert delta_rows(uris["delta_append"]) == sorted(large)
    # overwrite: only the newest run's rows, its files alone left in the folder
    assert folder_rows(uris["parquet_overwrite"]) == output_rows(spark, second, "large", last="customer")
    assert all("r2" in path.name for path in Path(uris["parquet_overwrite"]).rglob("*.parquet"))
    assert delta_rows(uris["delta_overwrite"]) == output_rows(spark, second, "totals")
    history = DeltaTable(uris["delta_append"]).history()  # the table's creation (empty), then one commit a run
    assert [item.get("sparkflow.run_id") for item in reversed(history)] == [None, "r1", "r2"]
    assert history[-1]["operation"] == "CREATE TABLE"
    assert json.loads((tmp_path / "sinks" / "_latest.json").read_text())["run_id"] == "r2"


def publish_event(root: Path, run_id: str) -> dict[str, Any]:
    return {"version": 1, "pipeline": "sinks", "phase": "publish", "run": {"id": run_id, "storage": f"{root}/"}}


def test_publishing_a_run_again_changes_nothing(spark: Any, tmp_path: Path) -> None:
    from deltalake import DeltaTable

    summary = run(tmp_path, "r1")
    versions = {name: DeltaTable(summary.sinks[name]["uri"]).version() for name in ("delta_append", "delta_overwrite")}
    before = {name: folder_rows(item["uri"]) for name, item in summary.sinks.items() if item["format"] == "parquet"}
    config = runtime_config(load_pipeline(str(SINKS / "pipeline.py")), str(tmp_path))
    again = handle_event(publish_event(tmp_path, "r1"), config)
    assert {item["status"] for item in again["output"]["sinks"].values()} == {"already-published"}
    assert {name: DeltaTable(summary.sinks[name]["uri"]).version() for name in versions} == versions
    assert {name: folder_rows(summary.sinks[name]["uri"]) for name in before} == before


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_killed_publish_retried_leaves_each_run_once(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The publish task dies once in each appending sink: the Parquet one half-way through copying its files (or
    after all of them), the Delta one before its commit (or after it). The retry of the publish task leaves the
    run's rows exactly once in each."""
    import deltalake

    from sparkflow.runtime import storage

    copy_files, write_deltalake = storage.copy_files, deltalake.write_deltalake
    failed: list[str] = []

    def dying_copies(uris: list[str], location: str, names: list[str]) -> None:
        if "parquet_append" not in location or "parquet" in failed:
            return copy_files(uris, location, names)
        failed.append("parquet")
        copy_files(uris if when == "after" else uris[: len(uris) // 2], location, names)
        raise ConnectionResetError("killed while publishing")

    def dying_commit(*args: Any, **kwargs: Any) -> None:
        if "delta" in failed:
            return write_deltalake(*args, **kwargs)
        failed.append("delta")
        if when == "after":
            write_deltalake(*args, **kwargs)
        raise ConnectionResetError("killed while publishing")

    first = run(tmp_path, "r1")
    monkeypatch.setattr(storage, "copy_files", dying_copies)
    monkeypatch.setattr(deltalake, "write_deltalake", dying_commit)
    second = run(tmp_path, "r2", orders="more_orders.csv")
    monkeypatch.undo()
    assert sorted(failed) == ["delta", "parquet"]
    assert folder_rows(second.sinks["parquet_append"]["uri"]) == sorted(
        output_rows(spark, first, "totals") + output_rows(spark, second, "totals")
    )
    assert delta_rows(second.sinks["delta_append"]["uri"]) == sorted(
        output_rows(spark, first, "large") + output_rows(spark, second, "large")
    )


@pytest.mark.parametrize("table", ["existing", "new"])
def test_a_duplicate_publish_between_a_look_and_a_commit_leaves_the_run_once(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str
) -> None:
    """A duplicated publish task, at the worst moment: a second publish of the same run runs whole while the first
    is between looking the run up in the Delta table and committing to it (or creating it, when the table is new).
    The first then finds the second's commit: the run's rows are in each sink once."""
    import deltalake
    from deltalake import DeltaTable

    summary = run(tmp_path, "r1")
    large, totals = output_rows(spark, summary, "large"), output_rows(spark, summary, "totals")
    delta_uri = summary.sinks["delta_append"]["uri"]
    if table == "new":
        shutil.rmtree(delta_uri)
    config = runtime_config(load_pipeline(str(SINKS / "pipeline.py")), str(tmp_path))
    # Publish run r1's outputs again as run "twice".
    (tmp_path / "sinks" / "r1").rename(tmp_path / "sinks" / "twice")
    commit, create = deltalake.write_deltalake, deltalake.DeltaTable.create
    between: list[str] = []

    def publish_between(location: Any) -> None:
        if "delta_append" in str(getattr(location, "table_uri", location)) and not between:
            between.append("publishing")  # before: the publish in between commits through these same hooks
            handle_event(publish_event(tmp_path, "twice"), config)

    def late_commit(*args: Any, **kwargs: Any) -> None:
        publish_between(args[0])
        commit(*args, **kwargs)

    def late_create(cls: Any, *args: Any, **kwargs: Any) -> Any:
        publish_between(args[0])
        return create(*args, **kwargs)

    monkeypatch.setattr(deltalake, "write_deltalake", late_commit)
    monkeypatch.setattr(deltalake.DeltaTable, "create", classmethod(late_create))
    first = handle_event(publish_event(tmp_path, "twice"), config)
    monkeypatch.undo()
    assert len(between) == 1
    assert first["output"]["sinks"]["delta_append"]["status"] == "already-published"
    runs = ["twice"] if table == "new" else ["r1", "twice"]
    assert delta_rows(delta_uri) == sorted(large * len(runs))
    history = DeltaTable(delta_uri).history()
    assert sorted(item["sparkflow.run_id"] for item in history if "sparkflow.run_id" in item) == runs
    assert folder_rows(summary.sinks["parquet_append"]["uri"]) == sorted(totals + totals)


def test_a_partition_column_the_output_lacks_names_the_sink(tmp_path: Path) -> None:
    pipeline_file = tmp_path / "pipeline.py"
    source = (SINKS / "pipeline.py").read_text().replace('partition_cols="customer"', 'partition_cols="country"')
    pipeline_file.write_text(source.replace('"orders.csv"', repr(str(SINKS / "orders.csv"))))
    pipeline = load_pipeline(str(pipeline_file))
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "root"))
    assert summary.status == "failed" and summary.error is not None
    assert "sink 'parquet_overwrite': partition_cols ['country'] are not columns of the output" in summary.error
    assert f"fix partition_cols= on sf.sink at {pipeline_file}:" in summary.error
    assert not (tmp_path / "root" / "sinks" / "_latest.json").exists()  # a run that did not publish is not latest


def test_appending_with_other_partition_cols_than_the_delta_table_names_the_sink(spark: Any, tmp_path: Path) -> None:
    pipeline_file = tmp_path / "pipeline.py"
    source = (SINKS / "pipeline.py").read_text().replace('"orders.csv"', repr(str(SINKS / "orders.csv")))
    pipeline_file.write_text(source)
    pipeline = load_pipeline(str(pipeline_file))
    first = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "root"), run_id="r1")
    assert first.status == "succeeded", first.error
    pipeline_file.write_text(source.replace('partition_cols=["customer"]', 'partition_cols=["order_id"]'))
    pipeline = load_pipeline(str(pipeline_file))
    second = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "root"), run_id="r2")
    assert second.status == "failed" and second.error is not None
    assert "sink 'delta_append': " in second.error and "partitioning does not match" in second.error
    assert f"fix partition_cols= on sf.sink at {pipeline_file}:13" in second.error


def test_sink_locations_outside_the_declared_ones_are_refused(tmp_path: Path) -> None:
    run(tmp_path / "root", "r1")
    config = runtime_config(load_pipeline(str(SINKS / "pipeline.py")), str(tmp_path / "root"))
    event = publish_event(tmp_path / "root", "r1")
    event["run"]["params"] = {"sinks": {"delta_append": str(tmp_path / "elsewhere")}}
    with pytest.raises(ConfinementError, match=r"sink 'delta_append': .* is outside the pipeline's storage root"):
        handle_event(event, config)
    event["run"]["params"] = {"sinks": {"ghost": str(tmp_path / "elsewhere")}}
    with pytest.raises(SparkflowError, match=r"event field 'run.params.sinks.ghost': pipeline 'sinks' has no sink"):
        handle_event(event, config)
    with pytest.raises(SparkflowError, match=r"--sink ghost=...: pipeline 'sinks' has no such sink"):
        run(tmp_path / "root", "r2", sinks={"ghost": str(tmp_path / "x")})
    moved = run(tmp_path / "root", "r3", sinks={"delta_append": str(tmp_path / "elsewhere")})
    assert moved.sinks["delta_append"]["uri"] == str(tmp_path / "elsewhere")


def test_a_publish_before_the_stages_committed_is_refused(tmp_path: Path) -> None:
    config = runtime_config(load_pipeline(str(SINKS / "pipeline.py")), str(tmp_path))
    with pytest.raises(InputError, match=r"sink 'parquet_append': stage 'totals' has no committed output in run"):
        handle_event(publish_event(tmp_path, "r9"), config)


@pytest.mark.moto
def test_sinks_and_outputs_on_s3_are_published_and_read_back(spark: Any, tmp_path: Path) -> None:
    """The same run with its storage root (and so its relative sinks) on moto's S3: the Delta table commits there
    through delta-rs, the Parquet folders through s3fs, and show / read_output read both back."""
    import sparkflow as sf
    from sparkflow.results import locate
    from tests.faults.driver import BUCKET, object_storage

    with object_storage():
        root = f"s3://{BUCKET}/sinks-{tmp_path.name}/"
        pipeline = load_pipeline(str(SINKS / "pipeline.py"))
        summary = run_plan(
            plan_pipeline(pipeline, LOCAL),
            pipeline,
            storage_root=root,
            run_id="s1",
            inputs={"orders": str(SINKS / "orders.csv")},
            kv=f"sqlite:///{tmp_path / 'kv.sqlite'}",
        )
        assert summary.status == "succeeded", summary.error
        assert summary.sinks["delta_append"]["uri"] == f"{root}tables/delta_append"
        totals = sf.read_output(pipeline, "totals", storage=root)
        assert sorted(sf.read_output(pipeline, "delta_overwrite", storage=root).to_pylist(), key=repr) == sorted(
            totals.to_pylist(), key=repr
        )
        large = sf.read_output(pipeline, "large", storage=root)
        published = sf.read_output(pipeline, "parquet_overwrite", storage=root)
        assert published.num_rows == large.num_rows and sorted(published.column_names) == sorted(large.column_names)
        assert locate(pipeline, "totals", storage=root).uri == f"{root}sinks/s1/totals"
