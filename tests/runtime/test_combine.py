"""Key stages with ``combine=`` run split: map tasks shuffle the stage's partial results instead of rows, reduce
tasks merge them, and the output is what one plain PySpark job gives, on both engines; a failing merge reads like
any stage failure; ``sparkflow verify`` names a wrong combiner with its line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.layout import work_location
from sparkflow.loading import load_pipeline
from sparkflow.plan import Run
from sparkflow.runtime.local import run_plan
from sparkflow.targets.local import LOCAL
from sparkflow.verify import verify
from tests.runtime.reference import committed_rows, reference_outputs, rows

COMBINERS = Path(__file__).resolve().parents[1] / "resources" / "combiners" / "pipeline.py"
MISDECLARED = COMBINERS.parents[1] / "misdeclared" / "pipeline.py"
EVENTS = 240  # rows of misdeclared/events.csv
TINY = 1024  # bytes per chunk: about a dozen chunks, several buckets
pytestmark = pytest.mark.spark


def line(text: str) -> int:
    return next(number for number, content in enumerate(COMBINERS.read_text().splitlines(), 1) if text in content)


def shuffled_rows(root: Path, pipeline: str, run_id: str, node: str) -> int:
    """Rows the map tasks of ``node`` wrote to the shuffle (their committed manifests)."""
    shuffle = Path(work_location(str(root), pipeline, run_id, node)) / "shuffle"
    return sum(json.loads(path.read_text())["rows"] for path in shuffle.glob("*/chunk-*/_COMMITTED.json"))


@pytest.mark.parametrize("engine", ["spark", "duckdb"])
def test_a_combined_split_run_shuffles_partial_results_and_equals_one_plain_job(
    spark: Any, tmp_path: Path, engine: str
) -> None:
    pipeline = load_pipeline(f"{COMBINERS}:combined")
    plan = plan_pipeline(pipeline, LOCAL)
    assert all(task.fanout is not None and task.fanout.combine for task in plan.tasks)
    # The shuffle is read below: the run keeps its working files.
    summary = run_plan(
        plan, pipeline, storage_root=str(tmp_path), run_id="r", chunk_bytes=TINY, engine=engine, keep_work=True
    )
    assert summary.status == "succeeded", summary
    expected = reference_outputs(spark, pipeline)
    for node in ("per_page", "longest"):
        chunks = summary.nodes[node].chunks or 0
        assert chunks > 2 and (summary.nodes[node].buckets or 0) > 1, node
        assert committed_rows(spark, summary.outputs[node]) == rows(expected[node]), node
    # One row per page (6 of them) and chunk, not one per event: the chunks' rows were aggregated before the shuffle.
    assert shuffled_rows(tmp_path, "combined", "r", "per_page") <= 6 * (summary.nodes["per_page"].chunks or 0) < EVENTS


def test_without_combine_map_tasks_shuffle_every_row(tmp_path: Path) -> None:
    """The same stage with the Plan's decision turned off shuffles rows (what combine= saves)."""
    pipeline = load_pipeline(f"{COMBINERS}:combined")
    plan = plan_pipeline(pipeline, LOCAL)
    off = tuple(replace(task, fanout=replace(task.fanout, combine=False)) for task in plan.tasks if task.fanout)
    run_plan(
        replace(plan, tasks=off), pipeline, storage_root=str(tmp_path), run_id="r", chunk_bytes=TINY, keep_work=True
    )
    assert shuffled_rows(tmp_path, "combined", "r", "per_page") == EVENTS


@pytest.mark.parametrize("engine", ["spark", "duckdb"])
def test_a_failing_merge_shows_its_frames_like_any_stage_failure(tmp_path: Path, engine: str) -> None:
    pipeline = load_pipeline(f"{COMBINERS}:broken_merge")
    summary = run_plan(
        plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path), chunk_bytes=TINY, engine=engine
    )
    node = summary.nodes["failing"]
    assert summary.status == "failed" and node.attempts == 1  # final, like the stage's own exception
    assert node.error == "\n".join(
        [
            "stage 'failing' failed: ValueError: boom: partial counts do not merge",
            "Traceback (most recent call last, your code only):",
            f'  File "{COMBINERS}", line {line("raise ValueError")}, in broken',
            '    raise ValueError("boom: partial counts do not merge")',
            "ValueError: boom: partial counts do not merge",
        ]
    )


def test_a_combined_stage_whose_output_drops_its_key_is_named(tmp_path: Path) -> None:
    pipeline = load_pipeline(f"{COMBINERS}:dropped_key")
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path), chunk_bytes=TINY)
    node = summary.nodes["keyless"]
    assert summary.status == "failed" and node.attempts == 1
    assert node.error == (
        f"stage 'keyless' ({COMBINERS}:{line('def keyless') - 1}) declares combine=, so its map tasks shuffle its "
        "output by partition_by, but its output has no column(s) ['page'] (columns: count): keep the key columns in "
        "the stage's output, or remove combine="
    )


def test_a_plan_that_combines_a_stage_the_code_does_not_is_refused(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(MISDECLARED))
    plan = plan_pipeline(pipeline, LOCAL)
    task = plan.task("per_page")
    assert task.fanout is not None
    combined = replace(task, fanout=replace(task.fanout, combine=True))
    single = replace(plan, tasks=(combined,), outputs=("per_page",), schedule=Run("per_page"))
    summary = run_plan(single, pipeline, storage_root=str(tmp_path), chunk_bytes=TINY)
    error = summary.nodes["per_page"].error or ""
    assert "combines stage 'per_page' before its shuffle, but the pipeline code deployed with this function " in error
    assert "declares no combine= on it" in error


def test_verify_names_a_wrong_combiner_and_passes_right_ones(spark: Any) -> None:
    assert verify(load_pipeline(f"{COMBINERS}:combined")).ok
    report = verify(load_pipeline(f"{COMBINERS}:miscombined"))
    [mismatch] = report.mismatches
    message = mismatch.message()
    assert message.startswith(
        f"stage 'hits' declares combine=<lambda> ({COMBINERS}:{line('combine=lambda partials')}), but merging its "
        "partial results changes its output: run whole it gives 6 rows; split into 4 chunks and 4 buckets and "
        "combined, 6 rows (split without combining, it gives the same rows as whole)."
    )
    assert "rows only when combined: {page: " in message and "rows only when whole: {page: " in message
    assert "stage(A ∪ B) == merge(stage(A) ∪ stage(B))" in message
