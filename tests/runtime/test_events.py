"""Bad events, refused locations, missing and corrupt inputs, missing Java: each a clear error, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sparkflow.errors import ConfinementError, EnvironmentProblem, EventError, InputError
from sparkflow.loading import load_pipeline
from sparkflow.runtime import spark as engine
from sparkflow.runtime.execute import RuntimeConfig, handle_event
from tests.examples import example
from tests.runtime.configs import runtime_config


def event(node: str = "words", pipeline: str = "wordcount", **run: Any) -> dict[str, Any]:
    if "storage" in run:
        run["storage"] = run["storage"].rstrip("/") + "/"
    return {"version": 1, "pipeline": pipeline, "node": node, "run": {"id": "r1", **run}}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


@pytest.fixture
def config(root: Path) -> RuntimeConfig:
    return runtime_config(pipeline=load_pipeline(str(example("wordcount"))), storage_root=str(root))


def nothing_written(root: Path) -> bool:
    return not any(root.rglob("*"))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"version": 1, "pipeline": "wordcount", "node": "words"}, r"event field 'run' is missing"),
        ({"version": 2, "pipeline": "wordcount", "node": "words", "run": {}}, r"event field 'version' is 2"),
        (
            {"version": 1, "pipeline": "wordcount", "node": "nope", "run": {"id": "r1", "storage": "/x/"}},
            r"no node 'nope'",
        ),
        (
            {"version": 1, "pipeline": "other", "node": "words", "run": {"id": "r1", "storage": "/x/"}},
            r"serves 'wordcount'",
        ),
        (
            {"version": 1, "pipeline": "wordcount", "node": "words", "run": {"id": "../up", "storage": "/x/"}},
            r"'run.id'",
        ),
        ({"version": 1, "pipeline": "wordcount", "node": "w s", "run": {"id": "r", "storage": "/x/"}}, r"field 'node'"),
        (
            {"version": 1, "pipeline": "wordcount", "node": "words", "run": {"id": "r", "storage": "/x/"}, "code": "x"},
            r"field 'code' is not allowed",
        ),
        (
            {"version": 1, "pipeline": "wordcount", "node": "words", "run": {"id": "r", "storage": "/x"}},
            r"'run.storage'",
        ),
        ([1, 2], r"must be a JSON object"),
    ],
)
def test_malformed_events(config: RuntimeConfig, root: Path, bad: Any, message: str) -> None:
    with pytest.raises(EventError, match=message):
        handle_event(bad, config)
    assert nothing_written(root)


def test_unknown_source_override(config: RuntimeConfig, root: Path) -> None:
    bad = event(storage=str(root), params={"sources": {"novels": "/tmp"}})
    with pytest.raises(EventError, match=r"'run.params.sources.novels'.*no source 'novels'"):
        handle_event(bad, config)
    assert nothing_written(root)


@pytest.mark.parametrize("storage", ["{other}", "{root}/../other", "{root}/a/../../other"])
def test_run_storage_outside_root(config: RuntimeConfig, root: Path, tmp_path: Path, storage: str) -> None:
    other = tmp_path / "other"
    other.mkdir()
    bad = event(storage=storage.format(root=root, other=other))
    with pytest.raises(ConfinementError, match=r"outside the pipeline's storage root"):
        handle_event(bad, config)
    assert nothing_written(root) and not any(other.rglob("*"))


def test_source_override_outside_confinement(config: RuntimeConfig, root: Path) -> None:
    bad = event(storage=str(root), params={"sources": {"books": "/etc"}})
    with pytest.raises(ConfinementError, match=r"'/etc' is outside the storage root"):
        handle_event(bad, config)
    assert nothing_written(root)


def test_symlink_escape_is_refused(config: RuntimeConfig, root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwords.txt").write_text("hunter2\n")
    (root / "innocent").symlink_to(secret)
    bad = event(storage=str(root), params={"sources": {"books": str(root / "innocent")}})
    with pytest.raises(ConfinementError, match=r"outside the storage root"):
        handle_event(bad, config)
    assert [p.name for p in root.iterdir()] == ["innocent"]


def test_remote_dotdot_is_refused() -> None:
    from sparkflow.runtime.storage import Confinement

    confinement = Confinement("s3://bucket/root/")
    with pytest.raises(ConfinementError, match=r"outside the pipeline's storage root"):
        confinement.check_write("s3://bucket/root/../other/x", "output")
    with pytest.raises(ConfinementError, match=r"climbs above its bucket"):
        confinement.check_write("s3://bucket/../x", "output")
    assert confinement.check_write("s3://bucket/root/a/./b/../c", "output") == "s3://bucket/root/a/c"


@pytest.mark.spark
def test_missing_source(config: RuntimeConfig, root: Path, spark: Any) -> None:
    bad = event(storage=str(root), params={"sources": {"books": str(root / "missing")}})
    with pytest.raises(InputError, match=r"source 'books': nothing at"):
        handle_event(bad, config)
    assert nothing_written(root)


@pytest.mark.spark
def test_missing_upstream_output(config: RuntimeConfig, root: Path, spark: Any) -> None:
    with pytest.raises(InputError, match=r"input 'words': no committed output at .*has not finished"):
        handle_event(event("counts", storage=str(root)), config)
    assert nothing_written(root)


@pytest.mark.spark
def test_corrupt_parquet_source(root: Path, tmp_path: Path, spark: Any) -> None:
    module = tmp_path / "parquet_pipeline.py"
    module.write_text(
        "import sparkflow as sf\n"
        "table = sf.source('table', 'table.parquet')\n"
        "@sf.stage\n"
        "def copy(table):\n"
        "    return table\n"
        "@sf.pipeline\n"
        "def parquet_pipeline():\n"
        "    return copy(table)\n"
    )
    (tmp_path / "table.parquet").write_bytes(b"PAR1 this is not parquet at all")
    config = runtime_config(pipeline=load_pipeline(str(module)), storage_root=str(root))
    bad = event("copy", "parquet_pipeline", storage=str(root))
    with pytest.raises(InputError, match=r"source 'table': cannot read .*table.parquet.* as parquet"):
        handle_event(bad, config)
    assert nothing_written(root)


@pytest.mark.spark
def test_malformed_csv_record(root: Path, tmp_path: Path, spark: Any) -> None:
    config = runtime_config(pipeline=load_pipeline(str(example("revenue"))), storage_root=str(root))
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,customer_id,amount,order_date\n1,2,3.5,2026-01-01\nnot-a-number,2,3.5,2026-01-02\n")
    bad = event("enrich", "revenue", storage=str(root), params={"sources": {"orders": str(orders)}})
    config = runtime_config(config.pipeline, config.storage_root, readable=(str(orders),))
    where = r"stage 'enrich': source 'orders' has a bad record at line 3 of '.*orders.csv': 'not-a-number,2,3.5,"
    with pytest.raises(InputError, match=where):
        handle_event(bad, config)
    assert not list(root.rglob("_COMMITTED.json"))


def test_java_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine.java_version.cache_clear()
    try:
        monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
        with pytest.raises(EnvironmentProblem, match=r"JAVA_HOME is .* does not exist"):
            engine.java_version()
        engine.java_version.cache_clear()
        monkeypatch.delenv("JAVA_HOME")
        monkeypatch.setenv("PATH", str(tmp_path))
        with pytest.raises(EnvironmentProblem, match=r"Java is not installed.*openjdk-17"):
            engine.java_version()
        engine.java_version.cache_clear()
        old_java = tmp_path / "java"
        old_java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
        old_java.chmod(0o755)
        with pytest.raises(EnvironmentProblem, match=r"Java 11 .* is too old"):
            engine.java_version()
    finally:
        engine.java_version.cache_clear()
