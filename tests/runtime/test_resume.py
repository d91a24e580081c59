"""Resuming a failed run: every stage already committed answers at once, in each form it runs in (whole, a row-wise
split stage, a key stage, a stage fused into another's map tasks), without starting a chunk task; only the failed
stage and what depends on it run again, and the outputs equal those of a run that never failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan

RESUMABLE = Path(__file__).resolve().parents[1] / "resources" / "resumable" / "pipeline.py"
BAD_PRICES = "status,fee\npaid,-0.5\nrefunded,1.0\n"
GOOD_PRICES = "status,fee\npaid,0.5\nrefunded,1.0\n"


def records(run_folder: Path) -> list[dict[str, Any]]:
    lines = (run_folder / "_logs.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def table(location: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ds.dataset(location).to_table().to_pylist()
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def test_a_resumed_run_answers_committed_stages_at_once_and_runs_the_rest(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(RESUMABLE))
    plan = plan_pipeline(pipeline, "aws")
    prices = tmp_path / "prices.csv"
    prices.write_text(BAD_PRICES, encoding="utf-8")
    storage = tmp_path / "storage"

    def run(run_id: str, **options: Any) -> Any:
        return run_plan(
            plan, pipeline, storage_root=str(storage), run_id=run_id, inputs={"prices": str(prices)}, **options
        )

    failed = run("r1", engine="duckdb")
    assert failed.status == "failed"
    assert {node: item.status for node, item in failed.nodes.items()} == {
        "spend": "committed",
        "tidy": "committed",
        "statuses": "committed",
        "report": "failed",
        "summary": "not-run",
    }
    assert "negative fee" in (failed.nodes["report"].error or "")
    before = len(records(storage / "resumable" / "r1"))

    prices.write_text(GOOD_PRICES, encoding="utf-8")  # the user fixes the input, then resumes the run
    resumed = run("r1", engine="duckdb", resume=True)
    assert resumed.status == "succeeded", resumed.error
    assert {node: item.status for node, item in resumed.nodes.items()} == {
        "spend": "already-committed",
        "tidy": "already-committed",
        "statuses": "already-committed",
        "report": "committed",
        "summary": "committed",
    }
    again = records(storage / "resumable" / "r1")[before:]
    assert again[0]["message"] == "run start" and again[0]["resume"] is True
    assert again[-1]["message"] == "run end" and again[-1]["status"] == "succeeded"
    started = {record["node"] for record in again if record["message"] == "stage start"}
    assert started == {"report", "summary"}
    # A committed split stage answers its split and commit tasks, and no chunk task is started at all.
    phases = {(record["node"], record.get("phase")) for record in again if record["message"].startswith("stage")}
    assert {item for item in phases if item[0] in ("spend", "tidy", "statuses")} == {
        ("spend", "split"),
        ("spend", "commit"),
        ("tidy", "split"),
        ("tidy", "commit"),
        ("statuses", None),
    }

    plain = run("r2", engine="duckdb")
    assert plain.status == "succeeded"
    for node in ("report", "summary"):
        assert table(resumed.outputs.get(node) or str(storage / "resumable" / "r1" / node)) == table(
            str(storage / "resumable" / "r2" / node)
        )
