"""The splitter: every record (or Parquet row) of the input is read by exactly one chunk.

The property tests generate files of random sizes, record lengths (empty ones, and ones longer than a chunk),
line endings (LF, CRLF, mixed) with or without a final newline, plan them with random chunk sizes, read every
chunk back with :func:`read_chunk` and compare the multiset of records read with the records of the files.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkflow.errors import DefinitionError, InputError, SparkflowError
from sparkflow.runtime import split
from sparkflow.runtime.split import FileInfo, Manifest, plan_chunks, read_chunk, read_manifest, write_manifest
from tests.aws_moto import MotoAws

PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Record text: ASCII, a comma and a two-byte character (so cuts also land inside UTF-8 sequences); never a line
# break, which would end the record.
_TEXT = st.text(alphabet="ab ,é", max_size=12)
_LONG = st.text(alphabet="xyé", min_size=40, max_size=150)
_RECORD = st.one_of(_TEXT, st.just(""), _LONG)


@st.composite
def line_file(draw: st.DrawFn, format: str) -> bytes:
    """One file of records: random count and lengths, LF / CRLF / mixed endings, maybe no final newline."""
    records = draw(st.lists(_RECORD, max_size=12))
    if format == "json":
        records = [json.dumps({"v": text}, ensure_ascii=False) if text else "" for text in records]
    if format == "csv":
        records = [draw(st.sampled_from(["id,name", "a,b,c"])), *records]
    style = draw(st.sampled_from(["lf", "crlf", "mixed"]))
    endings = [
        "\r\n" if style == "crlf" or (style == "mixed" and draw(st.booleans())) else "\n" for _ in range(len(records))
    ]
    if records and not draw(st.booleans()):
        endings[-1] = ""  # no final newline
    return "".join(record + ending for record, ending in zip(records, endings, strict=True)).encode()


def records_of(data: bytes, *, header: bool) -> list[bytes]:
    """The records (lines without terminator) of one file's bytes; the header line dropped for CSV."""
    if not data:
        return []
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    lines = [line.removesuffix(b"\r") for line in lines]
    return lines[1:] if header else lines


def first_line(data: bytes) -> bytes:
    end = data.find(b"\n")
    return data if end < 0 else data[: end + 1]


def read_all(manifest: Manifest, folder: str, *, block_bytes: int = 1 << 20) -> list[tuple[int, list[str]]]:
    """``(chunk index, local paths)`` of every chunk, read into a folder of its own."""
    return [
        (
            index,
            read_chunk(
                chunk, manifest.format, manifest.header, os.path.join(folder, f"chunk-{index}"), block_bytes=block_bytes
            ),
        )
        for index, chunk in enumerate(manifest.chunks)
    ]


@pytest.fixture
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _check_line_split(format: str, contents: list[bytes], chunk_bytes: int, block_bytes: int) -> None:
    header = format == "csv"
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        (root / "in").mkdir()
        expected: Counter[bytes] = Counter()
        headers: dict[str, bytes] = {}
        for index, data in enumerate(contents):
            path = root / "in" / f"part-{index}.{format}"
            path.write_bytes(data)
            expected.update(records_of(data, header=header))
            headers[path.name] = first_line(data)
        manifest = plan_chunks(str(root / "in"), format, chunk_bytes, header=header)

        # The plan: per file, ranges are disjoint and cover [0, size) exactly.
        spans: dict[str, list[tuple[int, int]]] = {}
        for chunk in manifest.chunks:
            for piece in chunk.pieces:
                spans.setdefault(piece.uri, []).append((piece.start, piece.end))
        assert len(spans) == len(contents)
        for uri, ranges in spans.items():
            ranges.sort()
            assert ranges[0][0] == 0 and ranges[-1][1] == os.path.getsize(uri)
            assert all(left[1] == right[0] for left, right in itertools.pairwise(ranges))

        # The reads: every record exactly once; every local CSV file begins with its file's header.
        seen: Counter[bytes] = Counter()
        for index, paths in read_all(manifest, str(root / "out"), block_bytes=block_bytes):
            assert len(paths) == len(manifest.chunks[index].pieces)
            for piece, local in zip(manifest.chunks[index].pieces, paths, strict=True):
                data = Path(local).read_bytes()
                original = headers[os.path.basename(piece.uri)]
                if header and original:
                    assert first_line(data) == original, f"{local} does not begin with the header"
                seen.update(records_of(data, header=header and bool(original)))
        assert seen == expected


@pytest.mark.parametrize("format", ["text", "csv", "json"])
def test_line_formats_every_record_read_exactly_once(format: str) -> None:
    @PROPERTY
    @given(
        contents=st.lists(line_file(format), min_size=1, max_size=4),
        chunk_bytes=st.integers(min_value=1, max_value=160),
        block_bytes=st.integers(min_value=1, max_value=48),
    )
    def check(contents: list[bytes], chunk_bytes: int, block_bytes: int) -> None:
        _check_line_split(format, contents, chunk_bytes, block_bytes)

    check()


def test_record_longer_than_chunk_is_read_whole_by_one_chunk(folder: Path) -> None:
    long = "x" * 500
    (folder / "a.txt").write_bytes(f"first\r\n{long}\r\nlast".encode())
    manifest = plan_chunks(str(folder / "a.txt"), "text", 50, header=False)
    assert len(manifest.chunks) == 11
    files = [Path(path).read_bytes() for _, paths in read_all(manifest, str(folder / "out")) for path in paths]
    assert [data for data in files if data] == [f"first\r\n{long}\r\n".encode(), b"last"]
    assert files.count(b"") == 9  # the chunks inside the long record own nothing


def _pyarrow() -> Any:
    import pyarrow  # type: ignore[import-untyped]
    import pyarrow.parquet  # type: ignore[import-untyped]

    return pyarrow


@PROPERTY
@given(
    rows=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=3),
    group_rows=st.integers(min_value=1, max_value=8),
    chunk_bytes=st.integers(min_value=1, max_value=4000),
)
def test_parquet_every_row_read_exactly_once(rows: list[int], group_rows: int, chunk_bytes: int) -> None:
    pa = _pyarrow()
    with tempfile.TemporaryDirectory() as name:
        root = Path(name)
        (root / "in").mkdir()
        expected = []
        for file_index, count in enumerate(rows):
            keys = [f"{file_index}-{row}" for row in range(count)]
            expected += keys
            table = pa.table({"key": keys, "payload": ["p" * (row % 7) for row in range(count)]})
            pa.parquet.write_table(table, root / "in" / f"part-{file_index}.parquet", row_group_size=group_rows)
        manifest = plan_chunks(str(root / "in"), "parquet", chunk_bytes, header=False)
        seen = [
            key
            for _, paths in read_all(manifest, str(root / "out"))
            for path in paths
            for key in pa.parquet.read_table(path).column("key").to_pylist()
        ]
        assert sorted(seen) == sorted(expected)
        # Row-group pieces of one file never share a row group.
        groups: dict[str, list[int]] = {}
        for chunk in manifest.chunks:
            for piece in chunk.pieces:
                if piece.row_groups is not None:
                    groups.setdefault(piece.uri, []).extend(piece.row_groups)
        for uri, indexes in groups.items():
            assert sorted(indexes) == list(range(pa.parquet.ParquetFile(uri).num_row_groups))


def test_parquet_large_file_splits_on_row_groups(folder: Path) -> None:
    pa = _pyarrow()
    table = pa.table({"key": list(range(1000)), "text": [f"row {row} " * 3 for row in range(1000)]})
    pa.parquet.write_table(table, folder / "big.parquet", row_group_size=100)
    size = (folder / "big.parquet").stat().st_size
    manifest = plan_chunks(str(folder / "big.parquet"), "parquet", size // 4, header=False)
    assert 4 <= len(manifest.chunks) <= 10
    assert all(piece.row_groups for chunk in manifest.chunks for piece in chunk.pieces)
    seen = [
        key
        for _, paths in read_all(manifest, str(folder / "out"))
        for path in paths
        for key in pa.parquet.read_table(path).column("key").to_pylist()
    ]
    assert seen == list(range(1000))


@pytest.mark.parametrize("columns", ["timestamps", "timestamps and timestamp_ntz"])
def test_row_groups_of_a_spark_file_keep_their_timestamp_types(spark: Any, folder: Path, columns: str) -> None:
    """Plain Spark writes TIMESTAMP as INT96 (sparkflow's engines write INT64 microseconds, but sources come from
    anywhere); a row-group copy must read back in Spark (and DuckDB) as the same type."""
    pa = _pyarrow()
    ntz = ", CAST(at AS TIMESTAMP_NTZ) AS wall" if "ntz" in columns else ""
    frame = spark.sql(
        "SELECT id, CASE WHEN id = 7 THEN TIMESTAMP'9999-12-31 23:59:59.999999' "
        "ELSE TIMESTAMP'2024-03-31 12:52:46' + make_interval(0, 0, 0, 0, 0, 0, id) END AS at, "
        f"named_struct('seen', TIMESTAMP'1900-01-01 00:00:00', 'n', id) AS nested{ntz} FROM range(600)"
    )
    configured = spark.conf.get("spark.sql.parquet.outputTimestampType")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")  # Spark's default
    try:
        frame.coalesce(1).write.option("parquet.block.size", 256).parquet(str(folder / "in"))
    finally:
        spark.conf.set("spark.sql.parquet.outputTimestampType", configured)
    written = [path for path in (folder / "in").iterdir() if path.suffix == ".parquet"]
    assert pa.parquet.ParquetFile(written[0]).num_row_groups > 2
    manifest = plan_chunks(str(folder / "in"), "parquet", 2000, header=False)
    copies = [path for _, paths in read_all(manifest, str(folder / "out")) for path in paths]
    assert len(copies) > 1 and all(str(folder / "out") in path for path in copies)
    original = spark.read.parquet(str(folder / "in"))
    copied = spark.read.schema(original.schema).parquet(*copies)
    assert sorted(copied.collect()) == sorted(original.collect())
    if "ntz" not in columns:  # the copies keep Spark's INT96, so every reader sees the same type as before
        assert pa.parquet.ParquetFile(copies[0]).schema.column(1).physical_type == "INT96"


def test_small_files_are_packed(folder: Path) -> None:
    for index in range(10):
        (folder / f"f{index}.txt").write_bytes(b"123456789\n")
    assert [len(chunk.pieces) for chunk in plan_chunks(str(folder), "text", 100, header=False).chunks] == [10]
    assert [len(chunk.pieces) for chunk in plan_chunks(str(folder), "text", 35, header=False).chunks] == [3, 3, 3, 1]


def test_input_below_chunk_size_is_one_chunk_read_in_place(folder: Path) -> None:
    (folder / "a.csv").write_bytes(b"id,name\r\n1,a\r\n2,b")
    (folder / "b.csv").write_bytes(b"id,name\n3,c\n")
    manifest = plan_chunks(str(folder), "csv", 1 << 20, header=True)
    assert len(manifest.chunks) == 1 and manifest.nbytes == 29
    # Local files the chunk reads entirely are used where they are, not copied.
    assert read_chunk(manifest.chunks[0], "csv", True, str(folder / "out")) == [
        str(folder / "a.csv"),
        str(folder / "b.csv"),
    ]


def test_gzip_files_are_whole_pieces_and_read_correctly(folder: Path) -> None:
    texts = {name: "".join(f"{name} line {row}\n" for row in range(200)).encode() for name in ("a", "b")}
    for name, data in texts.items():
        (folder / f"{name}.txt.gz").write_bytes(gzip.compress(data))
    (folder / "c.txt").write_bytes(b"plain\n" * 50)
    chunk_bytes = 100  # far below every file: plain text splits, compressed files stay whole
    manifest = plan_chunks(str(folder), "text", chunk_bytes, header=False)
    compressed = [chunk for chunk in manifest.chunks if chunk.pieces[0].uri.endswith(".gz")]
    assert len(compressed) == 2
    assert all(len(chunk.pieces) == 1 and chunk.pieces[0].whole for chunk in compressed)
    assert len(manifest.chunks) == 2 + 3  # 300 plain bytes in 3 ranges
    read = [Path(path) for _, paths in read_all(manifest, str(folder / "out")) for path in paths]
    unpacked = sorted(gzip.decompress(path.read_bytes()) for path in read if path.suffix == ".gz")
    assert unpacked == sorted(texts.values())
    assert b"".join(path.read_bytes() for path in read if path.suffix == ".txt") == b"plain\n" * 50


def test_small_compressed_files_are_packed_whole(folder: Path) -> None:
    for name in ("a", "b", "c"):
        (folder / f"{name}.json.gz").write_bytes(gzip.compress(b'{"v": 1}\n'))
    manifest = plan_chunks(str(folder), "json", 1 << 20, header=False)
    assert len(manifest.chunks) == 1
    assert [piece.whole for piece in manifest.chunks[0].pieces] == [True, True, True]


def test_manifest_is_deterministic_and_round_trips(folder: Path) -> None:
    pa = _pyarrow()
    for index in range(3):
        (folder / f"t{index}.csv").write_bytes(b"id,name\n" + b"1,abc\n" * (40 * (index + 1)))
    table = pa.table({"key": list(range(200))})
    pa.parquet.write_table(table, folder / "p.parquet", row_group_size=20)
    files = [FileInfo(str(path), path.stat().st_size) for path in sorted(folder.glob("t*.csv"))]
    first = plan_chunks(list(reversed(files)), "csv", 100, header=True)
    second = plan_chunks([info.uri for info in files], "csv", 100, header=True)  # measured by the planner
    assert first.to_json() == second.to_json()
    assert Manifest.from_json(first.to_json()) == first
    document = json.loads(first.to_json())
    assert document["version"] == split.MANIFEST_VERSION and document["files"] == 3
    headers = {piece["header"] for chunk in document["chunks"] for piece in chunk["pieces"] if piece["start"]}
    assert headers == {"id,name\n"}
    parquet = plan_chunks(str(folder / "p.parquet"), "parquet", 200, header=False)
    assert Manifest.from_json(parquet.to_json()) == parquet
    assert parquet.to_json() == plan_chunks(str(folder / "p.parquet"), "parquet", 200, header=False).to_json()
    write_manifest(first, str(folder / "run" / "split" / "chunks.json"))
    assert read_manifest(str(folder / "run" / "split" / "chunks.json")) == first


def test_a_map_task_reads_its_chunk_from_its_group_of_the_manifest(folder: Path) -> None:
    """600 chunks in groups of 256: each index gives the whole manifest's chunk; a task never reads the rest."""
    (folder / "lines.txt").write_bytes(b"".join(b"line %05d\n" % number for number in range(600)))
    manifest = plan_chunks(str(folder / "lines.txt"), "text", 11, header=False)
    assert len(manifest.chunks) == 600
    groups = str(folder / "run" / "_split" / "lines")
    split.write_chunk_groups(manifest, groups)
    assert sorted(path.name for path in (folder / "run" / "_split" / "lines").iterdir()) == [
        "group-00000.json",
        "group-00001.json",
        "group-00002.json",
    ]
    for index in (0, 255, 256, 511, 512, 599):
        group, chunk = split.read_planned_chunk(groups, index)
        assert chunk == manifest.chunks[index]
        assert (group.format, group.header, group.chunk_bytes) == ("text", False, 11)
    for index in (600, 767, -1):
        with pytest.raises(InputError, match=rf"chunk {index} is not in the chunk manifest .*group-0000[02]\.json"):
            split.read_planned_chunk(groups, index)
    with pytest.raises(InputError, match=r"no chunk manifest at .*group-00003\.json.*split task has not finished"):
        split.read_planned_chunk(groups, 768)


def test_planner_reads_no_text_and_readers_read_only_their_range(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = b"r" * 99 + b"\n"
    (folder / "big.txt").write_bytes(record * 100)  # 10,000 bytes
    reads: list[tuple[int, int]] = []
    original = split._read

    def counting(fs: Any, path: str, start: int, end: int) -> bytes:
        reads.append((start, end))
        return original(fs, path, start, end)

    monkeypatch.setattr(split, "_read", counting)
    manifest = plan_chunks(str(folder), "text", 1000, header=False)
    assert reads == [] and len(manifest.chunks) == 10
    for index, chunk in enumerate(manifest.chunks):
        reads.clear()
        (path,) = read_chunk(chunk, "text", False, str(folder / f"out{index}"), block_bytes=256)
        piece = chunk.pieces[0]
        assert sum(end - start for start, end in reads) <= piece.nbytes + 1 + 256
        assert Path(path).read_bytes() == record * 10


def test_a_long_csv_header_is_recorded_for_every_later_piece(folder: Path) -> None:
    columns = ",".join(f"column_{index}" for index in range(12_000))  # longer than one planner window
    (folder / "wide.csv").write_bytes(f"{columns}\r\n".encode() + b"1,2\r\n" * 30)
    manifest = plan_chunks(str(folder), "csv", 40_000, header=True)
    pieces = [piece for chunk in manifest.chunks for piece in chunk.pieces]
    assert [piece.header for piece in pieces if piece.start] == [f"{columns}\r\n"] * (len(pieces) - 1)
    seen = [Path(path).read_bytes() for _, paths in read_all(manifest, str(folder / "out")) for path in paths]
    assert all(data.startswith(f"{columns}\r\n".encode()) for data in seen)
    assert sum(len(records_of(data, header=True)) for data in seen) == 30


def test_import_stays_light() -> None:
    code = (
        "import sys, sparkflow.runtime.split\n"
        "heavy = sorted({'pyarrow', 'boto3', 'pyspark', 's3fs'} & {name.split('.')[0] for name in sys.modules})\n"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- bad input ------------------------------------------------------------------------------------------------


def test_chunk_size_below_one_is_refused(folder: Path) -> None:
    (folder / "a.txt").write_bytes(b"x\n")
    with pytest.raises(DefinitionError, match=r"chunk size 0 .*chunk_size= on the stage or --chunk-size"):
        plan_chunks(str(folder), "text", 0, header=False)


def test_missing_input_names_the_location(folder: Path) -> None:
    missing = str(folder / "nope" / "data.csv")
    with pytest.raises(InputError, match=rf"nothing at '{missing}' to split: check the location"):
        plan_chunks(missing, "csv", 10, header=True)
    with pytest.raises(SparkflowError, match="holds no data files to split"):
        plan_chunks(str(folder), "csv", 10, header=True)


def test_unknown_format_is_refused(folder: Path) -> None:
    with pytest.raises(
        DefinitionError, match=r"cannot split unknown format 'xml': use one of text, csv, json, parquet"
    ):
        plan_chunks(str(folder), "xml", 10, header=False)
    with pytest.raises(DefinitionError, match=r"header=True applies to csv only"):
        plan_chunks(str(folder), "text", 10, header=True)


def test_corrupt_parquet_names_the_file(folder: Path) -> None:
    (folder / "bad.parquet").write_bytes(b"not parquet at all" * 20)
    with pytest.raises(InputError, match=r"cannot read the Parquet footer of '.*bad\.parquet'.*format="):
        plan_chunks(str(folder), "parquet", 10, header=False)


def test_file_removed_after_planning_names_it(folder: Path) -> None:
    (folder / "a.txt").write_bytes(b"line\n" * 100)
    manifest = plan_chunks(str(folder), "text", 100, header=False)
    (folder / "a.txt").unlink()
    with pytest.raises(InputError, match=r"'.*a\.txt': the file no longer exists.*split it again"):
        read_chunk(manifest.chunks[1], "text", False, str(folder / "out"))


def test_file_shrunk_after_planning_names_it(folder: Path) -> None:
    (folder / "a.txt").write_bytes(b"line\n" * 100)
    manifest = plan_chunks(str(folder), "text", 100, header=False)
    (folder / "a.txt").write_bytes(b"line\n" * 10)
    with pytest.raises(InputError, match=r"'.*a\.txt' is shorter than the 500 bytes"):
        read_chunk(manifest.chunks[-1], "text", False, str(folder / "out"))


def test_bad_manifest_is_refused(folder: Path) -> None:
    with pytest.raises(InputError, match=r"version 99 is not the supported version 1"):
        Manifest.from_json('{"version": 99, "chunks": []}')
    with pytest.raises(InputError, match=r"not a valid chunk manifest"):
        Manifest.from_json('{"version": 1}')
    with pytest.raises(InputError, match=r"no chunk manifest at '.*chunks\.json'"):
        read_manifest(str(folder / "chunks.json"))


# -- object storage -----------------------------------------------------------------------------------------------


@pytest.mark.moto
def test_ranges_and_row_groups_on_s3(moto_aws: MotoAws, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pa = _pyarrow()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_aws.endpoint)
    s3 = moto_aws.client("s3")
    bucket = "sparkflow-split-test"
    s3.create_bucket(Bucket=bucket)
    data = b"id,name\r\n" + b"".join(f"{row},name {row}\r\n".encode() for row in range(300))
    s3.put_object(Bucket=bucket, Key="in/csv/part-0.csv", Body=data)
    s3.put_object(Bucket=bucket, Key="in/csv/_SUCCESS", Body=b"")
    manifest = plan_chunks(f"s3://{bucket}/in/csv/", "csv", 700, header=True)
    assert len(manifest.chunks) > 3
    assert {piece.uri for chunk in manifest.chunks for piece in chunk.pieces} == {f"s3://{bucket}/in/csv/part-0.csv"}
    seen = [Path(path).read_bytes() for _, paths in read_all(manifest, str(folder / "csv")) for path in paths]
    assert all(chunk.startswith(b"id,name\r\n") for chunk in seen)
    assert Counter(line for chunk in seen for line in records_of(chunk, header=True)) == Counter(
        records_of(data, header=True)
    )
    write_manifest(manifest, f"s3://{bucket}/run/split/chunks.json")
    assert read_manifest(f"s3://{bucket}/run/split/chunks.json") == manifest

    table = pa.table({"key": list(range(500))})
    pa.parquet.write_table(table, folder / "p.parquet", row_group_size=50)
    s3.put_object(Bucket=bucket, Key="in/pq/p.parquet", Body=(folder / "p.parquet").read_bytes())
    parquet = plan_chunks(f"s3://{bucket}/in/pq/p.parquet", "parquet", 600, header=False)
    assert len(parquet.chunks) > 1
    keys = [
        key
        for _, paths in read_all(parquet, str(folder / "pq"))
        for path in paths
        for key in pa.parquet.read_table(path).column("key").to_pylist()
    ]
    assert keys == list(range(500))
