"""Fused stages at run time: with tiny chunks (many chunks and buckets), a run whose split stages apply fused
row-wise stages to each chunk gives what one plain PySpark job of the same functions gives, and a malformed
``fused`` event field is refused before anything is touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.errors import EventError
from sparkflow.loading import load_pipeline
from sparkflow.runtime.execute import handle_event
from sparkflow.runtime.local import run_plan
from tests.runtime.configs import runtime_config
from tests.runtime.reference import committed_rows, reference_outputs, rows

FUSION = Path(__file__).resolve().parents[1] / "resources" / "fusion.py"
pytestmark = pytest.mark.spark


@pytest.mark.parametrize("engine", ["spark", "duckdb"])
def test_fused_chains_and_joins_give_the_plain_job_result(spark: Any, tmp_path: Path, engine: str) -> None:
    pipeline = load_pipeline(str(FUSION))
    plan = plan_pipeline(pipeline, "aws")
    summary = run_plan(plan, pipeline, storage_root=str(tmp_path), chunk_bytes=2048, engine=engine)
    assert summary.status == "succeeded", {node.node: node.error for node in summary.nodes.values()}
    spend = summary.nodes["spend"]
    assert spend.fused == ["paid", "priced"] and (spend.chunks or 0) > 3 and (spend.buckets or 0) > 1
    assert "paid" not in summary.nodes  # no task of its own
    expected = rows(reference_outputs(spark, pipeline)["report"])
    assert committed_rows(spark, summary.outputs["report"]) == expected


@pytest.mark.parametrize(
    ("fused", "pattern"),
    [
        (
            ["ghost"],
            r"event field 'fused' is \['ghost'\], but plan '[0-9a-f]{16}' fuses \['paid', 'priced'\] into 'spend'",
        ),
        (
            ["by_country"],
            r"event field 'fused' is \['by_country'\], but plan '[0-9a-f]{16}' fuses \['paid', 'priced'\] into",
        ),
    ],
)
def test_a_bad_fused_field_is_refused(tmp_path: Path, fused: list[str], pattern: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    config = runtime_config(pipeline=load_pipeline(str(FUSION)), storage_root=str(root))
    event = {
        "version": 1,
        "pipeline": "fusion",
        "node": "spend",
        "phase": "split",
        "chunk_bytes": 1024,
        "fused": fused,
        "run": {"id": "r1", "storage": f"{root}/"},
    }
    with pytest.raises(EventError, match=pattern):
        handle_event(event, config)
    whole = {**event, "node": "report", "phase": None}
    del whole["phase"], whole["chunk_bytes"]
    with pytest.raises(EventError, match=r"event field 'fused': only the phases of a split stage run fused stages"):
        handle_event(whole, config)
    assert list(root.iterdir()) == []  # nothing written
