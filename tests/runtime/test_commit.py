"""Attempts and commits: a retried, duplicated or half-written task never leaves partial or duplicated data,
and --resume finishes a failed run without recomputing committed nodes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime import execute, storage
from sparkflow.runtime.execute import RuntimeConfig, handle_event
from sparkflow.runtime.local import run_plan
from tests.examples import example
from tests.runtime.reference import rows

pytestmark = pytest.mark.spark


def words_event(root: Path, attempt: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "version": 1,
        "pipeline": "wordcount",
        "node": "words",
        "run": {"id": "r1", "storage": f"{root}/"},
    }
    if attempt:
        document["attempt"] = attempt
    return document


def committed(spark: Any, location: Path) -> list[tuple[Any, ...]]:
    manifest = json.loads((location / "_COMMITTED.json").read_text())
    return rows(spark.read.parquet(*(str(location / name) for name in manifest["files"])))


@pytest.fixture
def config(tmp_path: Path) -> RuntimeConfig:
    return RuntimeConfig(pipeline=load_pipeline(str(example("wordcount"))), storage_root=str(tmp_path))


def fault_free(spark: Any, tmp_path: Path, config: RuntimeConfig) -> list[tuple[Any, ...]]:
    clean_root = tmp_path / "clean"
    handle_event(words_event(clean_root), RuntimeConfig(config.pipeline, str(clean_root)))
    return committed(spark, clean_root / "wordcount" / "r1" / "words")


def test_half_written_attempt_then_retry(spark: Any, tmp_path: Path, config: RuntimeConfig, monkeypatch: Any) -> None:
    expected = fault_free(spark, tmp_path, config)
    root = tmp_path / "faulty"
    original = storage.upload_attempt
    uploaded: list[str] = []

    def crash_mid_write(local_dir: str, location: str, attempt: str) -> list[tuple[str, int]]:
        parts = sorted(p for p in Path(local_dir).iterdir() if p.name.startswith("part-"))
        assert len(parts) >= 2, "the stage must write several files for a half write to mean something"
        half = Path(local_dir).parent / "half"
        half.mkdir()
        shutil.copy(parts[0], half / parts[0].name)
        uploaded.extend(name for name, _ in original(str(half), location, attempt))
        raise RuntimeError("killed in the middle of the upload")

    monkeypatch.setattr(storage, "upload_attempt", crash_mid_write)
    with pytest.raises(RuntimeError, match="killed in the middle"):
        handle_event(words_event(root, "first"), RuntimeConfig(config.pipeline, str(root)))
    location = root / "wordcount" / "r1" / "words"
    assert uploaded and (location / uploaded[0]).exists(), "the half write really reached storage"
    assert not (location / "_COMMITTED.json").exists()
    monkeypatch.setattr(storage, "upload_attempt", original)
    result = handle_event(words_event(root, "second"), RuntimeConfig(config.pipeline, str(root)))
    assert result["status"] == "committed"
    assert committed(spark, location) == expected
    assert result["output"]["rows"] == len(expected)


def test_crash_after_upload_before_commit(spark: Any, tmp_path: Path, config: RuntimeConfig, monkeypatch: Any) -> None:
    expected = fault_free(spark, tmp_path, config)
    root = tmp_path / "faulty"
    original_commit = storage.commit

    def crash(location: str, manifest: dict[str, Any]) -> None:
        raise RuntimeError("killed before commit")

    monkeypatch.setattr(storage, "commit", crash)
    with pytest.raises(RuntimeError, match="before commit"):
        handle_event(words_event(root, "first"), RuntimeConfig(config.pipeline, str(root)))
    monkeypatch.setattr(storage, "commit", original_commit)
    handle_event(words_event(root, "second"), RuntimeConfig(config.pipeline, str(root)))
    location = root / "wordcount" / "r1" / "words"
    assert sorted(p.name for p in (location / "_attempts").iterdir()) == ["first", "second"]
    assert committed(spark, location) == expected


def test_duplicate_attempts_commit_once(spark: Any, tmp_path: Path, config: RuntimeConfig, monkeypatch: Any) -> None:
    """Two attempts that both started before either committed: the last commit wins, with no duplicates."""
    expected = fault_free(spark, tmp_path, config)
    root = tmp_path / "twice"
    handle_event(words_event(root, "one"), RuntimeConfig(config.pipeline, str(root)))
    monkeypatch.setattr(storage, "read_manifest", lambda location: None)  # as if it had not seen the commit
    handle_event(words_event(root, "two"), RuntimeConfig(config.pipeline, str(root)))
    monkeypatch.undo()
    location = root / "wordcount" / "r1" / "words"
    assert json.loads((location / "_COMMITTED.json").read_text())["attempt"] == "two"
    assert committed(spark, location) == expected


def test_committed_node_is_not_recomputed(spark: Any, tmp_path: Path, config: RuntimeConfig) -> None:
    first = handle_event(words_event(tmp_path), config)
    again = handle_event(words_event(tmp_path), config)
    assert first["status"] == "committed" and again["status"] == "already-committed"
    assert again["output"] == first["output"]


def test_resume_finishes_a_failed_run(spark: Any, tmp_path: Path, monkeypatch: Any) -> None:
    pipeline = load_pipeline(str(example("wordcount")))
    plan = plan_pipeline(pipeline, "aws")
    top = execute.pipeline_trace(pipeline).calls["top"].stage

    def broken(counts: Any) -> Any:
        raise ValueError("a bug in top")

    monkeypatch.setattr(top, "fn", broken)
    failed = run_plan(plan, pipeline, storage_root=str(tmp_path), run_id="r1")
    assert failed.status == "failed"
    assert failed.nodes["top"].status == "failed" and "a bug in top" in (failed.nodes["top"].error or "")
    assert failed.nodes["top"].attempts == plan.task("top").retries + 1
    assert failed.nodes["counts"].status == "committed"
    monkeypatch.undo()

    with pytest.raises(Exception, match=r"already exists .* --resume"):
        run_plan(plan, pipeline, storage_root=str(tmp_path), run_id="r1")
    resumed = run_plan(plan, pipeline, storage_root=str(tmp_path), run_id="r1", resume=True)
    assert resumed.status == "succeeded"
    assert {n: resumed.nodes[n].status for n in ("counts", "top")} == {
        "counts": "already-committed",
        "top": "committed",
    }
