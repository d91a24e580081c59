"""A compression sparkflow does not read is refused with an error naming the file, in each of the three places it
is found: compiling (a declared location naming such a file, at its ``sf.source`` line), before ``sparkflow run`` runs
anything (local sources), and in the split task or the reading task (where nothing could look first).
"""

from __future__ import annotations

import gzip
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

import sparkflow as sf
from sparkflow import compression
from sparkflow.compiler import plan_pipeline
from sparkflow.errors import CompileError, InputError
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from sparkflow.targets.local import LOCAL
from tests.compiler.test_compile_errors import RESOURCES, at

ENGINES = ("spark", "sail", "duckdb")


# --- what is refused, and where --------------------------------------------------------------------------------

REFUSED = [(extension, item) for item in compression.COMPRESSIONS if not item.read for extension in item.extensions]
READ = (
    r"sparkflow reads the compressions Spark decompresses: "
    r"gzip \(\.gz, \.gzip\), bzip2 \(\.bz2\), zstd \(\.zst, \.zstd\), zlib \(\.deflate\)"
)


def refused(path: str, item: compression.Compression) -> str:
    """The message refusing the file ``path`` (a regex)."""
    return (
        rf"source 'logs': '{re.escape(path)}' is compressed with {item.name}, which sparkflow does not read "
        rf"\({re.escape(item.why)}\)\. {READ}: decompress the file or compress it with one of those"
    )


LOGS = textwrap.dedent(
    """
    from pyspark.sql import DataFrame

    import sparkflow as sf

    logs = sf.source("logs", {location!r}, format="text")


    @sf.stage
    def lines(logs: DataFrame) -> DataFrame:
        return logs


    @sf.stage(partition="rows")
    def lengths(logs: DataFrame) -> DataFrame:
        return logs.selectExpr("length(value) AS n")


    @sf.pipeline
    def logs_pipeline():
        return {returns}
    """
)


def logs_pipeline(folder: Path, location: str, returns: str = "lines(logs), lengths(logs)") -> Any:
    path = folder / "pipeline.py"
    path.write_text(LOGS.format(location=location, returns=returns), encoding="utf-8")
    return load_pipeline(str(path))


def declared(pipeline: Any) -> str:
    """``<file>:<line>: `` of the pipeline's ``sf.source`` line (a regex)."""
    return re.escape(f"{pipeline.trace().sources['logs'].origin}: ")


@pytest.mark.parametrize(("extension", "item"), REFUSED, ids=[extension for extension, _ in REFUSED])
def test_a_declared_file_of_a_refused_compression_is_a_compile_error_at_its_source_line(
    tmp_path: Path, extension: str, item: compression.Compression
) -> None:
    location = f"s3://my-bucket/logs/app.log{extension}"
    pipeline = logs_pipeline(tmp_path, location)
    with pytest.raises(CompileError, match=declared(pipeline) + refused(location, item) + "$"):
        plan_pipeline(pipeline, LOCAL)


def test_every_refused_source_is_reported_at_its_line_and_parquet_takes_no_outer_compression() -> None:
    with pytest.raises(CompileError) as raised:
        plan_pipeline(load_pipeline(str(RESOURCES / "bad_compression.py")), "aws")
    first, second = raised.value.problems
    assert re.match(
        at("bad_compression.py", 'sf.source("logs"') + r"source 'logs': '.*app\.log\.xz' is compressed with xz",
        str(first),
    )
    assert re.match(
        at("bad_compression.py", 'sf.source("table"')
        + r"source 'table': 'data/table\.parquet\.gz' is compressed with gzip, and a Parquet file is read as it is "
        r"\(its pages are compressed inside it: snappy, gzip, zstd\): decompress it$",
        str(second),
    )


def test_the_format_is_told_from_the_extension_under_the_compression() -> None:
    assert sf.source("a", "logs/app.txt.gz").format == "text"
    assert sf.source("b", "s3://bucket/day.CSV.ZST").format == "csv"
    assert sf.source("c", "events.jsonl.bz2").format == "json"
    assert sf.source("d", "archive.json.xz").format == "json"  # named, then refused when the pipeline compiles


def refused_folder(folder: Path, extension: str) -> Path:
    """A folder of logs: plain ones, a gzipped one and one of the compression ``extension``."""
    folder.mkdir(parents=True)
    (folder / "a.log").write_text("plain\n")
    (folder / "b.log.gz").write_bytes(gzip.compress(b"gzipped\n"))
    (folder / f"c.log{extension}").write_bytes(b"\x04\x22\x4d\x18 not read")
    return folder / f"c.log{extension}"


@pytest.mark.parametrize(("extension", "item"), REFUSED, ids=[extension for extension, _ in REFUSED])
def test_a_local_source_holding_a_refused_compression_is_refused_before_anything_runs(
    tmp_path: Path, extension: str, item: compression.Compression
) -> None:
    pipeline = logs_pipeline(tmp_path, "logs/")
    bad = refused_folder(tmp_path / "logs", extension)
    with pytest.raises(InputError, match=declared(pipeline) + refused(str(bad), item) + "; nothing ran$"):
        run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "store"))
    assert not (tmp_path / "store" / "logs_pipeline").exists()  # nothing ran, nothing was written


def test_a_refused_file_given_with_input_is_refused_before_anything_runs(tmp_path: Path) -> None:
    pipeline = logs_pipeline(tmp_path, "logs/")
    refused_folder(tmp_path / "logs", ".gz")  # the declared folder is fine
    given = tmp_path / "elsewhere" / "day.log.br"
    given.parent.mkdir()
    given.write_bytes(b"brotli bytes")
    brotli = next(item for item in compression.COMPRESSIONS if item.name == "brotli")
    with pytest.raises(InputError, match=declared(pipeline) + refused(str(given), brotli) + "; nothing ran$"):
        run_plan(
            plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "store"), inputs={"logs": str(given)}
        )


@pytest.mark.spark
@pytest.mark.parametrize("stage", ["lines", "lengths"], ids=["reading task", "split task"])
@pytest.mark.parametrize("engine", ENGINES)
def test_the_split_task_and_the_reading_task_refuse_a_file_they_list(
    tmp_path: Path, engine: str, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where sparkflow run cannot look first (a remote source, a deployed function): the reading task of the whole
    stage ``lines`` and the split task of ``lengths``, on each engine, fail for good (not retried) naming the file."""
    from sparkflow.runtime import local

    monkeypatch.setattr(local, "_check_local_sources", lambda *arguments: None)  # as for a remote source
    lz4 = next(item for item in compression.COMPRESSIONS if item.name == "lz4")
    pipeline = logs_pipeline(tmp_path, "logs/", returns=f"{stage}(logs)")
    bad = refused_folder(tmp_path / "logs", ".lz4")
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "store"), engine=engine)
    node = summary.nodes[stage]
    assert node.status == "failed" and node.error_type == "InputError", node
    assert re.search(refused(str(bad), lz4), node.error or ""), node.error
    assert node.where == str(pipeline.trace().sources["logs"].origin)  # the source's declaration
    assert node.attempts == 1  # final: another attempt cannot fix it
