"""Fault trials: run a pipeline through the real local executor with faults injected into its task processes,
then hold the outcome to the fault-free run.

A trial picks a pipeline (:data:`SUBJECTS`: the three examples and ``pipelines/ledger.py``, all with chunks small
enough that every split stage has several chunks and buckets), a fault kind, a few tasks and, in each, a point
that the fault-free run really passes (its profile), then runs the pipeline with ``--engine duckdb`` on local disk
or on moto's S3: every task runs in a DuckDB worker process, the chunk task process a SIGKILL ends, and the
executor retries failed tasks as the state machines do. Meanwhile a reader polls every ``_COMMITTED.json``, claim
and split file of the run, reads every file a manifest lists, and reads every committed output folder as a
plain Parquet reader does (every ``*.parquet`` under it, as a DuckDB glob or pyarrow would). A trial passes when

* the run succeeded,
* every node's output, as a multiset of rows (or its value), equals the fault-free run's: no row lost, none
  duplicated,
* no reader ever saw a torn manifest, claim or split file, a partial, missing or miscounted file behind a manifest,
  or a committed output folder holding any Parquet file its manifest does not list, during the run or after it,
* every duplicate attempt succeeded too.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sparkflow.compiler import plan_pipeline
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.layout import WORK, run_work_location
from sparkflow.loading import load_pipeline
from sparkflow.plan import Plan
from sparkflow.runtime import logs, shuffle, storage
from sparkflow.runtime.local import RunSummary, run_plan
from sparkflow.targets.local import LOCAL
from tests.faults.inject import KINDS, Fault, FaultPlan, fault_environment, fired, read_profile, twin_failures
from tests.faults.parquet import parquet_rows

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples"
BUCKET = "sparkflow-faults"
# Faults of one kind per trial: on distinct tasks, so the executor's retries (2 by default) always suffice.
FAULTS_PER_TRIAL = {kind: 5 for kind in KINDS} | {"transient": 4, "duplicate": 3}


@dataclass(frozen=True)
class Subject:
    """A pipeline trials run, with the chunk size that gives it several chunks and buckets."""

    name: str
    pipeline: Path
    chunk_bytes: int
    generated: str | None = None  # the source that is generated data instead of the example's own file


SUBJECTS = (
    Subject("wordcount", EXAMPLES / "wordcount" / "pipeline.py", 1024),
    Subject("revenue", EXAMPLES / "revenue" / "pipeline.py", 1536),
    Subject("clickstream", EXAMPLES / "clickstream" / "pipeline.py", 2048),
    Subject("ledger", HERE / "pipelines" / "ledger.py", 1024, generated="entries"),
)


def write_entries(path: Path, rows: int, seed: int) -> None:
    """Ledger entries as CSV: ``id,account,amount`` (a few zero amounts, which the ledger drops)."""
    generator = random.Random(seed)
    lines = ["id,account,amount"]
    lines += [f"{n},acct-{generator.randrange(40):02d},{generator.randint(-500, 500)}" for n in range(rows)]
    path.write_text("\n".join(lines) + "\n")


@cache
def _loaded(path: Path) -> tuple[Pipeline, Plan]:
    pipeline = load_pipeline(str(path))
    return pipeline, plan_pipeline(pipeline, LOCAL)


@dataclass
class Outcome:
    """What one run left: its summary, every node's output, and what the readers found wrong."""

    summary: RunSummary
    outputs: dict[str, Any]
    problems: list[str]
    seconds: float


@dataclass(frozen=True)
class Reference:
    """A subject's fault-free run: its outputs and the points each task passed (``node/phase/chunk`` -> points)."""

    subject: Subject
    backend: str  # local, or s3 (moto's S3: see object_storage)
    inputs: dict[str, str]
    outputs: dict[str, Any]
    profile: dict[str, list[str]]
    retries: dict[str, int]


def run(
    subject: Subject,
    inputs: dict[str, str],
    plan: FaultPlan,
    folder: Path,
    root: str | None = None,
    keep_work: bool = False,
) -> Outcome:
    """Run ``subject`` once under ``plan`` and check what every reader sees: the run's folder and its work folder
    (while it runs; a run that publishes deletes its work folder unless ``keep_work``).

    Storage is ``root`` (``s3://...`` on the moto server ``AWS_ENDPOINT_URL`` names), else ``folder/storage``;
    the plan, its journal and the KV store are under ``folder``.
    """
    pipeline, compiled = _loaded(subject.pipeline)
    plan_file = folder / "faults.json"
    folder.mkdir(parents=True, exist_ok=True)
    Path(plan.journal).mkdir(parents=True, exist_ok=True)
    plan.save(plan_file)
    root = root or str(folder / "storage")
    run_id = f"trial-{folder.name}"
    run_uri = storage.join(storage.normalize(root), compiled.pipeline, run_id)
    work_uri = storage.normalize(run_work_location(root, compiled.pipeline, run_id))
    kv = f"sqlite:///{folder / 'kv.sqlite'}" if storage.is_remote(root) else None
    started = time.monotonic()
    with fault_environment(plan_file), _reader(run_uri, work_uri) as seen, _log_file(folder / "runtime-logs.jsonl"):
        summary = run_plan(
            compiled,
            pipeline,
            storage_root=root,
            run_id=run_id,
            inputs=inputs,
            engine="duckdb",
            chunk_bytes=subject.chunk_bytes,
            workers=2,
            kv=kv,
            keep_work=keep_work,
        )
    seconds = time.monotonic() - started
    problems = sorted(set(seen)) + visible_problems(run_uri, work_uri) + twin_failures(plan)
    if summary.status != "succeeded":
        failed = {node.node: node.error for node in summary.nodes.values() if node.status == "failed"}
        problems.insert(0, f"run failed: {failed or summary.error}")
        return Outcome(summary, {}, problems, seconds)
    return Outcome(summary, {**outputs(summary, run_uri), **sink_rows(summary)}, problems, seconds)


def reference(subject: Subject, folder: Path, backend: str = "local", rows: int = 400, seed: int = 8) -> Reference:
    """The fault-free run of ``subject`` (profiled) on ``backend``, with generated inputs written under ``folder``."""
    inputs: dict[str, str] = {}
    if subject.generated:
        data = folder / f"{subject.name}-{subject.generated}.csv"
        write_entries(data, rows, seed)
        inputs[subject.generated] = str(data)
    run_folder = folder / f"{subject.name}-{backend}-reference"
    journal = run_folder / "journal"
    outcome = run(subject, inputs, FaultPlan(str(journal), profile=True), run_folder, storage_root(backend, run_folder))
    if outcome.problems:
        raise AssertionError(f"the fault-free run of {subject.name} on {backend} has problems: {outcome.problems}")
    _, compiled = _loaded(subject.pipeline)
    retries = {task.id: task.retries for task in compiled.tasks} | {"run": compiled.publish.retries}
    return Reference(subject, backend, inputs, outcome.outputs, read_profile(journal), retries)


@contextmanager
def _log_file(path: Path) -> Iterator[None]:
    """The runtime's log lines of this process go to ``path`` (a local run also writes its own in its folder)."""
    with open(path, "a", encoding="utf-8") as handle:
        previous = logs.configure(handle)
        try:
            yield
        finally:
            logs.configure(previous)


def storage_root(backend: str, folder: Path) -> str | None:
    """Where a run on ``backend`` keeps its data: None (``folder/storage``), or a fresh prefix of the S3 bucket."""
    if backend == "local":
        return None
    return f"s3://{BUCKET}/{folder.name}-{uuid.uuid4().hex[:8]}/"


@contextmanager
def object_storage() -> Iterator[None]:
    """moto's S3 for runs on the ``s3`` backend: the test session's moto server (started if need be), the bucket,
    and ``AWS_ENDPOINT_URL`` for this process and the task processes it starts (restored afterwards)."""
    from tests.aws_moto import start_moto

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server: no line per request
    aws = start_moto()
    s3 = aws.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = aws.endpoint
    try:
        yield
    finally:
        if previous is None:
            del os.environ["AWS_ENDPOINT_URL"]
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous


def plan_faults(kind: str, ref: Reference, generator: random.Random, journal: Path, count: int) -> FaultPlan:
    """``count`` faults of ``kind`` on distinct tasks, each at a point its fault-free attempt passes."""
    point = KINDS[kind]
    probe = Fault("probe", kind, "")
    candidates = sorted(
        (task, [n for n, passed in enumerate(points) if probe.matches(passed)]) for task, points in ref.profile.items()
    )
    candidates = [(task, calls) for task, calls in candidates if calls]
    if not candidates:
        raise AssertionError(f"no task of {ref.subject.name} passes point {point!r}")
    faults: list[Fault] = []
    for number, (task, calls) in enumerate(generator.sample(candidates, min(count, len(candidates)))):
        spread = ("raise", "transient", "kill-mid-upload", "kill-mid-publish")
        index = generator.randrange(len(calls)) if kind in spread else 0
        times = generator.randint(1, ref.retries[task.split("/", 1)[0]]) if kind == "transient" else 1
        faults.append(Fault(f"f{number}", kind, task, index, times))
    return FaultPlan(str(journal), tuple(faults))


@dataclass
class Trial:
    kind: str
    subject: str
    backend: str
    faults: int  # how many fired
    problems: list[str]
    seconds: float


def trial(kind: str, ref: Reference, generator: random.Random, folder: Path, count: int | None = None) -> Trial:
    """One run of ``ref``'s subject with ``count`` faults of ``kind``, held to the fault-free outputs."""
    plan = plan_faults(kind, ref, generator, folder / "journal", count or FAULTS_PER_TRIAL[kind])
    outcome = run(ref.subject, ref.inputs, plan, folder, storage_root(ref.backend, folder))
    problems = list(outcome.problems)
    if not problems:
        for node, expected in ref.outputs.items():
            if outcome.outputs.get(node) != expected:
                problems.append(f"{node}: {describe_difference(expected, outcome.outputs.get(node))}")
    count = sum(fired(plan, fault) for fault in plan.faults)
    return Trial(kind, ref.subject.name, ref.backend, count, problems, outcome.seconds)


def describe_difference(expected: Any, found: Any) -> str:
    if not isinstance(expected, list) or not isinstance(found, list):
        return f"expected {expected!r}, found {found!r}"
    want, got = Counter(map(repr, expected)), Counter(map(repr, found))
    lost, extra = want - got, got - want
    return f"{sum(lost.values())} row(s) lost {list(lost)[:3]}, {sum(extra.values())} extra {list(extra)[:3]}"


# --- what readers see --------------------------------------------------------------------------------------------


def outputs(summary: RunSummary, run_uri: str) -> dict[str, Any]:
    """Every node's committed output: its rows, sorted (a multiset), or its value."""
    found: dict[str, Any] = {}
    for node, result in summary.nodes.items():
        if result.output and result.output.startswith("kv:"):
            found[node] = result.value
            continue
        location = storage.join(run_uri, node)
        manifest = json.loads(_read(storage.join(location, storage.MANIFEST)))
        rows = (row for name in manifest["files"] for row in _rows(_read(storage.join(location, name))))
        found[node] = sorted(rows, key=repr)
    return found


def sink_rows(summary: RunSummary) -> dict[str, Any]:
    """Every sink the run published, as its readers see it: a Delta table's rows read by deltalake; a Parquet
    folder's visible files, each row with the ``key=value`` folders it is in (file names hold the run's id)."""
    found: dict[str, Any] = {}
    for name, published in summary.sinks.items():
        uri = published["uri"]
        if published["format"] == "delta":
            from deltalake import DeltaTable

            from sparkflow.runtime.publish import delta_storage_options

            table = DeltaTable(uri.rstrip("/"), storage_options=delta_storage_options(uri)).to_pyarrow_table()
            found[f"sink:{name}"] = sorted((tuple(row.values()) for row in table.to_pylist()), key=repr)
            continue
        fs, path = storage.filesystem(uri)
        fs.invalidate_cache()
        root = path.rstrip("/")
        rows: list[tuple[Any, ...]] = []
        for file in sorted(fs.find(path)):
            relative = file[len(root) :].lstrip("/")
            if file.endswith(".parquet") and not any(part.startswith(("_", ".")) for part in relative.split("/")):
                folders = tuple(part for part in relative.split("/")[:-1])
                rows.extend((*folders, *row) for row in _rows(_read(storage.join(uri, relative))))
        found[f"sink:{name}"] = sorted(rows, key=repr)
    return found


def _read(uri: str) -> bytes:
    fs, path = storage.filesystem(uri)
    data: bytes = fs.cat_file(path)
    return data


def _parquet_files(data: bytes, manifest: dict[str, Any]) -> list[bytes]:
    """The whole Parquet files in a file a manifest lists: itself, or, for a map task's shuffle object, each file
    its index places in it (every bucket's files in bucket order, then the schema file of an empty chunk), which
    must cover the object exactly."""
    if manifest.get("kind") != "shuffle":
        return [data]
    index = shuffle.Index.from_json(manifest["index"])
    lengths = [length for files in index.files for length in files] + ([index.schema] if index.schema else [])
    if sum(lengths) != len(data):
        raise ValueError(f"the shuffle object has {len(data)} bytes, its index places {sum(lengths)}")
    offsets = [sum(lengths[:number]) for number in range(len(lengths))]
    return [data[start : start + length] for start, length in zip(offsets, lengths, strict=True)]


def _rows(data: bytes) -> list[tuple[Any, ...]]:
    """The rows of a whole Parquet file (it fails on a partial one: no footer)."""
    return [tuple(row.values()) for row in parquet_rows(data)]


def _published(*uris: str) -> dict[str, tuple[Any, ...]]:
    """What readers of the run may open, from one listing of each of ``uris`` (the run's folder, its work folder):
    every ``_COMMITTED.json`` (stages, parts, shuffle chunks), every claim, and every JSON file of a work folder
    (split plans, chunk manifests and the item lists a Distributed Map's ItemReader reads); URI -> a version that
    changes when the file is replaced."""
    published: dict[str, tuple[Any, ...]] = {}
    for uri in uris:
        published |= _listed(uri)
    return published


def _listed(uri: str) -> dict[str, tuple[Any, ...]]:
    fs, path = storage.filesystem(uri)
    fs.invalidate_cache()
    if not fs.exists(path):
        return {}
    found: dict[str, dict[str, Any]] = fs.find(path, detail=True)
    remote = storage.is_remote(uri)
    return {
        fs.unstrip_protocol(name) if remote else name: tuple(info.get(key) for key in ("ino", "mtime", "ETag", "size"))
        for name, info in sorted(found.items())
        if name.endswith("/" + storage.MANIFEST) or (f"/{WORK}/" in name and name.endswith(".json"))
    }


def visible_problems(*uris: str) -> list[str]:
    """What is wrong with what readers can see under ``uris`` (a run's folder, its work folder): every manifest
    must list only whole files whose rows add up, every split file must be whole JSON."""
    return [problem for uri in _published(*uris) for problem in _check(uri, _read(uri))]


def _check(uri: str, data: bytes) -> list[str]:
    where = uri.rsplit("/", 1)[0]
    try:
        document = json.loads(data)
    except ValueError as error:
        return [f"{uri}: a torn JSON file: {error}"]
    if not uri.endswith("/" + storage.MANIFEST):
        return []
    rows = 0
    for name in document["files"]:
        try:
            rows += sum(len(_rows(data)) for data in _parquet_files(_read(storage.join(where, name)), document))
        except Exception as error:
            return [f"{where}: the manifest lists {name}, which is missing or partial: {type(error).__name__}"]
    if "rows" in document and rows != document["rows"]:
        return [f"{where}: the manifest says {document['rows']} rows, its files hold {rows}"]
    if f"/{WORK}/" in where or document.get("kind") != "dataset":
        return []
    return _check_folder(where, document)


def _check_folder(where: str, manifest: dict[str, Any]) -> list[str]:
    """A committed output folder, read as readers that never open the manifest read it (every ``*.parquet`` under
    it, recursively, as DuckDB's ``read_parquet('out/**/*.parquet')`` does; pyarrow, pandas and Spark also skip
    names starting with ``_`` or ``.``): exactly the manifest's files, whole, with its rows."""
    fs, path = storage.filesystem(where)
    fs.invalidate_cache()
    root = path.rstrip("/")
    found = sorted(name[len(root) :].lstrip("/") for name in fs.find(path) if name.endswith(".parquet"))
    if found != sorted(manifest["files"]):
        extra = sorted(set(found) - set(manifest["files"]))
        return [
            f"{where}: a reader of the folder sees {len(found)} Parquet files {extra[:3]}, the manifest lists "
            f"{len(manifest['files'])}"
        ]
    rows = sum(len(_rows(_read(storage.join(where, name)))) for name in found)
    if rows != manifest["rows"]:
        return [f"{where}: a reader of the folder sees {rows} rows, the manifest says {manifest['rows']}"]
    return []


@contextmanager
def _reader(*uris: str, interval: float = 0.05) -> Iterator[list[str]]:
    """A reader polling the run (``uris``: its folder, its work folder) while it runs; yields the problems it found
    (filled in when the block ends).

    It checks every version of every manifest it sees: a manifest replaced by a later attempt is checked again.
    """
    problems: list[str] = []
    stop = threading.Event()
    checked: set[tuple[str, tuple[Any, ...]]] = set()

    def poll() -> None:
        while not stop.wait(interval):
            try:
                for uri, version in _published(*uris).items():
                    if (uri, version) not in checked:
                        checked.add((uri, version))
                        problems.extend(_check(uri, _read(uri)))
            except FileNotFoundError:  # a temporary file renamed while listing: look again
                continue
            except Exception as error:  # a reader that stops checking must not pass the trial
                problems.append(f"the reader failed: {error!r}")
                return

    thread = threading.Thread(target=poll, name="fault-reader", daemon=True)
    thread.start()
    try:
        yield problems
    finally:
        stop.set()
        thread.join()


# --- a campaign: many trials, one table --------------------------------------------------------------------------


@dataclass
class Tally:
    faults: int = 0
    runs: int = 0
    on_s3: int = 0
    mismatches: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def campaign(
    seed: int,
    target: int,
    folder: Path,
    kinds: tuple[str, ...] = tuple(KINDS),
    subjects: tuple[Subject, ...] = SUBJECTS,
    s3_share: float = 0.25,
    budget: float = 420.0,
    keep: bool = False,
) -> dict[str, Tally]:
    """Trials round-robin over ``kinds`` until ``target`` faults fired (each kind at least ``target / kinds``)
    or ``budget`` seconds passed; a share ``s3_share`` of them with storage on moto's S3. Returns the tally per
    kind; the trial folders of mismatches are kept (all of them with ``keep``)."""
    generator = random.Random(seed)
    started = time.monotonic()
    references: dict[tuple[str, str], Reference] = {}
    tallies = {kind: Tally() for kind in kinds}
    per_kind = -(-target // len(kinds))
    number = 0
    with object_storage() if s3_share else _nothing():
        while time.monotonic() - started < budget:
            wanted = [kind for kind in kinds if tallies[kind].faults < per_kind]
            if not wanted and sum(t.faults for t in tallies.values()) >= target:
                break
            for kind in wanted or list(kinds):
                subject = generator.choice(subjects)
                backend = "s3" if generator.random() < s3_share else "local"
                ref = _reference(references, subject, backend, folder)
                trial_folder = folder / f"t{number:04d}"
                result = trial(kind, ref, generator, trial_folder)
                number += 1
                tally = tallies[kind]
                tally.faults += result.faults
                tally.runs += 1
                tally.on_s3 += backend == "s3"
                tally.seconds += result.seconds
                if result.problems:
                    tally.mismatches += 1
                    tally.problems.extend(f"{trial_folder.name} {subject.name} {backend}: {p}" for p in result.problems)
                elif not keep:
                    shutil.rmtree(trial_folder, ignore_errors=True)
    return tallies


def _reference(cache: dict[tuple[str, str], Reference], subject: Subject, backend: str, folder: Path) -> Reference:
    """The subject's reference on ``backend``, made on first use; the same outputs on every backend."""
    key = (subject.name, backend)
    if key not in cache:
        cache[key] = reference(subject, folder, backend)
        local = cache.get((subject.name, "local"))
        if backend != "local" and local is not None and local.outputs != cache[key].outputs:
            raise AssertionError(f"{subject.name}: the fault-free run on {backend} differs from the one on local disk")
    return cache[key]


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def table(tallies: dict[str, Tally]) -> str:
    """The campaign as a Markdown table: kind | faults injected | runs (on S3) | mismatches."""
    lines = ["| kind | faults injected | runs (on S3) | mismatches |", "|---|---:|---:|---:|"]
    for kind, tally in tallies.items():
        lines.append(f"| {kind} | {tally.faults} | {tally.runs} ({tally.on_s3}) | {tally.mismatches} |")
    faults = sum(t.faults for t in tallies.values())
    runs = sum(t.runs for t in tallies.values())
    on_s3 = sum(t.on_s3 for t in tallies.values())
    mismatches = sum(t.mismatches for t in tallies.values())
    lines.append(f"| **total** | **{faults}** | **{runs} ({on_s3})** | **{mismatches}** |")
    return "\n".join(lines)
