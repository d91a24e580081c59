"""Shuffle objects (issue 28): a key stage's map task writes one object per chunk, its buckets' Parquet files in
bucket order, and an index of byte ranges in its commit manifest; a reduce task reads its bucket's range from each
map object. The index alone (no Spark) first, then map tasks on the local disk (a retried one) and on moto's S3,
where the map phase's PUTs are counted at the S3 API (two per map task, whatever the number of buckets) and so are
the GETs of the partition and reduce phases (each map manifest once, then per reducer its file and one range per
map object where its buckets hold anything: not a manifest and a range per map task and bucket)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkflow.layout import node_location, work_location
from sparkflow.loading import load_pipeline
from sparkflow.runtime import shuffle, storage
from sparkflow.runtime.execute import handle_event
from tests.aws_moto import MotoAws
from tests.runtime.configs import runtime_config

PIPELINE = """\
import sparkflow as sf
events = sf.source("events", "events.csv", format="csv", header=True, schema="user STRING, amount INT")
@sf.stage(partition_by="user")
def per_user(events):
    return events.groupBy("user").sum("amount")
@sf.pipeline
def shuffled():
    return per_user(events)
"""
USERS = 40
ROWS = 4000


def write_parquet(path: Path, values: list[int]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"value": values}), path)
    return path.stat().st_size


def values(paths: list[str]) -> list[int]:
    return [value for path in paths for value in pq.read_table(path).column("value").to_pylist()]


# -- the index ----------------------------------------------------------------------------------------------------


def test_pack_places_every_bucket_file_and_fetch_reads_each_bucket_back(tmp_path: Path) -> None:
    """Four buckets: one file, none, two files (an engine may write several), one file; each bucket's range is
    contiguous, its files whole, and an empty bucket has no range to read."""
    folder = tmp_path / "buckets"
    layout = {0: [[1, 2]], 1: [], 2: [[3], [4, 5]], 3: [[6]]}
    sizes = {
        bucket: [
            write_parquet(folder / f"_bucket={bucket}" / f"part-{n}.parquet", rows) for n, rows in enumerate(files)
        ]
        for bucket, files in layout.items()
    }
    (folder / "_bucket=0" / ".part-0.parquet.crc").write_bytes(b"checksum")  # engines' side files stay out
    (folder / "_SUCCESS").write_bytes(b"")
    target = tmp_path / shuffle.OBJECT
    index = shuffle.pack(str(folder), 4, str(target))

    assert index.files == tuple(tuple(sizes[bucket]) for bucket in range(4)) and index.schema == 0
    assert index.sizes() == [sum(sizes[bucket]) for bucket in range(4)]
    assert index.offsets() == [0, sizes[0][0], sizes[0][0], sizes[0][0] + sum(sizes[2]), target.stat().st_size]
    assert shuffle.Index.from_json(json.loads(json.dumps(index.to_json()))) == index  # as the manifest keeps it
    assert not list(folder.rglob("*.parquet")), "each bucket file is removed once packed: the bytes are on disk once"

    uri = str(target)
    assert index.bucket(uri, 1) is None
    for bucket, expected in [(0, [1, 2]), (2, [3, 4, 5]), (3, [6])]:
        found = index.bucket(uri, bucket)
        assert found is not None
        assert (found.start, found.end) == (index.offsets()[bucket], index.offsets()[bucket + 1])
        assert values(shuffle.fetch([found], str(tmp_path / f"read-{bucket}"))) == expected
    assert index.span(uri, 1, 2) is None
    run = index.span(uri, 1, 4)  # contiguous buckets (an empty one first): one range, their files in order
    assert run is not None and (run.start, run.end) == (index.offsets()[1], index.offsets()[4])
    assert values(shuffle.fetch([run], str(tmp_path / "span"))) == [3, 4, 5, 6]
    both = [index.bucket(uri, 0), index.bucket(uri, 3)]
    assert values(shuffle.fetch([r for r in both if r is not None], str(tmp_path / "both"))) == [1, 2, 6]
    assert values(shuffle.fetch([index.sample(uri)], str(tmp_path / "sample"))) == [1, 2]  # bucket 0's first file


def test_an_empty_chunk_packs_a_schema_file_after_its_empty_buckets(tmp_path: Path) -> None:
    schema = tmp_path / "empty" / "part-0.parquet"
    size = write_parquet(schema, [])
    target = tmp_path / shuffle.OBJECT
    index = shuffle.pack(str(tmp_path / "no-buckets"), 3, str(target), str(schema))
    assert index == shuffle.Index(((), (), ()), size)
    assert all(index.bucket(str(target), bucket) is None for bucket in range(3))
    sample = index.sample(str(target))
    assert (sample.start, sample.end) == (0, size) == (0, target.stat().st_size)
    (path,) = shuffle.fetch([sample], str(tmp_path / "read"))
    assert pq.read_schema(path).names == ["value"] and values([path]) == []


def test_pack_refuses_files_outside_the_bucket_folders(tmp_path: Path) -> None:
    """Rows an engine wrote under another name would otherwise be dropped without a word."""
    write_parquet(tmp_path / "buckets" / "_bucket=0" / "part-0.parquet", [1])
    write_parquet(tmp_path / "buckets" / "bucket=1" / "part-0.parquet", [2])
    with pytest.raises(OSError, match=r"1 file\(s\) outside its 2 bucket folders"):
        shuffle.pack(str(tmp_path / "buckets"), 2, str(tmp_path / shuffle.OBJECT))


# -- map and reduce tasks ---------------------------------------------------------------------------------------


def write_pipeline(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    module = folder / "shuffled.py"
    module.write_text(PIPELINE)
    lines = ["user,amount"] + [f"u{n % USERS:03d},{n % 7}" for n in range(ROWS)]
    (folder / "events.csv").write_text("\n".join(lines) + "\n")
    return module


def expected_sums() -> dict[str, int]:
    sums: dict[str, int] = {}
    for n in range(ROWS):
        sums[f"u{n % USERS:03d}"] = sums.get(f"u{n % USERS:03d}", 0) + n % 7
    return sums


class Run:
    """One run of ``shuffled``'s key stage, phase by phase through the runtime's event handler."""

    def __init__(self, module: Path, root: str, run_id: str, source: str, readable: tuple[str, ...] = ()) -> None:
        self.config = runtime_config(pipeline=load_pipeline(str(module)), storage_root=root, readable=readable)
        run = {"id": run_id, "storage": root, "params": {"sources": {"events": source}}}
        self.base = {"version": 1, "pipeline": "shuffled", "node": "per_user", "run": run}
        self.work = work_location(root, "shuffled", run_id, "per_user")
        self.output = node_location(root, "shuffled", run_id, "per_user")

    def reduce_all(self) -> int:
        """The partition task, then every reducer it chose; how many."""
        reducers: int = self.phase("partition")["buckets"]
        for number in range(reducers):
            self.phase("reduce", number)
        return reducers

    def phase(self, phase: str, chunk: int | None = None, **fields: Any) -> dict[str, Any]:
        event = {**self.base, "phase": phase, **fields} | ({} if chunk is None else {"chunk": chunk})
        answer: dict[str, Any] = handle_event(event, self.config)["output"]
        return answer

    def shuffle_manifest(self, chunk: int) -> dict[str, Any]:
        manifest = storage.read_manifest(storage.join(self.work, "shuffle", "events", f"chunk-{chunk:05d}"))
        assert manifest is not None
        return manifest


def sums(spark: Any, location: str, folder: Path) -> dict[str, int]:
    """user -> sum of the committed output at ``location`` (copied here first when it is on S3)."""
    files = storage.committed_files(location, "per_user")
    folder.mkdir(parents=True, exist_ok=True)
    local = []
    for number, uri in enumerate(files):
        fs, path = storage.filesystem(uri)
        if not storage.is_local_fs(fs):
            fs.get_file(path, str(folder / f"{number:05d}.parquet"))
            path = str(folder / f"{number:05d}.parquet")
        local.append(path)
    return {row[0]: row[1] for row in spark.read.parquet(*local).collect()}


@pytest.mark.spark
def test_a_retried_map_task_leaves_only_its_committed_object_to_the_reducers(spark: Any, tmp_path: Path) -> None:
    """Map task 0 runs as attempt a1, which uploads its object and is lost before its commit counts (its manifest
    gone); a2 maps the chunk again and commits its own object; a3, a duplicate, finds the commit and writes
    nothing. Both objects sit in the attempts folder; reducers read only what the manifest indexes: no row twice."""
    module = write_pipeline(tmp_path / "code")
    root = f"{tmp_path / 'store'}/"
    run = Run(module, root, "r1", str(tmp_path / "code" / "events.csv"))
    split = run.phase("split", chunk_bytes=8 * 1024)
    assert split["chunks"] >= 2 and split["buckets"] >= 2
    run.phase("map", 0, attempt="a1")
    first = run.shuffle_manifest(0)
    part = Path(run.work) / "shuffle" / "events" / "chunk-00000"
    (part / storage.MANIFEST).unlink()
    run.phase("map", 0, attempt="a2")
    second = run.shuffle_manifest(0)
    run.phase("map", 0, attempt="a3")
    assert run.shuffle_manifest(0) == second
    assert first["files"] == [f"attempts/a1/{shuffle.OBJECT}"]
    assert second["files"] == [f"attempts/a2/{shuffle.OBJECT}"]
    assert sorted(path.parent.name for path in part.rglob(shuffle.OBJECT)) == ["a1", "a2"]
    for chunk in range(1, split["chunks"]):
        run.phase("map", chunk)

    for chunk in range(split["chunks"]):
        manifest = run.shuffle_manifest(chunk)
        index = shuffle.Index.from_json(manifest["index"])
        assert len(index.files) == split["buckets"]
        assert (
            index.offsets()[-1] + index.schema
            == manifest["bytes"]
            == (part.parent / f"chunk-{chunk:05d}" / manifest["files"][0]).stat().st_size
        )
    reducers = run.reduce_all()
    written = {path: path.stat().st_mtime_ns for path in (Path(run.work) / "split").rglob("*.json")}
    again = run.phase("partition")  # a retried partition task answers from reducers.json: nothing is written again
    assert again["buckets"] == reducers
    assert {path: path.stat().st_mtime_ns for path in (Path(run.work) / "split").rglob("*.json")} == written
    committed = run.phase("commit")
    assert committed["rows"] == USERS
    assert sums(spark, run.output, tmp_path / "read") == expected_sums()


WRITES = ("PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")


@contextmanager
def counted_requests(root: str, events: tuple[str, ...] = WRITES) -> Iterator[list[str]]:
    """The keys of every S3 request of ``events`` (by default the writes: PUT, copy, multipart) the runtime's s3fs
    client sends while inside."""
    fs, _ = storage.filesystem(root)
    fs.connect()  # s3fs makes its botocore client on first use: make it now, to hook its events
    seen: list[str] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append(f"{model.name} {params.get('Key', '')}")

    for name in events:
        fs.s3.meta.events.register(f"before-parameter-build.s3.{name}", record)
    try:
        yield seen
    finally:
        for name in events:
            fs.s3.meta.events.unregister(f"before-parameter-build.s3.{name}", record)


@pytest.mark.spark
@pytest.mark.moto
@pytest.mark.parametrize("chunk_kib", [8, 4])
def test_on_s3_map_tasks_make_two_puts_each_and_the_partition_reads_their_manifests_once(
    spark: Any, chunk_kib: int, tmp_path: Path, moto_aws: MotoAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every map task's writes, counted at the S3 API: its shuffle object and its commit manifest, however many
    buckets the split chose (the per-bucket layout made one PUT per non-empty bucket per map task)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_aws.endpoint)
    bucket = "sparkflow-shuffle-test"
    s3 = moto_aws.client("s3")
    if bucket not in [found["Name"] for found in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    module = write_pipeline(tmp_path / "code")
    s3.upload_file(str(tmp_path / "code" / "events.csv"), bucket, "in/events.csv")
    root = f"s3://{bucket}/root/"
    run = Run(module, root, f"r-{chunk_kib}", f"s3://{bucket}/in/events.csv", readable=(f"s3://{bucket}/in/",))
    split = run.phase("split", chunk_bytes=chunk_kib * 1024)
    maps, buckets = split["chunks"], split["buckets"]
    assert maps >= 2 and buckets >= 4

    with counted_requests(root) as writes:
        for chunk in range(maps):
            run.phase("map", chunk)
    work = work_location(root, "shuffled", f"r-{chunk_kib}", "per_user").removeprefix(f"s3://{bucket}/")
    prefix = f"{work}shuffle/events"
    assert sorted(writes) == sorted(
        f"PutObject {prefix}/chunk-{chunk:05d}/{name}"
        for chunk in range(maps)
        for name in (f"attempts/{run.shuffle_manifest(chunk)['attempt']}/{shuffle.OBJECT}", storage.MANIFEST)
    )
    assert len(writes) == 2 * maps, (maps, buckets)
    filled = sum(
        1
        for chunk in range(maps)
        for size in shuffle.Index.from_json(run.shuffle_manifest(chunk)["index"]).sizes()
        if size
    )
    assert filled > len(writes), "the per-bucket layout would have written more objects than the whole phase now"

    shuffled = f"{prefix}/chunk-"
    with counted_requests(root, ("GetObject",)) as partitioned:
        reducers = run.phase("partition")["buckets"]
    manifests = sorted(f"GetObject {shuffled}{chunk:05d}/{storage.MANIFEST}" for chunk in range(maps))
    assert sorted(key for key in partitioned if key.startswith(f"GetObject {shuffled}")) == manifests
    assert 1 <= reducers <= buckets
    files = f"{work}split/reduce/r-"
    with counted_requests(root, ("GetObject",)) as reduced:
        for number in range(reducers):
            run.phase("reduce", number)
    ranges = 0
    for number in range(reducers):
        reducer = json.loads(s3.get_object(Bucket=bucket, Key=f"{files}{number:05d}.json")["Body"].read())
        ranges += sum(len(item["ranges"]) or 1 for item in reducer["inputs"])  # a sample range when all empty
    read = [key for key in reduced if key.startswith((f"GetObject {shuffled}", f"GetObject {files}"))]
    assert sorted(key for key in read if key.startswith(f"GetObject {files}")) == sorted(
        f"GetObject {files}{number:05d}.json" for number in range(reducers)
    )
    assert not [key for key in read if key.endswith(storage.MANIFEST)], "reducers read no map manifest"
    assert len(read) == reducers + ranges <= reducers * (1 + maps)
    assert maps + len(read) < 2 * maps * buckets, "the reducers each read every manifest and range before"
    assert run.phase("commit")["rows"] == USERS
    assert sums(spark, run.output, tmp_path / "read") == expected_sums()
