"""The local executor: runs a Plan on this machine through the very runtime entry the clouds invoke.

Independent stages run concurrently (threads sharing the process's one SparkSession), each as soon as all of
its inputs are committed; failed attempts are retried as the state machines would retry them. Running again
with the same run id (``--resume``) skips every node whose output is already committed.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from sparkflow import compression, engines
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import InputError, SparkflowError
from sparkflow.layout import node_location, run_location, value_key, with_slash
from sparkflow.params import INPUT_FIELD, resolve
from sparkflow.plan import Plan, PlanTask
from sparkflow.runtime import failures, logs, protocol, storage
from sparkflow.runtime.execute import RuntimeConfig, handle_event
from sparkflow.runtime.protocol import is_final

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+@-]{0,79}$")


@dataclass
class NodeSummary:
    """What happened to one node."""

    node: str
    status: str = "pending"  # pending, running, committed, already-committed, failed, not-run
    rows: int | None = None
    bytes: int | None = None
    seconds: float | None = None
    output: str | None = None
    value: Any = None
    attempts: int = 0
    error: str | None = None  # the whole failure: a stage's own as the traceback of the user's frames
    error_type: str | None = None
    where: str | None = None  # file:line of the user's code the failure points at
    fused: list[str] = field(default_factory=list)  # row-wise stages that ran inside this one's map tasks
    chunks: int | None = None  # a split stage: map tasks
    buckets: int | None = None  # a key stage: reduce tasks
    done: int = 0  # a split stage: map and reduce tasks finished
    rejected: int | None = None  # bad input records dropped (a source with on_bad_record skip or quarantine)
    rejects: str | None = None  # where the quarantined ones are


@dataclass
class RunSummary:
    """The outcome of a local run (``sparkflow run --json`` prints it).

    Attributes:
        outputs: where each output the pipeline returns is (a folder, or ``kv:`` and the key of a value).
        sinks: what publishing did per sink (location, format, mode, rows, status), once every stage committed.
        latest: the pipeline's ``_latest.json``, pointing at this run once it published.
        params: the run's parameter values, given or default.
        error: why publishing failed, when it did (a stage's failure is in its node).
    """

    pipeline: str
    run_id: str
    storage: str
    params: dict[str, Any] = field(default_factory=dict)  # the value of every parameter (sf.param) the run used
    status: str = "running"  # running, succeeded, failed
    seconds: float = 0.0
    nodes: dict[str, NodeSummary] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def run_plan(
    plan: Plan,
    pipeline: Pipeline,
    *,
    storage_root: str,
    run_id: str | None = None,
    inputs: dict[str, str] | None = None,
    resume: bool = False,
    workers: int | None = None,
    kv: str | None = None,
    on_update: Callable[[RunSummary, NodeSummary], None] | None = None,
    engine: str | None = None,
    chunk_bytes: int | None = None,
    sinks: dict[str, str] | None = None,
    publish: bool = True,
    params: Mapping[str, Any] | None = None,
    keep_work: bool = False,
) -> RunSummary:
    """Run ``plan`` here and return its summary (status ``failed`` when a node failed: nothing is raised).

    Args:
        storage_root: local folder (or URI) every run writes under.
        run_id: the run's id; new by default. An existing run is continued only with ``resume=True``.
        inputs: source name -> location overriding the declared locations.
        resume: continue the run ``run_id``: nodes already committed are skipped.
        workers: how many nodes may run at once (default: the number of cores).
        kv: the KV store URI (default: the pipeline's ``kv=``, else SQLite under the run).
        on_update: called whenever a node starts or ends.
        engine: run every stage on this engine (``spark`` or ``duckdb``) instead of the one it declares.
        chunk_bytes: input bytes per chunk for every split stage, instead of the compiled sizes.
        sinks: sink name -> location overriding the declared locations (e.g. a local folder for a test run).
        publish: publish the sinks and point ``_latest.json`` at the run once every stage committed (tools that
            run parts of a pipeline, such as ``sparkflow verify``, do not).
        params: parameter name -> value (``sf.param``; ``--param``); the others take their defaults. An unknown
            name, a value of another type or a required parameter left out is refused before anything runs.
        keep_work: keep the run's working files (``<storage>/_work/<pipeline>/<run>/``) once it has published; by
            default publishing deletes them. A run that fails or does not publish keeps them either way.

    Spark stages run in this process; stages on an engine that needs a process of its own (sail, duckdb: see
    :attr:`sparkflow.engines.EngineSpec.prepare`) run in worker processes of that engine
    (:mod:`sparkflow.runtime.workers`), unless this process was itself prepared for it.

    The runtime's JSON log lines go to ``_logs.jsonl`` in the run's folder (a local folder) or to stderr.
    """
    if run_id is not None and not _RUN_ID.match(run_id):
        raise SparkflowError(
            f"--run-id {run_id!r}: use letters, digits and . _ - = + @ (at most 80, no leading symbol)"
        )
    if chunk_bytes is not None and chunk_bytes < 1:
        raise SparkflowError(f"--chunk-size {chunk_bytes}: give a positive size, e.g. 64MB")
    if engine is not None:
        engines.engine(engine, what="--engine")
    run_id = run_id or new_run_id()
    if not storage.is_remote(storage_root):
        storage_root = os.path.abspath(storage_root)
        os.makedirs(storage_root, exist_ok=True)
    overrides = dict(inputs or {})
    unknown = sorted(set(overrides) - {source.name for source in plan.sources})
    if unknown:
        known = ", ".join(source.name for source in plan.sources) or "none"
        raise SparkflowError(
            f"--input {unknown[0]}=...: pipeline {plan.pipeline!r} has no such source (sources: {known})"
        )
    targets = dict(sinks or {})
    unknown = sorted(set(targets) - {sink.name for sink in plan.sinks})
    if unknown:
        known = ", ".join(sink.name for sink in plan.sinks) or "none"
        raise SparkflowError(f"--sink {unknown[0]}=...: pipeline {plan.pipeline!r} has no such sink (sinks: {known})")
    values = resolve(plan, params or {})
    _check_local_sources(plan, pipeline, overrides)
    run_dir = run_location(storage_root, plan.pipeline, run_id)
    if _exists(run_dir) and not resume:
        raise SparkflowError(f"run {run_id!r} already exists under {storage_root}: pass --resume to continue it")
    if resume and not _exists(run_dir):
        raise SparkflowError(f"--resume: there is no run {run_id!r} under {storage_root} to continue")
    if resume:
        _check_same_params(run_dir, run_id, values)
    config = RuntimeConfig(
        pipeline=pipeline,
        plan=plan,
        storage_root=storage_root,
        kv=kv,
        readable=tuple(overrides.values()),
        engine=engine,
        writable=tuple(targets.values()),
    )
    summary = RunSummary(
        plan.pipeline,
        run_id,
        storage_root,
        params=values,
        nodes={t.id: NodeSummary(t.id, fused=[f.id for f in t.fused]) for t in plan.tasks},
    )
    started = time.monotonic()
    handler = _handler(config)
    with _log_file(run_dir):
        if not resume:
            storage.write_file(storage.join(run_dir, _PARAMS_RECORD), json.dumps(values, sort_keys=True).encode())
        # The run's own first and last lines: `sparkflow logs --follow` stops at the last.
        logs.log(logs.RUN_START, pipeline=plan.pipeline, run_id=run_id, resume=resume)
        given: dict[str, Any] = {"sources": overrides} if overrides else {}  # the run's input, as a cloud run's
        if chunk_bytes is not None:
            given["chunk_bytes"] = chunk_bytes
        if targets:
            given["sinks"] = targets
        if values:  # as `sparkflow start` sends them: every value, defaults included, so each event names them all
            given[INPUT_FIELD] = values
        if keep_work:
            given[protocol.KEEP_WORK_FIELD] = True
        _execute(plan, config, summary, given, workers or os.cpu_count() or 1, on_update, handler)
        finished = all(n.status in _DONE for n in summary.nodes.values())
        if finished and publish:
            _publish(plan, config, summary, given, handler)
        summary.seconds = round(time.monotonic() - started, 3)
        summary.status = "succeeded" if finished and summary.error is None else "failed"
        logs.log(
            logs.RUN_END,
            severity="INFO" if summary.status == "succeeded" else "ERROR",
            pipeline=plan.pipeline,
            run_id=run_id,
            status=summary.status,
            seconds=summary.seconds,
        )
    if summary.status == "succeeded":
        for output in plan.outputs:
            task = plan.task(output)
            summary.outputs[output] = (
                f"kv:{value_key(plan.pipeline, run_id, output)}"
                if task.output == "value"
                else node_location(storage_root, plan.pipeline, run_id, output)
            )
    return summary


_DONE = ("committed", "already-committed")
_PARAMS_RECORD = "_params.json"  # the values a run started with, so that resuming it cannot mix two sets of values


def _check_same_params(run_dir: str, run_id: str, values: dict[str, Any]) -> None:
    """A resumed run keeps the parameter values it started with: its committed stages used them."""
    before = storage.read_json(storage.join(run_dir, _PARAMS_RECORD))
    if isinstance(before, dict) and before != values:
        shown = " ".join(f"--param {name}={value}" for name, value in before.items())
        raise SparkflowError(
            f"--resume: run {run_id!r} started with {shown}, and its committed stages used those values: resume it "
            "with the same --param values, or start a new run"
        )


@contextmanager
def _log_file(run_dir: str) -> Iterator[None]:
    if storage.is_remote(run_dir):
        yield
        return
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "_logs.jsonl"), "a", encoding="utf-8") as handle:
        previous = logs.configure(handle)
        try:
            yield
        finally:
            logs.configure(previous)


_Handler = Callable[[str, dict[str, Any]], dict[str, Any]]  # (the task's engine, its event) -> its result


def _handler(config: RuntimeConfig) -> _Handler:
    """What runs a task's event: ``handle_event`` here, or a worker process of the task's engine when that engine
    needs a process of its own (see :mod:`sparkflow.runtime.workers`)."""
    from sparkflow.runtime import engines as running
    from sparkflow.runtime.workers import WorkerPool

    pools: dict[str, WorkerPool] = {}

    def handle(engine: str, event: dict[str, Any]) -> dict[str, Any]:
        name = config.engine or engine
        if running.runs_here(name):
            return handle_event(event, config)
        if name not in pools:
            pools[name] = WorkerPool(config, name)
        return pools[name].handle_event(event)

    return handle


def _check_local_sources(plan: Plan, pipeline: Pipeline, overrides: dict[str, str]) -> None:
    """Every local source exists, is readable and holds data, none of it of a compression sparkflow does not read,
    before the first stage runs (not after the stages before the one that reads it); else an InputError naming the
    source and its declaration."""
    from sparkflow.runtime.execute import source_uri

    for source in plan.sources:
        uri = overrides.get(source.name) or source_uri(pipeline, source)
        if storage.is_remote(uri):
            continue
        path = uri[len("file://") :] if uri.startswith("file://") else uri
        how = f"fix the path, or pass --input {source.name}=PATH; nothing ran"
        if not os.path.exists(path):
            raise InputError(f"source {source.name!r}: nothing at {path!r}: {how}", source.origin)
        if not os.access(path, os.R_OK):
            raise InputError(f"source {source.name!r}: {path!r} cannot be read by this user: {how}", source.origin)
        files = _data_files(path) if os.path.isdir(path) else [path]
        if not files:
            raise InputError(f"source {source.name!r}: the folder {path!r} holds no data files: {how}", source.origin)
        try:
            compression.refuse(files, source.format, f"source {source.name!r}")
        except InputError as error:
            raise InputError(f"{error.message}; nothing ran", source.origin) from None


def _data_files(folder: str) -> list[str]:
    """The files of a folder a source reads: not hidden, nor under a hidden folder (``_``, ``.``), sorted."""
    found: list[str] = []
    for root, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(("_", "."))]
        found += [os.path.join(root, name) for name in names if not name.startswith(("_", "."))]
    return sorted(found)


def _exists(location: str) -> bool:
    fs, path = storage.filesystem(location)
    return bool(fs.exists(path))


def _execute(
    plan: Plan,
    config: RuntimeConfig,
    summary: RunSummary,
    params: dict[str, Any],
    workers: int,
    on_update: Callable[[RunSummary, NodeSummary], None] | None,
    handler: _Handler,
) -> None:
    # A task may read the output of a node the plan does not run (a resumed run's, or one a tool put there): it is
    # committed already, and only the plan's own tasks are waited for.
    planned = {task.id for task in plan.tasks}
    upstream = {task.id: task.upstream & planned for task in plan.tasks}
    pending = {task.id: task for task in plan.tasks}
    running: dict[Future[dict[str, Any]], PlanTask] = {}
    failed = False

    def notify(node: NodeSummary) -> None:
        if on_update:
            on_update(summary, node)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sparkflow-node") as pool:
        while pending or running:
            if not failed:
                ready = [t for t in pending.values() if all(summary.nodes[u].status in _DONE for u in upstream[t.id])]
                for task in ready:
                    del pending[task.id]
                    node = summary.nodes[task.id]
                    node.status = "running"
                    notify(node)
                    event = _event(plan, task, summary, config, params)
                    if task.fanout is None:
                        running[pool.submit(_attempts, event, handler, task, node)] = task
                    else:
                        running[pool.submit(_fanout, event, handler, task, node, workers, notify)] = task
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                node = summary.nodes[task.id]
                try:
                    _record(node, future.result())
                except Exception as error:  # the node failed for good: report it, start nothing new
                    node.status = "failed"
                    node.error, node.error_type = failures.summary(error, task.id), type(error).__name__
                    origin = getattr(error, "origin", None)
                    node.where = str(origin) if origin is not None else None
                    failed = True
                notify(node)
    for node in summary.nodes.values():
        if node.status == "pending":
            node.status = "not-run"


def _event(
    plan: Plan, task: PlanTask, summary: RunSummary, config: RuntimeConfig, params: dict[str, Any]
) -> dict[str, Any]:
    return protocol.event(plan, task, _run_field(summary, config, params))


def _run_field(summary: RunSummary, config: RuntimeConfig, params: dict[str, Any]) -> dict[str, Any]:
    """The event's ``run``: what a state machine's execution input gives it."""
    return protocol.run_object(config.plan, id=summary.run_id, storage=with_slash(config.storage_root), params=params)


def _attempts(event: dict[str, Any], handler: _Handler, task: PlanTask, node: NodeSummary) -> dict[str, Any]:
    """Run the node, retrying up to ``task.retries`` times unless the error is one retrying cannot fix.

    Each call has its own retries, as each Task state of a state machine has its own Retry: a split stage's
    split and commit tasks (which share ``node``, where all attempts are counted) do not share theirs.
    """

    def attempt() -> dict[str, Any]:
        node.attempts += 1
        return handler(task.engine, event)

    return _retrying(attempt, task.retries)


def _retrying(call: Callable[[], dict[str, Any]], retries: int) -> dict[str, Any]:
    """``call()``, tried again up to ``retries`` times unless it fails with an error retrying cannot fix: the
    protocol's :data:`~sparkflow.runtime.protocol.FINAL_ERRORS`, as the state machines judge it."""
    tries = 0
    while True:
        tries += 1
        try:
            return call()
        except Exception as error:
            if is_final(error) or tries > retries:
                raise


def _publish(plan: Plan, config: RuntimeConfig, summary: RunSummary, params: dict[str, Any], handler: _Handler) -> None:
    """The run's last task, once every stage committed: publish the sinks, point ``_latest.json`` at the run. It
    runs where the stages run (a DuckDB worker with ``--engine duckdb``), as a deployed function would."""
    event = protocol.event(plan, None, _run_field(summary, config, params))
    try:
        result = _retrying(lambda: handler(config.engine or engines.DEFAULT, event), plan.publish.retries)
    except Exception as error:  # reported in the summary, as a failed stage is
        summary.error = f"publishing failed: {type(error).__name__}: {error}"
        return
    summary.sinks = result["output"]["sinks"]
    summary.latest = result["output"]["latest"]


def _fanout(
    event: dict[str, Any],
    handler: _Handler,
    task: PlanTask,
    node: NodeSummary,
    workers: int,
    notify: Callable[[NodeSummary], None],
) -> dict[str, Any]:
    """A split stage, as its state machine runs it: split, map over chunks, (key stages) partition and reduce over
    the reducers it chose, commit.

    Each chunk task is retried on its own, as a Distributed Map retries its items.
    """
    assert task.fanout is not None
    started = time.monotonic()
    split = _attempts({**event, "phase": "split", "chunk_bytes": task.fanout.chunk_bytes}, handler, task, node)
    # A stage a resumed run finds committed has no chunks (None: the table shows none, not 0) and no partition.
    node.chunks = split["output"]["chunks"] or None
    notify(node)

    def fan(phase: str, count: int) -> None:
        total = (node.chunks or 0) + (node.buckets or 0)  # the reducers count once the partition task chose them
        step = max(1, total // 10)  # report progress about ten times per stage, however many chunks
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"sparkflow-{task.id}-{phase}") as pool:
            futures = [
                pool.submit(_attempts, {**event, "phase": phase, "chunk": index}, handler, task, NodeSummary(task.id))
                for index in range(count)
            ]
            try:
                for future in as_completed(futures):
                    future.result()
                    node.done += 1
                    if node.done % step == 0 or node.done == total:
                        notify(node)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    fan("map", node.chunks or 0)
    if "partition" in task.fanout.phases() and split["status"] != "already-committed":
        # Its attempts are counted like a chunk task's, on their own: the node's count stays its split's and commit's.
        partitioned = _attempts({**event, "phase": "partition"}, handler, task, NodeSummary(task.id))
        node.buckets = partitioned["output"]["buckets"] or None
        fan("reduce", node.buckets or 0)
    committed = _attempts({**event, "phase": "commit"}, handler, task, node)
    return {**committed, "seconds": round(time.monotonic() - started, 3)}  # the whole stage, not its last task


def _record(node: NodeSummary, result: dict[str, Any]) -> None:
    output = result["output"]
    node.status = result["status"]
    node.seconds = result["seconds"]
    node.rejected, node.rejects = output.get("rejected"), output.get("rejects")
    if output["kind"] == "dataset":
        node.rows, node.bytes, node.output = output["rows"], output["bytes"], output["uri"]
    else:
        node.value, node.output = output["value"], f"kv:{output['key']}"
