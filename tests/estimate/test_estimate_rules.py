"""The estimate's rules, each with a test that fails when the rule is broken: combine= and a stage's shrink
(measured or assumed), storage priced for the time it is held, the requests of the one-object-per-map-task shuffle,
and the place pass never putting a stage where the estimate says it runs past its timeout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sparkflow import shrink
from sparkflow.cli import main
from sparkflow.compiler import plan_pipeline
from sparkflow.errors import CompileError
from sparkflow.estimate import estimate_plan
from sparkflow.estimate.report import document
from sparkflow.estimate.usage import COMMIT_FILES, MONTH_S, PARTITION_FILES, SHUFFLE_COMMIT_FILES
from sparkflow.loading import load_pipeline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GiB = 1024**3
TiB = 1024 * GiB


def wordcount(tmp_path: Path, shrinks: dict[str, tuple[int, int]] | None = None) -> Path:
    """A copy of examples/wordcount (its data, none of its generated files), with a shrink file when given."""
    folder = tmp_path / "wordcount"
    shutil.copytree(EXAMPLES / "wordcount", folder, ignore=shutil.ignore_patterns("*.json", "*.yaml"))
    if shrinks:
        measured = {name: shrink.Measured(bytes_in, bytes_out) for name, (bytes_in, bytes_out) in shrinks.items()}
        shrink.record(str(folder / "pipeline.py"), "wordcount", measured)
    return folder / "pipeline.py"


def estimated(path: Path, target: str, sizes: dict[str, int]) -> dict[str, object]:
    pipeline = load_pipeline(str(path))
    return document(estimate_plan(plan_pipeline(pipeline, target), pipeline, target, sizes))


def stage(data: dict[str, object], name: str) -> dict[str, object]:
    return next(item for item in data["stages"] if item["stage"] == name)  # type: ignore[attr-defined,index]


def test_a_combined_stage_shuffles_partial_results_and_the_next_stage_reads_its_shrunk_output(tmp_path: Path) -> None:
    data = estimated(wordcount(tmp_path), "aws", {"books": TiB})
    counts, top = stage(data, "counts"), stage(data, "top")
    assert counts["shrink"] == {"ratio": shrink.COMBINED_SHRINK, "basis": "combined"}
    assert counts["output_bytes"] == round(TiB * shrink.COMBINED_SHRINK)
    assert top["input_bytes"] == counts["output_bytes"]  # not a terabyte
    assumptions = data["model"]["assumptions"]  # type: ignore[index]
    assert any(f"at most {shrink.COMBINED_SHRINK:g} of the input for: counts" in line for line in assumptions)
    assert any("not measured, for: top (1)" in line for line in assumptions)


def test_a_measured_shrink_is_used_and_named(tmp_path: Path) -> None:
    path = wordcount(tmp_path, {"counts": (1_000_000, 2_000), "top": (2_000, 1_000)})
    data = estimated(path, "gcp", {"books": TiB})
    counts, top = stage(data, "counts"), stage(data, "top")
    assert counts["shrink"] == {"ratio": 0.002, "basis": "measured"}
    assert top["input_bytes"] == round(TiB * 0.002)
    assumptions = data["model"]["assumptions"]  # type: ignore[index]
    line = next(text for text in assumptions if text.startswith("output per input byte measured"))
    assert "wordcount.shrink.json" in line and "counts (0.002)" in line and "top (0.5)" in line


def test_a_local_run_records_each_stages_bytes_out_per_byte_in(tmp_path: Path) -> None:
    path = wordcount(tmp_path)
    result = CliRunner().invoke(
        main, ["run", str(path), "--storage", str(tmp_path / "store"), "--engine", "duckdb", "--record-shrink"]
    )
    assert result.exit_code == 0, result.output
    recorded = json.loads((path.parent / "wordcount.shrink.json").read_text())
    data_bytes = sum(item.stat().st_size for item in (path.parent / "data" / "books").iterdir())
    assert set(recorded["stages"]) == {"counts", "top"}
    assert recorded["stages"]["counts"]["bytes_in"] == data_bytes  # the fused words + counts task reads the source
    assert recorded["stages"]["top"]["bytes_in"] == recorded["stages"]["counts"]["bytes_out"]
    assert 0 < recorded["stages"]["counts"]["ratio"] < 1


def test_working_files_are_priced_for_the_run_and_kept_outputs_and_sinks_for_a_month() -> None:
    pipeline = load_pipeline(str(EXAMPLES / "revenue" / "pipeline.py"))
    estimate = estimate_plan(plan_pipeline(pipeline, "aws"), pipeline, "aws", {"orders": TiB})
    data = document(estimate)
    enrich = stage(data, "enrich")
    held = (enrich["output_bytes"] + TiB) / GiB  # its attempts and its shuffle (every row: no combine=)
    assert enrich["usage"]["s3_gb_months"] == pytest.approx(held * estimate.seconds / MONTH_S, rel=1e-5)
    assert enrich["usage"]["s3_kept_gb_months"] == pytest.approx(enrich["output_bytes"] / GiB, rel=1e-5)
    published = sum(stage(data, name)["output_bytes"] for name in ("enrich", "revenue_by_country")) / GiB
    assert data["run"]["usage"]["s3_sink_gb_months"] == pytest.approx(published, rel=1e-5)  # type: ignore[index]
    assert estimate.seconds < MONTH_S / 100  # so the working files cost a small share of a month


def test_a_map_task_writes_one_shuffle_object_and_the_partition_task_reads_each_index_once(tmp_path: Path) -> None:
    data = estimated(wordcount(tmp_path), "aws", {"books": 100 * GiB})
    counts = stage(data, "counts")
    chunks, buckets = counts["chunks"], counts["buckets"]
    assert isinstance(chunks, int) and isinstance(buckets, int) and buckets > 1
    # split: its 4 files and one listing; map: one object and its manifest each; partition: a file per reducer, the
    # reduce item list and the reducers' list; reduce: its part each; commit: a copy per part, its manifest and
    # marker, one listing
    puts = (4 + 1) + chunks * (1 + SHUFFLE_COMMIT_FILES) + (buckets + PARTITION_FILES) + buckets
    puts += buckets + COMMIT_FILES + 1
    assert counts["usage"]["s3_put_requests"] == puts  # type: ignore[index]
    # map: its chunk each; partition: each map task's manifest (the index) once; reduce: its reducer file and one
    # ranged GET of each map object
    assert counts["usage"]["s3_get_requests"] == chunks + chunks + buckets * (1 + chunks)  # type: ignore[index]
    assert counts["usage"]["s3_put_requests"] < chunks * buckets  # type: ignore[index,operator]


def test_a_combined_stage_has_a_reducer_per_chunk_of_its_shuffle_not_of_its_input(tmp_path: Path) -> None:
    """wordcount's counts combines: its map tasks shuffle about a tenth of its input (the combined shrink), so the
    partition task gives it about a tenth of the buckets the split plans, as reducers."""
    data = estimated(wordcount(tmp_path), "aws", {"books": 100 * GiB})
    counts = stage(data, "counts")
    chunks, buckets = counts["chunks"], counts["buckets"]
    assert isinstance(chunks, int) and isinstance(buckets, int)
    assert 1 <= buckets <= chunks / 5
    assert [phase["phase"] for phase in counts["phases"]] == ["split", "map", "partition", "reduce", "commit"]  # type: ignore[index,union-attr]


AFTER_A_SPLIT = """
import sparkflow as sf
from pyspark.sql import functions as F

events = sf.source("events", "s3://bucket/events/", format="json", size="300GB")


@sf.stage(partition="rows")
def clean(events):
    return events.where(F.col("user").isNotNull())


@sf.stage{whole}
def everything(clean):
    return clean.groupBy("user").count()


@sf.pipeline(storage="s3://bucket/sparkflow/")
def after_a_split():
    return everything(clean(events))
"""


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_no_stage_is_placed_where_its_own_estimate_runs_past_its_timeout(tmp_path: Path, target: str) -> None:
    """A whole stage after a 300 GB split stage reads 300 GB (the pass used to count it as 0 bytes and put it on a
    function, where plan then warned it needed hours); with a timeout a cluster can meet it runs there, and every
    task of the plan is estimated within its timeout."""
    path = tmp_path / "after_a_split.py"
    path.write_text(AFTER_A_SPLIT.replace("{whole}", '(timeout="3h")'))
    pipeline = load_pipeline(str(path))
    plan = plan_pipeline(pipeline, target)
    assert plan.task("everything").placement == "serverless-spark"
    estimate = estimate_plan(plan, pipeline, target, {})
    for item in estimate.stages:
        assert item.work is not None
        for phase in item.work.phases:
            assert phase.seconds_each <= item.work.task.timeout_s, (item.name, phase.name, target)
        assert not item.work.over_timeout()


def test_a_stage_no_placement_can_run_in_its_timeout_is_refused_with_the_estimate(tmp_path: Path) -> None:
    path = tmp_path / "after_a_split.py"
    path.write_text(AFTER_A_SPLIT.replace("{whole}", ""))
    with pytest.raises(CompileError, match=r"stage 'everything' .*reads 300\.0 GB .*estimated at [\d,]+ s on EMR"):
        plan_pipeline(load_pipeline(str(path)), "aws")


def test_a_shrunk_input_moves_a_whole_stage_back_to_a_function(tmp_path: Path) -> None:
    """The place pass sizes with the same measured shrink as the estimate: a filter measured to keep a ten-thousandth
    of the rows leaves the whole stage 30 MB, which a function reads in time."""
    path = tmp_path / "after_a_split.py"
    path.write_text(AFTER_A_SPLIT.replace("{whole}", ""))
    shrink.record(str(path), "after_a_split", {"clean": shrink.Measured(10_000, 1)})
    pipeline = load_pipeline(str(path))
    plan = plan_pipeline(pipeline, "aws")
    assert plan.task("everything").placement == "function"
    work = estimate_plan(plan, pipeline, "aws", {}).stages[-1].work
    assert work is not None and work.input_bytes == round(300 * GiB / 10_000)
