"""Every input format × compression × engine (issue 27): text, CSV and JSON lines, plain and compressed with each
compression sparkflow reads, run whole and split on spark, sail and duckdb, give what one plain PySpark job reading the
same files gives (rows and types); Parquet files written with each of Parquet's own codecs too; bad records of
compressed files are named by the file and its line. A compression sparkflow does not read is refused with an error
naming the file, in each of the three places it is found: compiling, before ``sparkflow run`` runs anything, and in
the split task or the reading task.

The gzipped word count a user found reading compressed bytes on DuckDB (2,014 garbage "words" instead of 29, whole
and split, with status succeeded) is the ``text_gzip`` source here.

Time (about 45 s in make test on 2 cores): one pipeline holds every source, each read by a whole stage and by a split
one (a tiny chunk size makes several chunks), so each engine is one run. The short part ("mixed", make test) runs, on
every engine, the gzipped text, a folder per format mixing every compression read (.gz, .bz2, .zst, and the other
spellings .gzip, .GZ, .zstd and zlib's .deflate) with a plain file, and a folder of Parquet files of each codec: every
compression of every format on every engine, whole and split, where a compression shares its folder with the others.
The folders of one compression each (format × none/gzip/bzip2/zstd: "each") are ``long`` (make long-checks). The
refusals at compile time and before a run start no engine; those of the split and reading tasks start each engine for
a task that fails at once.
"""

from __future__ import annotations

import bz2
import gzip
import json
import re
import textwrap
import zlib
from collections.abc import Callable
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
from tests.runtime.reference import committed_rows, reference_outputs, rows
from tests.runtime.test_engine_parity import columns, committed_frame

ENGINES = ("spark", "sail", "duckdb")
FORMATS = {"text": ".txt", "csv": ".csv", "json": ".json"}
CHUNK_BYTES = 256  # a plain file is several chunks; every compressed file is one whole piece


def _zstd(data: bytes) -> bytes:
    import pyarrow as pa

    return bytes(pa.Codec("zstd").compress(data, asbytes=True))


# Extension -> how a file of it is written; "" is a plain file.
WRITERS = {
    "": lambda data: data,
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".zst": _zstd,
    ".gzip": gzip.compress,
    ".GZ": gzip.compress,
    ".zstd": _zstd,
    ".deflate": zlib.compress,  # Hadoop's DefaultCodec: a zlib stream
}
SINGLE = {"none": "", "gzip": ".gz", "bzip2": ".bz2", "zstd": ".zst"}  # the matrix's compressions


def content(format: str, seed: int) -> bytes:
    """A small file of ``format`` whose records differ from every other seed's; a plain copy is ~500-700 bytes."""
    words = ["spark", "duckdb", "sail", "lambda", "chunk", "stage", "river", "stone", "cloud", "word"]
    if format == "text":
        lines = [
            " ".join(words[(seed * 3 + line * 7 + n) % len(words)] for n in range(1 + line % 4)) for line in range(24)
        ]
        lines[5] = ""  # an empty line is a record too
        return ("\r\n" if seed % 2 else "\n").join(lines).encode() + (b"" if seed % 3 == 2 else b"\n")
    records = [(seed * 100 + n, words[(seed + n) % len(words)], round((seed * 13 + n * 7) / 4, 2)) for n in range(20)]
    if format == "csv":
        return ("id,word,amount\n" + "".join(f"{i},{w},{a}\n" for i, w, a in records)).encode()
    return "".join(json.dumps({"id": i, "word": w, "amount": a}) + "\n" for i, w, a in records).encode()


def write_files(folder: Path, format: str, extensions: list[str], seed: int) -> None:
    folder.mkdir(parents=True)
    for index, extension in enumerate(extensions):
        data = content(format, seed + index)
        (folder / f"part-{index}{FORMATS[format]}{extension}").write_bytes(WRITERS[extension](data))


PIPELINE = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F

    import sparkflow as sf

    SOURCES = {sources!r}


    def wordcount(lines: DataFrame) -> DataFrame:
        words = F.explode(F.split(F.lower("value"), r"[^a-z]+")).alias("word")
        return lines.select(words).where("word != ''").groupBy("word").count()


    def words(lines: DataFrame) -> DataFrame:
        return lines.select("value", F.size(F.split("value", " ")).alias("words"))


    def same(frame: DataFrame) -> DataFrame:
        return frame


    STAGES = {{"text": (wordcount, words), "csv": (same, same), "json": (same, same), "parquet": (same, same)}}
    declared = {{name: sf.source(name, location, format=form) for name, (location, form) in SOURCES.items()}}
    calls = []
    for name, (location, form) in SOURCES.items():
        whole, split = STAGES[form]
        calls.append((sf.stage(name=f"whole_{{name}}")(whole), name))
        calls.append((sf.stage(name=f"split_{{name}}", partition="rows")(split), name))


    @sf.pipeline
    def compressed():
        return [stage(declared[name]) for stage, name in calls]
    """
)


def build(folder: Path, sources: dict[str, tuple[str, str]]) -> Path:
    (folder / "pipeline.py").write_text(PIPELINE.format(sources=sources), encoding="utf-8")
    return folder / "pipeline.py"


def short_sources(folder: Path) -> dict[str, tuple[str, str]]:
    """The gzipped text folder, a folder per format mixing every compression read with plain files, and Parquet."""
    sources = {}
    write_files(folder / "text-gzip", "text", [".gz", ".gz"], seed=1)
    sources["text_gzip"] = ("text-gzip/", "text")
    for number, format in enumerate(FORMATS):
        write_files(folder / f"{format}-mixed", format, list(WRITERS), seed=10 * (number + 1))
        sources[f"{format}_mixed"] = (f"{format}-mixed/", format)
    write_parquet(folder / "parquet")
    sources["parquet"] = ("parquet/", "parquet")
    return sources


def long_sources(folder: Path) -> dict[str, tuple[str, str]]:
    """A folder of two files per format and compression of the matrix."""
    sources = {}
    for number, format in enumerate(FORMATS):
        for offset, (name, extension) in enumerate(SINGLE.items()):
            write_files(
                folder / f"{format}-{name}", format, [extension, extension], seed=100 + 10 * number + 2 * offset
            )
            sources[f"{format}_{name}"] = (f"{format}-{name}/", format)
    return sources


def write_parquet(folder: Path) -> None:
    """One Parquet file per codec of Parquet's own (snappy, gzip, zstd, none), written by pyarrow, with a few row
    groups each (a split reads them by row group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    for index, codec in enumerate(("snappy", "gzip", "zstd", "none")):
        table = pa.table(
            {
                "id": pa.array(range(index * 100, index * 100 + 60), pa.int32()),
                "word": [f"w{n % 7}" for n in range(60)],
                "amount": [n / 8 for n in range(60)],
            }
        )
        pq.write_table(table, folder / f"part-{index}-{codec}.parquet", compression=codec, row_group_size=20)


def check_run(spark: Any, path: Path, engine: str, storage: Path) -> None:
    """One run of every stage of ``path`` on ``engine``, whole and split, against the plain PySpark reference."""
    pipeline = load_pipeline(str(path))
    summary = run_plan(
        plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(storage), engine=engine, chunk_bytes=CHUNK_BYTES
    )
    assert summary.status == "succeeded", {name: node.error for name, node in summary.nodes.items() if node.error}
    expected = reference_outputs(spark, pipeline)
    for node, location in summary.outputs.items():
        if node.startswith("split_") and not node.endswith("parquet"):
            assert (summary.nodes[node].chunks or 0) > 1, node
        assert committed_rows(spark, location) == rows(expected[node]), (engine, node)
        found = columns(committed_frame(spark, location))
        if engine == "duckdb" and "_csv_" in node:  # a known difference (docs/engines.md), compressed or not
            found = [(name, "int" if (name, kind) == ("id", "bigint") else kind) for name, kind in found]
        assert found == columns(expected[node]), (engine, node)


# The sources of one pipeline each: "mixed" (make test) and "each" (make long-checks; see the module docs).
PARTS = {"mixed": short_sources, "each": long_sources}
MATRIX = [
    pytest.param(part, engine, id=f"{part}-{engine}", marks=pytest.mark.long if part == "each" else ())
    for part in PARTS
    for engine in ENGINES
]


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The pipeline file of a part, with its data, written once for every engine's run."""
    built: dict[str, Path] = {}

    def pipeline(part: str) -> Path:
        if part not in built:
            folder = tmp_path_factory.mktemp(f"compressed-{part}")
            built[part] = build(folder, PARTS[part](folder))
        return built[part]

    return pipeline


@pytest.mark.spark
@pytest.mark.parametrize(("part", "engine"), MATRIX)
def test_every_format_and_compression_reads_as_spark_reads_it(
    spark: Any, pipelines: Callable[[str], Path], part: str, engine: str, tmp_path: Path
) -> None:
    """Every stage of the part's pipeline on ``engine``, whole and split, against the plain PySpark reference."""
    check_run(spark, pipelines(part), engine, tmp_path)


QUARANTINED = textwrap.dedent(
    """
    from pyspark.sql import DataFrame

    import sparkflow as sf

    schema = "user STRING, amount INT"
    events = sf.source("events", "events/", format={format!r}, schema=schema, on_bad_record="quarantine")


    @sf.stage
    def kept(events: DataFrame) -> DataFrame:
        return events


    @sf.pipeline
    def quarantined():
        return kept(events)
    """
)
# (extension, text, bad records by line; None: the line itself): bzip2 (which DuckDB's readers do not decompress),
# zlib (neither do Sail's) and another spelling of gzip beside it.
BAD_FILES = {
    "csv": [
        (".bz2", "user,amount\na,1\nb,x\nc,3\n", {3: "b,x"}),
        (".deflate", "user,amount\nd,4\ne,5,extra\n", {3: "e,5,extra"}),
        (".gzip", "user,amount\nf,6\n", {}),
    ],
    "json": [
        (".bz2", '{"user": "a", "amount": 1}\n{"user": "b", "amount": "x"}\n{"user": "c", "amount": 3}\n', {2: None}),
        (".deflate", '{"user": "d", "amount": 4}\n{"user": "e", "amount": \n', {2: None}),
        (".gz", '{"user": "f", "amount": 6}\n', {}),
    ],
}


@pytest.mark.spark
@pytest.mark.parametrize(
    ("engine", "format"),
    [("spark", "csv"), ("duckdb", "csv"), ("sail", "json"), ("duckdb", "json")],  # Sail keeps no bad CSV rows
)
def test_bad_records_of_compressed_files_are_named_by_their_file_and_line(
    spark: Any, tmp_path: Path, engine: str, format: str
) -> None:
    """on_bad_record="quarantine" finds the bad records of compressed files, whichever engine decompresses them, and
    names each by the compressed file the user has and its line in the decompressed text."""
    (tmp_path / "pipeline.py").write_text(QUARANTINED.format(format=format), encoding="utf-8")
    (tmp_path / "events").mkdir()
    expected = []
    for index, (extension, text, bad) in enumerate(BAD_FILES[format]):
        path = tmp_path / "events" / f"part-{index}.{format}{extension}"
        path.write_bytes(WRITERS[extension](text.encode()))
        lines = text.splitlines()
        expected += [(str(path), line, record or lines[line - 1]) for line, record in bad.items()]
    pipeline = load_pipeline(str(tmp_path / "pipeline.py"))
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "store"), engine=engine)
    node = summary.nodes["kept"]
    assert summary.status == "succeeded" and node.rejected == 2, node
    assert rows(spark.read.parquet(node.output)) == [("a", 1), ("c", 3), ("d", 4), ("f", 6)]
    assert node.rejects is not None
    kept = [json.loads(line) for path in sorted(Path(node.rejects).iterdir()) for line in path.read_text().splitlines()]
    assert [(record["file"], record["line"], record["record"]) for record in kept] == expected


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


def test_the_splitter_refuses_what_it_cannot_read_and_keeps_compressed_files_whole(tmp_path: Path) -> None:
    from sparkflow.runtime import split

    refused_folder(tmp_path / "logs", ".zst")
    manifest = split.plan_chunks(str(tmp_path / "logs"), "text", 4)
    pieces = {piece.uri.rsplit("/", 1)[-1]: piece for chunk in manifest.chunks for piece in chunk.pieces}
    assert pieces["b.log.gz"].whole and pieces["c.log.zst"].whole and not pieces["a.log"].whole
    bad = refused_folder(tmp_path / "more", ".snappy")
    snappy = next(item for item in compression.COMPRESSIONS if item.name == "snappy")
    message = refused(str(bad), snappy).replace("source 'logs'", "cannot split the text input")
    with pytest.raises(InputError, match=message):
        split.plan_chunks(str(tmp_path / "more"), "text", 4)


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
