"""Attempts, claims and publishing: a retried, duplicated, half-written or half-published task never leaves partial
or duplicated data where readers look (the manifest, or the output folder read as a plain Parquet dataset), and
--resume finishes a failed run without recomputing committed nodes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.layout import work_location
from sparkflow.loading import load_pipeline
from sparkflow.runtime import execute, storage
from sparkflow.runtime.execute import RuntimeConfig, handle_event
from sparkflow.runtime.local import run_plan
from tests.examples import example
from tests.runtime.configs import runtime_config
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
    """The committed rows, read through the manifest; the output folder, read as a plain Parquet dataset by
    Spark and pyarrow, must hold exactly them."""
    import pyarrow.dataset as ds

    manifest = json.loads((location / "_COMMITTED.json").read_text())
    found = rows(spark.read.parquet(*(str(location / name) for name in manifest["files"])))
    assert rows(spark.read.parquet(str(location))) == found
    assert sorted(tuple(row.values()) for row in ds.dataset(str(location)).to_table().to_pylist()) == found
    assert sorted(p.name for p in location.iterdir()) == sorted([*manifest["files"], "_COMMITTED.json", "_SUCCESS"])
    return found


def work(root: Path) -> Path:
    return Path(work_location(str(root), "wordcount", "r1", "words"))


@pytest.fixture
def config(tmp_path: Path) -> RuntimeConfig:
    return runtime_config(pipeline=load_pipeline(str(example("wordcount"))), storage_root=str(tmp_path))


def fault_free(spark: Any, tmp_path: Path, config: RuntimeConfig) -> list[tuple[Any, ...]]:
    clean_root = tmp_path / "clean"
    handle_event(words_event(clean_root), runtime_config(config.pipeline, str(clean_root)))
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
        handle_event(words_event(root, "first"), runtime_config(config.pipeline, str(root)))
    location = root / "wordcount" / "r1" / "words"
    assert uploaded and (work(root) / uploaded[0]).exists(), "the half write really reached storage"
    assert not location.exists(), "nothing is published before the claim"
    monkeypatch.setattr(storage, "upload_attempt", original)
    result = handle_event(words_event(root, "second"), runtime_config(config.pipeline, str(root)))
    assert result["status"] == "committed"
    assert committed(spark, location) == expected
    assert result["output"]["rows"] == len(expected)


def test_crash_after_upload_before_claim(spark: Any, tmp_path: Path, config: RuntimeConfig, monkeypatch: Any) -> None:
    expected = fault_free(spark, tmp_path, config)
    root = tmp_path / "faulty"

    def crash(work: str, manifest: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("killed before the claim")

    monkeypatch.setattr(storage, "claim", crash)
    with pytest.raises(RuntimeError, match="before the claim"):
        handle_event(words_event(root, "first"), runtime_config(config.pipeline, str(root)))
    monkeypatch.undo()
    handle_event(words_event(root, "second"), runtime_config(config.pipeline, str(root)))
    location = root / "wordcount" / "r1" / "words"
    assert sorted(p.name for p in (work(root) / "attempts").iterdir()) == ["first", "second"]
    assert committed(spark, location) == expected
    assert json.loads((location / "_COMMITTED.json").read_text())["attempt"] == "second"


@pytest.mark.parametrize("after", [0, 1], ids=["after-claim", "mid-publish"])
def test_a_killed_publish_is_finished_by_the_retry_without_recomputing(
    spark: Any, tmp_path: Path, config: RuntimeConfig, monkeypatch: Any, after: int
) -> None:
    """Killed after claiming (0 files copied) or half-way through the copies: the output folder is not committed
    (no _COMMITTED.json, no _SUCCESS), and the retry publishes the claimed attempt's files without running the
    stage again."""
    expected = fault_free(spark, tmp_path, config)
    root = tmp_path / "faulty"
    original = storage.copy_files

    def crash(uris: list[str], location: str, names: list[str]) -> None:
        assert len(uris) >= 2, "the stage must write several files for a half publish to mean something"
        original(uris[:after], location, names[:after])
        raise RuntimeError("killed while publishing")

    monkeypatch.setattr(storage, "copy_files", crash)
    with pytest.raises(RuntimeError, match="killed while publishing"):
        handle_event(words_event(root, "first"), runtime_config(config.pipeline, str(root)))
    monkeypatch.undo()
    location = root / "wordcount" / "r1" / "words"
    assert not (location / "_COMMITTED.json").exists() and not (location / "_SUCCESS").exists()
    assert len(list(location.glob("*.parquet"))) == after

    def never(*args: Any) -> Any:
        raise AssertionError("the stage ran again")

    monkeypatch.setattr(execute, "_run", never)
    result = handle_event(words_event(root, "second"), runtime_config(config.pipeline, str(root)))
    monkeypatch.undo()
    assert result["status"] == "already-committed"
    assert committed(spark, location) == expected
    assert json.loads((location / "_COMMITTED.json").read_text())["attempt"] == "first"


def test_duplicate_attempts_publish_one_attempts_rows(
    spark: Any, tmp_path: Path, config: RuntimeConfig, monkeypatch: Any
) -> None:
    """Two attempts that both started before either committed: the first claim wins; the second publishes the
    winner's files, never its own, so the folder holds one attempt's rows."""
    expected = fault_free(spark, tmp_path, config)
    root = tmp_path / "twice"
    handle_event(words_event(root, "one"), runtime_config(config.pipeline, str(root)))
    monkeypatch.setattr(storage, "read_manifest", lambda location: None)  # as if it had not seen the commit
    monkeypatch.setattr(storage, "read_claim", lambda work: None)
    second = handle_event(words_event(root, "two"), runtime_config(config.pipeline, str(root)))
    monkeypatch.undo()
    location = root / "wordcount" / "r1" / "words"
    assert json.loads((location / "_COMMITTED.json").read_text())["attempt"] == "one"
    assert (work(root) / "attempts" / "two").is_dir(), "the second attempt really wrote its own files"
    assert second["output"]["rows"] == len(expected)
    assert committed(spark, location) == expected


def test_exactly_one_of_many_concurrent_claims_wins(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    folder = str(tmp_path / "work")
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda n: storage.claim(folder, {"attempt": str(n)}), range(32)))
    assert len({claim["attempt"] for claim in won}) == 1
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["claim.json"]  # no temporary file left behind


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
    assert failed.nodes["top"].attempts == 1  # the stage's own exception: final, as the state machines judge it
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
