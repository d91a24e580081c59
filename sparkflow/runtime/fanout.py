"""Split stages at run time: the split, map, partition, reduce and commit phases of one stage.

A stage the compiler marked for splitting (``partition="rows"`` or ``partition_by=``) runs as:

* **split** (one task): measures the real input (:mod:`sparkflow.runtime.split`) and writes, under the stage's
  work folder (``<root>/_work/<pipeline>/<run>/<node>/``), ``split/plan.json`` (what is split, into how many
  chunks, and a key stage's P fine buckets: one per chunk budget of input, at most :data:`MAX_BUCKETS`) and the
  item list the state machine fans the map phase out over (``split/map-items.json``). A rows stage splits its first
  dataset input and reads its other inputs whole; a key stage splits every dataset input.
* **map** (one task per chunk): a rows stage runs the user's function on its chunk and commits the result as
  one part (``parts/chunk-NNNNN/``); a key stage assigns every row of its chunk to one of P buckets by a hash
  of the key columns and commits them as one shuffle object (``shuffle/<input>/chunk-NNNNN/``): every bucket's
  Parquet files in bucket order, and in the part's commit manifest an index of each bucket's byte range, as
  Spark's sort shuffle writes a data file and an index file (see :mod:`sparkflow.runtime.shuffle`). So a map task
  makes one data PUT whatever P is: a terabyte in 3,414 chunks and 1,000 buckets makes 3,414, not 3.4 million. A
  key stage the Plan combines (``combine=``) first runs the user's function on its chunk and buckets those partial
  results instead of its rows, as Spark's partial aggregation does before its shuffle.
* **partition** (one task, key stages): reads every map task's index once and groups the P fine buckets into R
  reducers, runs of contiguous buckets of at most a chunk budget of shuffled bytes each, as Spark's adaptive
  execution coalesces shuffle partitions (see :mod:`sparkflow.runtime.partition`): a combined word count whose
  shuffle is 2% of its input runs a fiftieth of the reducers. A bucket much larger than the chunk budget is refused
  here as skew. It writes one file per reducer (``split/reduce/r-NNNNN.json``: its byte ranges in every map object),
  the reduce phase's item list (``split/reduce-items.json``) and last ``split/reducers.json``.
* **reduce** (one task per reducer, key stages): reads its file and its buckets of every split input, one ranged
  read of each map object where they are not empty (all rows of a key are in one bucket, in every input, so joins
  and aggregates see whole keys), runs the user's function (a combined stage: its merge, on the union of the
  partial results) and commits one part (``parts/reducer-NNNNN/``).
* **commit** (one task): checks that every part is committed and publishes their files together as the stage's
  output (see :func:`sparkflow.runtime.storage.publish`), so readers downstream — sparkflow's or any Parquet
  reader — see a split stage's output exactly like a whole stage's.

Every part is committed like any output (see :mod:`sparkflow.runtime.storage`), so a retried or duplicated
chunk task never leaves partial or duplicated rows; a phase whose work is committed (a split plan, a partition's
``reducers.json``, a part) is not done again.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sparkflow import compression
from sparkflow.dsl.trace import StageCall
from sparkflow.errors import EventError, InputError, StorageError
from sparkflow.runtime import failures, partition, records, shuffle, split, storage

if TYPE_CHECKING:
    from sparkflow.plan import PlanSource

# Folders of a split stage's work folder (:func:`sparkflow.layout.work_location`).
SPLIT = "split"
PARTS = "parts"
# (the map tasks' shuffle objects: partition.map_part)
MAX_BUCKETS = 1000
# A reducer may take this many chunk budgets before its bucket counts as skewed (a conservative budget).
SKEW_FACTOR = 4
SAMPLE_BYTES = 4 * 1024 * 1024  # what schema inference of a source without a schema reads


@dataclass(frozen=True)
class Input:
    """One input of the stage, resolved by the runtime (confinement already checked)."""

    param: str
    kind: str  # source, dataset, value, param
    location: str  # a URI; for values the KV key; for a run's parameter its name
    source: PlanSource | None = None
    value: Any = None  # a run's parameter: its value in this run


@dataclass(frozen=True)
class Job:
    """What a phase needs: the stage, how its Plan splits it, its inputs, where it writes, and how to start its
    engine.

    Attributes:
        mode: the Plan's fan-out mode: ``rows`` (split -> map -> commit) or ``key`` (... -> reduce -> commit).
        split: the parameters whose inputs the Plan cuts into chunks (a rows stage's first dataset input, every
            dataset input of a key stage).
        partition_by: a key stage's key columns, which map tasks bucket rows by.
        merge: the stage's merge when the Plan combines it (``Fanout.combine``): map tasks run the stage on their
            chunk and bucket its partial results; reduce tasks run the merge on the union of their bucket's
            partial results (the stage's own function for ``combine=True``). None: map tasks bucket rows.
    """

    call: StageCall
    mode: str
    split: tuple[str, ...]
    partition_by: tuple[str, ...]
    inputs: list[Input]
    location: str  # the stage's output location
    work: str  # the stage's work folder
    attempt: str
    chunk_bytes: int
    scratch: str
    engine: Callable[[], Any]  # starts (or reuses) the stage's engine
    read_whole: Callable[[Input, str], Any]  # reads an input that is not split (any kind) into a folder
    # parameter values -> call arguments, for the stage or (second argument) a stage fused into it
    bind: Callable[..., tuple[list[Any], dict[str, Any]]]
    reader: records.SourceReader  # reads sources under their on_bad_record= policies, keeps what it rejected
    fused: dict[str, list[Fused]] = field(default_factory=dict)  # split parameter -> stages to apply, upstream first
    merge: Callable[..., Any] | None = None

    def folder(self, kind: str) -> str:
        """A new, empty scratch folder. Every read gets its own: inputs of one task (a join's two sides, the
        schema samples of both, the inputs of a stage and of the stages fused into it) must never share files."""
        return tempfile.mkdtemp(prefix=f"{kind}-", dir=self.scratch)

    def whole(self, item: Input) -> Any:
        """An input that is not split, read whole into a folder of its own."""
        return self.read_whole(item, self.folder(f"whole-{item.param}"))

    def planned_split(self) -> list[Input]:
        """The stage's inputs the Plan splits, in parameter order (what its reduce phase reads bucketed)."""
        return [item for item in self.inputs if item.param in self.split]

    def split_inputs(self) -> list[Input]:
        """What the split and map phases cut into chunks: the stage's split inputs, except that an input coming
        from fused stages is the input of the first of them (under the stage's parameter name)."""
        found: list[Input] = []
        for item in self.planned_split():
            chain = self.fused.get(item.param)
            if chain:
                first = chain[0]
                item = replace(next(i for i in first.inputs if i.param == first.param), param=item.param)
            found.append(item)
        return found

    def apply_fused(self, param: str, frame: Any) -> Any:
        """A chunk of ``param``'s input with the fused stages applied, in order (their other inputs read whole)."""
        for link in self.fused.get(param, ()):
            values = {item.param: frame if item.param == link.param else self.whole(item) for item in link.inputs}
            args, kwargs = self.bind(values, link.call)
            with failures.running(link.call.stage):
                frame = link.call.stage.fn(*args, **kwargs)
            _require_dataframe(self.engine(), frame, link.call.stage, "a stage split by rows")
        return frame

    def run_stage(self, values: dict[str, Any]) -> Any:
        """The stage's function on ``values`` (parameter -> what it receives)."""
        args, kwargs = self.bind(values)
        with failures.running(self.call.stage):
            return self.call.stage.fn(*args, **kwargs)


@dataclass(frozen=True)
class Fused:
    """A row-wise stage that runs inside a split stage's map tasks (the compiler's fuse pass): its call, its
    resolved inputs, and the parameter that takes the chunk."""

    call: StageCall
    inputs: list[Input]
    param: str


def run_phase(job: Job, phase: str, chunk: int | None) -> dict[str, Any]:
    """Run one phase; returns the manifest to report (for map/reduce: the part's; for commit: the stage's; for
    split and partition: where the item lists are)."""
    if phase == "split":
        return _split(job)
    if phase == "reduce":
        # A reducer reads its own file only (not the split plan); the reducer count is read when that file is
        # missing, to say why.
        reducer = _read_reducer(job.work, chunk) if chunk is not None and chunk >= 0 else None
        if reducer is None:
            _check_item(phase, chunk, len(_read_reducers(job.work)))
            raise InputError(
                f"no reducer file for reducer {chunk} in {job.work!r}: the partition task's files are broken"
            )
        assert chunk is not None
        return _reduce(job, chunk, reducer)
    plan = _read_plan(job.work)
    if phase == "commit":
        return _commit(job, plan)
    if phase == "partition":
        return _partition(job, plan)
    _check_item(phase, chunk, len(plan["items"]))
    assert chunk is not None
    return _map(job, plan, chunk)


def _check_item(phase: str, chunk: int | None, count: int) -> None:
    if chunk is None or not 0 <= chunk < count:
        raise EventError(f"event field 'chunk' is {chunk!r}: the {phase} phase of this run has items 0 to {count - 1}")


# --- split ---------------------------------------------------------------------------------------------------


def _split(job: Job) -> dict[str, Any]:
    plan_uri = storage.join(job.work, SPLIT, "plan.json")
    existing = storage.read_json(plan_uri)
    if existing is not None:
        return _pointer(job.work, existing)
    chosen = job.split_inputs()
    inputs: list[dict[str, Any]] = []
    items: list[list[int]] = []
    total = 0
    for index, item in enumerate(chosen):
        files = _files(item)
        form, header, schema = _format(job, item, files)
        manifest = split.plan_chunks(files, form, job.chunk_bytes, header=header)
        split.write_chunk_groups(manifest, storage.join(job.work, SPLIT, item.param))
        split.write_manifest(manifest, storage.join(job.work, SPLIT, f"{item.param}.json"))  # the whole record
        total += manifest.nbytes
        inputs.append(
            {"param": item.param, "format": form, "header": header, "schema": schema, "chunks": len(manifest.chunks)}
        )
        items.extend([index, chunk] for chunk in range(len(manifest.chunks)))
    buckets = max(1, min(MAX_BUCKETS, math.ceil(total / job.chunk_bytes))) if job.mode == "key" else 0
    plan = {"version": 1, "mode": job.mode, "buckets": buckets, "chunk_bytes": job.chunk_bytes, "inputs": inputs}
    plan["items"] = items
    _write_json(storage.join(job.work, SPLIT, "map-items.json"), [{"chunk": k} for k in range(len(items))])
    _write_json(plan_uri, plan)  # last: a plan that exists is complete
    return _pointer(job.work, plan)


def _pointer(work: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Where the item lists are, as the state machine's ItemReader needs them (S3 bucket and key), and how many
    items: ``buckets`` is the split's fine bucket count in the split's answer, the reducer count in the partition's
    (the reduce phase fans out over the partition's answer)."""
    bucket, key = _bucket_key(storage.join(work, SPLIT))
    return {
        "kind": "split",
        "bucket": bucket,
        "map_items": f"{key}/map-items.json",
        "reduce_items": f"{key}/reduce-items.json",
        "results": f"{key}/results/",
        "chunks": len(plan["items"]),
        "buckets": plan["buckets"],
    }


def pointer_to_nothing(work: str) -> dict[str, Any]:
    """The split answer of a stage that needs no chunk task (it is committed): no chunks, no buckets."""
    return _pointer(work, {"items": [], "buckets": 0})


def _bucket_key(uri: str) -> tuple[str, str]:
    if storage.is_remote(uri):
        _, _, rest = uri.partition("://")
        bucket, _, key = rest.partition("/")
        return bucket, key.rstrip("/")
    return "", uri.rstrip("/")


def _format(job: Job, item: Input, listed: list[split.FileInfo]) -> tuple[str, bool, str | None]:
    """Format, header and schema (DDL) every chunk of ``item`` (whose files are ``listed``) is read with.

    Chunks must agree on a schema: a source without one gets it inferred once, from a sample at its start,
    instead of by every chunk from its own rows.
    """
    if item.kind != "source":
        return "parquet", False, None
    assert item.source is not None
    source = item.source
    # Before the sample is read: a file of a compression sparkflow does not read is refused by the source's name.
    compression.refuse([file.uri for file in listed], source.format, f"source {source.name!r}", source.origin)
    header = bool(source.option("header", False)) if source.format == "csv" else False
    schema = source.option("schema")
    if schema or source.format not in ("csv", "json"):
        return source.format, header, schema
    # From the first file that holds anything: an empty file first in the folder (a quiet day's export) gave an
    # empty sample, so every chunk inferred its own schema and chunks without some field wrote files without it.
    files = [file for file in listed if file.size > 0]
    if not files:
        return source.format, header, None
    sample = split.Piece(files[0].uri, 0, min(files[0].size, SAMPLE_BYTES), files[0].size)
    if compression.of(files[0].uri) is not None or sample.end == files[0].size:
        sample = replace(sample, end=files[0].size, whole=True)
    folder = job.folder(f"sample-{item.param}")
    paths = split.read_chunk(split.Chunk((sample,)), source.format, header, folder)
    origins = {os.path.realpath(path): records.FileOrigin(files[0].uri, sample) for path in paths}
    # Bad records of the sample are dropped (skip, quarantine) or named (fail) here; the map tasks count them.
    reader = records.SourceReader(job.call.stage.name, job.reader.rejects, {**job.reader.fields, "phase": "split"})
    gathered = _gather(paths, job.folder(f"sample-files-{item.param}"))
    frame = reader.read(job.engine(), source, gathered, folder, origins)
    return source.format, header, _ddl(frame.schema)


def _ddl(schema: Any) -> str | None:
    """A DataFrame schema as Spark DDL (``a INT, b STRING``); None for a sample without columns (a header alone),
    whose chunks infer their own. sqlframe's schemas have no ``toDDL``: theirs is written from the fields (without
    it every DuckDB chunk inferred its own schema, and chunks without some JSON field wrote files without that
    column, which the reduce could not read together)."""
    if not schema.fields:
        return None
    if hasattr(schema, "toDDL"):
        return str(schema.toDDL())
    return ", ".join(f"`{field.name.replace('`', '``')}` {field.dataType.simpleString()}" for field in schema.fields)


def _files(item: Input) -> list[split.FileInfo]:
    """The files of a source's location, or an upstream stage's committed files, with their sizes."""
    if item.kind == "source":
        return split.list_files(item.location)
    infos: list[split.FileInfo] = []
    for uri in storage.committed_files(item.location, f"input {item.param!r}"):
        fs, path = storage.filesystem(uri)
        infos.append(split.FileInfo(uri, int(fs.size(path))))
    return infos


# --- map -----------------------------------------------------------------------------------------------------


def _map(job: Job, plan: dict[str, Any], item_index: int) -> dict[str, Any]:
    input_index, chunk_index = plan["items"][item_index]
    described = plan["inputs"][input_index]
    chosen = job.split_inputs()[input_index]
    if job.mode == "rows":
        part = storage.join(job.work, PARTS, f"chunk-{chunk_index:05d}")
    else:
        part = storage.join(job.work, partition.map_part(described["param"], chunk_index))
    existing = storage.read_manifest(part)
    if existing is not None:
        return existing
    frame = _read_chunk(job, chosen, described, chunk_index)
    if job.fused.get(chosen.param):
        with job.reader.counting(item_index == 0):  # inputs fused stages read whole count once, like the stage's
            frame = job.apply_fused(chosen.param, frame)
    engine = job.engine()
    if job.mode == "rows" or job.merge is not None:
        # Every chunk task reads the other inputs whole: their bad records count in the first one only.
        with job.reader.counting(item_index == 0):
            values = {item.param: (frame if item.param == chosen.param else job.whole(item)) for item in job.inputs}
        output = job.run_stage(values)
        if job.mode == "rows":
            return _commit_part(job, engine, output, part)
        # A combined stage shuffles its partial results on this chunk instead of the chunk's rows.
        frame = _require_dataframe(engine, output, job.call.stage, "a stage with combine=")
    return _commit_buckets(job, engine, frame, plan["buckets"], part)


def _read_chunk(job: Job, item: Input, described: dict[str, Any], chunk_index: int) -> Any:
    manifest, chunk = split.read_planned_chunk(storage.join(job.work, SPLIT, item.param), chunk_index)
    folder = job.folder(f"chunk-{item.param}")
    paths = split.read_chunk(chunk, manifest.format, manifest.header, folder)
    # Where each local file's bytes come from: a bad record is named by its place in the original file.
    origins = {
        os.path.realpath(path): records.FileOrigin(piece.uri, piece)
        for piece, path in zip(chunk.pieces, paths, strict=True)
    }
    return _read_local(job, item, described, paths, origins)


def _read_local(
    job: Job,
    item: Input,
    described: dict[str, Any],
    paths: list[str],
    origins: dict[str, records.FileOrigin] | None = None,
) -> Any:
    """A DataFrame over local files of ``item``'s format, with the schema all chunks share."""
    gathered = _gather(paths, job.folder(f"files-{item.param}"))
    options = {"header": described["header"]} if described["format"] == "csv" else {}
    if described.get("schema"):
        options["schema"] = described["schema"]
    from sparkflow.plan import PlanSource

    source = item.source
    if source is not None:
        options = {**dict(source.options), **options}
    # Bad records are the source's (its name, its declaration, its on_bad_record=); a dataset's are the stage's.
    reader = PlanSource(
        item.param if source is None else source.name,
        gathered,
        described["format"],
        None,
        tuple(sorted(options.items())),
        job.call.origin if source is None else source.origin,
        "fail" if source is None else source.on_bad_record,
    )
    return job.reader.read(job.engine(), reader, gathered, job.folder(f"copies-{item.param}"), origins)


def _gather(paths: list[str], folder: str) -> str:
    """One local folder holding ``paths`` (linked where possible), so an engine reads them as one input.

    An empty chunk (inside a record longer than a chunk) still gives a folder with one empty file.
    """
    os.makedirs(folder, exist_ok=True)
    for index, path in enumerate(paths):
        target = os.path.join(folder, f"{index:05d}-{os.path.basename(path)}")
        try:
            os.symlink(os.path.abspath(path), target)
        except OSError:
            import shutil

            shutil.copyfile(path, target)
    return folder


def _require_dataframe(engine: Any, output: Any, stage: Any, what: str) -> Any:
    """``output`` if it is a DataFrame; else the stage's error (``what`` it is, e.g. ``a split stage``)."""
    if not engine.is_dataframe(output):
        raise failures.StageError(
            f"stage {stage.name!r} ({stage.origin}) returned {type(output).__name__}: {what} must return a DataFrame",
            stage.origin,
            kind="TypeError",
        )
    return output


def _commit_part(job: Job, engine: Any, output: Any, part: str, stage: Any = None) -> dict[str, Any]:
    """Write and commit what ``stage`` (the job's stage, or its merge) returned as one part."""
    stage = stage or job.call.stage
    _require_dataframe(engine, output, stage, "a split stage")
    with failures.running(stage, evaluating=True):  # evaluating what the stage returned runs its code
        folder, rows = engine.write(output, job.folder("part"))
    files = storage.upload_attempt(folder, part, job.attempt)
    manifest = {
        "kind": "dataset",
        "files": [name for name, _ in files],
        "rows": rows,
        "bytes": sum(size for _, size in files),
        "attempt": job.attempt,
        **job.reader.commit(_part_name(job, part)),
    }
    storage.commit(part, manifest)
    return manifest


def _part_name(job: Job, part: str) -> str:
    """A part's path below the stage's work folder as one name: ``shuffle/orders/chunk-00001`` becomes
    ``shuffle-orders-chunk-00001`` (the name of its quarantined records)."""
    return part[len(job.work) :].strip("/").replace("/", "-")


def _commit_buckets(job: Job, engine: Any, frame: Any, buckets: int, part: str) -> dict[str, Any]:
    """Write the chunk's rows into ``buckets`` buckets by key hash and commit them as one part: one shuffle object
    (uploaded under this attempt's folder) and its index in the commit manifest. The object of an attempt whose
    manifest does not win is never read: reducers read only the object the committed manifest names."""
    keys = list(job.partition_by)
    missing = [key for key in keys if key not in frame.columns]
    if missing and job.merge is not None:
        stage = job.call.stage
        raise failures.StageError(
            f"stage {stage.name!r} ({stage.origin}) declares combine=, so its map tasks shuffle its output by "
            f"partition_by, but its output has no column(s) {missing} (columns: {', '.join(frame.columns)}): keep "
            "the key columns in the stage's output, or remove combine=",
            stage.origin,
            kind="ValueError",
        )
    if missing:
        raise InputError(
            f"stage {job.call.stage.name!r}: partition_by column(s) {missing} are not in its input "
            f"(columns: {', '.join(frame.columns)}); fix partition_by= on the stage"
        )
    folder = job.folder("buckets")
    bucketed = _bucketize(engine, frame, keys, buckets)
    with failures.running(
        job.call.stage, evaluating=True
    ):  # evaluating the chunk runs the code of the stages fused into it
        rows = int(engine.write_partitioned(bucketed, shuffle.BUCKET_COLUMN, folder))  # _bucket=N/part-... folders
    schema = None
    if not shuffle.data_files(folder):  # an empty chunk: keep the schema for reducers whose buckets are all empty
        empty_folder, _ = engine.write(frame.limit(0), job.folder("empty"))
        schema = os.path.join(empty_folder, min(n for n in os.listdir(empty_folder) if n.endswith(".parquet")))
    local = os.path.join(job.folder("shuffle"), shuffle.OBJECT)
    index = shuffle.pack(folder, buckets, local, schema)
    relative = posixpath.join(storage.ATTEMPTS, job.attempt, shuffle.OBJECT)
    storage.put_file(local, storage.join(part, relative))  # the task's one data PUT, whatever the bucket count
    manifest = {
        "kind": "shuffle",
        "files": [relative],
        "index": index.to_json(),
        "rows": rows,
        "bytes": os.path.getsize(local),
        "attempt": job.attempt,
        **job.reader.commit(_part_name(job, part)),
    }
    storage.commit(part, manifest)
    return manifest


def _bucketize(engine: Any, frame: Any, keys: list[str], buckets: int) -> Any:
    functions = engine.functions()
    # Keys are hashed as strings, so that inputs whose key columns differ only in numeric type (INT, BIGINT)
    # still send equal keys to the same bucket. ((h % P) + P) % P is pmod (hashes may be negative) in column
    # arithmetic every engine has (sqlframe lacks functions.pmod).
    hashed = functions.hash(*[functions.col(key).cast("string") for key in keys])
    count = functions.lit(buckets)
    return frame.withColumn(shuffle.BUCKET_COLUMN, ((hashed % count) + count) % count)


# --- partition -----------------------------------------------------------------------------------------------


def _partition(job: Job, plan: dict[str, Any]) -> dict[str, Any]:
    """Choose the reducers from the map tasks' indexes (see :mod:`sparkflow.runtime.partition`): write one file per
    reducer, then the reduce phase's item list, then last ``reducers.json``, so a retried task that finds it answers
    from it without doing the work again."""
    split_folder = storage.join(job.work, SPLIT)
    done = storage.read_json(storage.join(split_folder, partition.REDUCERS))
    if done is not None:
        return _pointer(job.work, {"items": plan["items"], "buckets": len(done["reducers"])})
    objects = partition.read_objects(job.work, plan["inputs"], job.call.stage.name)
    sizes = partition.bucket_sizes(objects, plan["buckets"])
    hot = partition.skewed(sizes, plan["chunk_bytes"], SKEW_FACTOR)
    if hot is not None:
        raise _skew(job, plan, hot, sizes[hot], sum(sizes) / len(sizes))
    runs = partition.group(sizes, plan["chunk_bytes"])
    params = [item["param"] for item in plan["inputs"]]

    def write(number: int) -> None:
        low, high = runs[number]
        _write_json(partition.reducer_uri(split_folder, number), partition.reducer_file(objects, params, low, high))

    partition.concurrently(write, range(len(runs)))
    _write_json(storage.join(split_folder, "reduce-items.json"), [{"chunk": r} for r in range(len(runs))])
    _write_json(storage.join(split_folder, partition.REDUCERS), {"reducers": [list(run) for run in runs]})
    return _pointer(job.work, {"items": plan["items"], "buckets": len(runs)})


def _skew(job: Job, plan: dict[str, Any], bucket: int, size: int, mean: float) -> InputError:
    """The refusal of a bucket far larger than both the chunk budget and the average bucket: a few keys hold most
    rows (see :func:`sparkflow.runtime.partition.skewed`)."""
    return InputError(
        f"stage {job.call.stage.name!r}: bucket {bucket} holds {size / 1024**2:,.2f} MiB of input, more than "
        f"{SKEW_FACTOR} x both its chunk budget ({plan['chunk_bytes'] / 1024**2:,.2f} MiB) and the average bucket "
        f"({mean / 1024**2:,.2f} MiB): a few key values hold most rows (skew on "
        f"{list(job.partition_by)}); give the stage more memory= or a larger chunk_size=, "
        "or pre-aggregate the hot keys"
    )


# --- reduce --------------------------------------------------------------------------------------------------


def _reduce(job: Job, number: int, reducer: dict[str, Any]) -> dict[str, Any]:
    """Reducer ``number``: its run of fine buckets from every split input, as the partition phase wrote in
    ``reducer`` (one ranged read per map object where those buckets hold anything), then the stage (or its merge)."""
    part = storage.join(job.work, PARTS, f"reducer-{number:05d}")
    existing = storage.read_manifest(part)
    if existing is not None:
        return existing
    chosen = job.planned_split()
    values: dict[str, Any] = {}
    for item, described in zip(chosen, reducer["inputs"], strict=True):
        ranges, sample = partition.reducer_ranges(job.work, described)
        # An input these buckets are empty in everywhere: its sample range, for its columns only.
        paths = shuffle.fetch(ranges if sample is None else [sample], job.folder(f"reduce-{item.param}"))
        frame = _read_local(job, item, {"format": "parquet", "header": False}, paths)
        if shuffle.BUCKET_COLUMN in frame.columns:
            frame = frame.drop(shuffle.BUCKET_COLUMN)
        values[item.param] = frame if ranges else frame.limit(0)
    for item in job.inputs:
        if item.param not in values:
            values[item.param] = job.whole(item)
    if job.merge is None or job.merge is job.call.stage.fn:  # no combining, or combine=True: the stage again
        return _commit_part(job, job.engine(), job.run_stage(values), part)
    # The merge takes the reducer's partial results alone (a combined stage has one input carrying rows).
    merging = job.call.stage.merging()
    with failures.running(merging):
        output = job.merge(values[chosen[0].param])
    return _commit_part(job, job.engine(), output, part, merging)


# --- commit --------------------------------------------------------------------------------------------------


def _commit(job: Job, plan: dict[str, Any]) -> dict[str, Any]:
    """Publish every part's files as the stage's output: part p's i-th file as ``part-<p>-<i>.parquet``."""
    if plan["mode"] == "key":
        parts = [f"reducer-{number:05d}" for number in range(len(_read_reducers(job.work)))]
    else:
        parts = [f"chunk-{chunk:05d}" for chunk in range(plan["inputs"][0]["chunks"])]
    sources: dict[str, str] = {}
    rows = size = 0
    mapped: list[dict[str, Any] | None] = []  # the map tasks' manifests: what they read and rejected
    for number, name in enumerate(parts):
        manifest = storage.read_manifest(storage.join(job.work, PARTS, name))
        if manifest is None:
            raise StorageError(
                f"stage {job.call.stage.name!r}: part {name} is not committed, so the stage cannot be committed; "
                "run its map/reduce tasks again"
            )
        for index, relative in enumerate(manifest["files"]):
            sources[storage.published_name(index, number)] = posixpath.join(PARTS, name, relative)
        rows += manifest["rows"]
        size += manifest["bytes"]
        mapped.append(manifest)
    if plan["mode"] == "key":
        mapped = [
            storage.read_manifest(storage.join(job.work, partition.map_part(item["param"], chunk)))
            for item in plan["inputs"]
            for chunk in range(item["chunks"])
        ]
    manifest = {"kind": "dataset", "files": list(sources), "from": sources, "rows": rows, "bytes": size}
    manifest.update({"parts": len(parts), "attempt": job.attempt, **_rejected(mapped)})
    return storage.publish(job.location, job.work, manifest)


def _rejected(manifests: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The stage's bad-record fields: the chunk tasks' counts added up, where their quarantined records are."""
    counted = [manifest for manifest in manifests if manifest is not None and "rejected" in manifest]
    if not counted:
        return {}
    fields: dict[str, Any] = {"rejected": sum(manifest["rejected"] for manifest in counted)}
    quarantined = [manifest["rejects"] for manifest in counted if "rejects" in manifest]
    if quarantined:
        fields["rejects"] = quarantined[0]
    return fields


# --- json files ------------------------------------------------------------------------------------------------


def _read_plan(work: str) -> dict[str, Any]:
    plan = storage.read_json(storage.join(work, SPLIT, "plan.json"))
    if plan is None:
        raise InputError(f"no split plan in {work!r}: the stage's split task has not finished in this run")
    checked: dict[str, Any] = plan
    return checked


def _read_reducers(work: str) -> list[list[int]]:
    """The partition phase's reducers: each one's run of fine buckets ``[low, high]``."""
    done = storage.read_json(storage.join(work, SPLIT, partition.REDUCERS))
    if done is None:
        raise InputError(f"no reducers in {work!r}: the stage's partition task has not finished in this run")
    reducers: list[list[int]] = done["reducers"]
    return reducers


def _read_reducer(work: str, number: int) -> dict[str, Any] | None:
    found: dict[str, Any] | None = storage.read_json(partition.reducer_uri(storage.join(work, SPLIT), number))
    return found


def _write_json(uri: str, document: Any) -> None:
    storage.write_file(uri, json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
