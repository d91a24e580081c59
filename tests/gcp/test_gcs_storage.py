"""gs:// storage for real: a run of a split, shuffled pipeline with its storage root on a GCS emulator
(gcp-storage-emulator on 127.0.0.1, reached through gcsfs as a deployed function reaches GCS) commits exactly the
outputs a run on the local disk commits; a committed output on gs:// lists only its manifest's files."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.layout import work_root
from sparkflow.loading import load_pipeline
from sparkflow.runtime import storage
from sparkflow.runtime.datasets import local_copy
from sparkflow.runtime.local import run_plan
from tests.examples import example
from tests.runtime.reference import rows

BUCKET = "sparkflow-gcs-test"


@pytest.fixture(scope="module")
def gcs() -> Iterator[str]:
    """The emulator's address, set as STORAGE_EMULATOR_HOST for this process and the ones it starts."""
    from gcp_storage_emulator.server import create_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        yield os.environ["STORAGE_EMULATOR_HOST"]
    finally:
        server.stop()
        if previous is None:
            del os.environ["STORAGE_EMULATOR_HOST"]
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


def committed(spark: Any, location: str, scratch: Path) -> list[tuple[Any, ...]]:
    return rows(spark.read.parquet(*local_copy(storage.committed_files(location, "output"), str(scratch))))


@pytest.mark.spark
def test_a_split_run_on_gs_storage_equals_the_local_run(spark: Any, gcs: str, tmp_path: Path) -> None:
    # wordcount: a rows stage split in chunks, then a key stage shuffled into buckets, all through gs://. (revenue's
    # Delta sink publishes through delta-rs, whose own GCS client does not take an emulator's address.)
    pipeline = load_pipeline(str(example("wordcount")))
    plan = plan_pipeline(pipeline, "gcp")
    books = Path(pipeline.origin.file).parent / "data" / "books"
    chunk = sum(path.stat().st_size for path in books.rglob("*") if path.is_file()) // 3 + 1  # 3 chunks
    # On DuckDB (the faster engine here): the bytes go through the runtime's fsspec storage on either engine.
    on_gcs = run_plan(plan, pipeline, storage_root=f"gs://{BUCKET}/root/", chunk_bytes=chunk, engine="duckdb")
    local = run_plan(plan, pipeline, storage_root=str(tmp_path / "local"), chunk_bytes=chunk, engine="duckdb")
    assert on_gcs.status == local.status == "succeeded", on_gcs
    assert any((node.chunks or 0) > 1 for node in on_gcs.nodes.values())  # split and shuffled through gs://
    assert set(on_gcs.outputs) == set(local.outputs)
    for name, location in on_gcs.outputs.items():
        assert location.startswith(f"gs://{BUCKET}/root/")
        assert committed(spark, location, tmp_path / name) == committed(spark, local.outputs[name], tmp_path / "l")
        fs, path = storage.filesystem(location)
        listed = sorted(Path(item).name for item in fs.ls(path) if item.endswith(".parquet"))
        manifest = storage.read_manifest(location)
        assert manifest is not None and listed == sorted(manifest["files"])  # no attempt or part left visible
    fs, work = storage.filesystem(work_root(f"gs://{BUCKET}/root/"))
    fs.invalidate_cache()
    assert not fs.exists(work) or fs.find(work) == []  # the run deleted its working files once it had published
