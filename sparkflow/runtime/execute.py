"""Run one node of one run: the single entry that every platform entry point (Lambda, Cloud Run, container,
the local executor) calls.

Order of work, so that a bad event touches nothing: validate the event, find the node, check every location
against the confinement, and only then read, compute, upload and commit.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.dsl.trace import StageCall, Trace
from sparkflow.errors import ConfinementError, EnvironmentProblem, EventError, InputError, StorageError
from sparkflow.layout import (
    node_location,
    rejects_location,
    run_location,
    run_work_location,
    value_key,
    work_location,
)
from sparkflow.params import from_event
from sparkflow.runtime import engines, failures, logs, records, storage
from sparkflow.runtime.engines import Engine
from sparkflow.runtime.fanout import Fused, Input
from sparkflow.runtime.protocol import EVENT_VERSION, KEEP_WORK_FIELD, validate_event, validate_result

if TYPE_CHECKING:  # the Plan is loaded with the function's configuration, not when its entry point is imported
    from sparkflow.plan import Plan, PlanSource, PlanTask


@dataclass(frozen=True)
class RuntimeConfig:
    """How this process serves a pipeline; fixed where it is deployed, never taken from an event.

    Attributes:
        pipeline: the pipeline this function serves: its trace maps the Plan's stages to their functions.
        plan: the pipeline's compiled Plan, shipped with the function: every decision about a task is read from it.
        storage_root: runs may only write under this root (an event's ``run.storage`` must lie within it).
        kv: the KV store URI; None uses the pipeline's ``kv=`` or, on a local disk, SQLite under the run.
        readable: further locations sources may be read from (deploy-time allow list, or local ``--input``).
        writable: further locations sinks may be published to (deploy-time allow list, or local ``--sink``).
        workdir: scratch folder for local copies (Lambda: /tmp); a temporary folder by default.
        engine: run every stage on this engine (``spark``, ``duckdb``, or ``spark-cluster`` in a serverless Spark
            job) whatever it declares; None: each stage's own ``engine=``. A process serving ``duckdb`` must have
            activated it before loading the pipeline (see :mod:`sparkflow.runtime.duckdb_engine`).
    """

    pipeline: Pipeline
    plan: Plan
    storage_root: str
    kv: str | None = None
    readable: tuple[str, ...] = ()
    workdir: str | None = None
    engine: str | None = None
    writable: tuple[str, ...] = ()


_TRACES: dict[int, Trace] = {}


def pipeline_trace(pipeline: Pipeline) -> Trace:
    """The pipeline's trace, computed once per process (tracing runs only the pipeline function)."""
    key = id(pipeline)
    if key not in _TRACES:
        _TRACES[key] = pipeline.trace()
    return _TRACES[key]


def source_uri(pipeline: Pipeline, source: PlanSource) -> str:
    """A declared source location; a relative local path is relative to the pipeline file's folder."""
    if storage.is_remote(source.uri) or source.uri.startswith("file://") or os.path.isabs(source.uri):
        return source.uri
    return os.path.join(os.path.dirname(os.path.abspath(pipeline.origin.file)), source.uri)


def handle_event(event: object, config: RuntimeConfig) -> dict[str, Any]:
    """Run the node ``event`` names and return the result (see ``schemas/result-1.schema.json``).

    Raises:
        EventError: the event is malformed or names something this function does not serve.
        ConfinementError: a location lies outside what this run may touch.
        InputError: an input is missing, unreadable or corrupt.
    """
    checked = validate_event(event)
    started = time.monotonic()
    pipeline, plan = config.pipeline, config.plan
    if checked["pipeline"] != pipeline.name:
        raise EventError(
            f"event field 'pipeline' is {checked['pipeline']!r}, but this function serves {pipeline.name!r}"
        )
    if checked["run"].get("plan", plan.digest) != plan.digest:
        raise EventError(
            f"event field 'run.plan' is {checked['run']['plan']!r}, but this function was deployed with plan "
            f"{plan.digest!r} of pipeline {plan.pipeline!r}: the definition that started the run and the function "
            "were compiled from different code; deploy them together again (sparkflow deploy, or package and deploy "
            "both)"
        )
    values = from_event(plan, checked["run"])  # the run's parameters: refused here when they do not fit the Plan
    trace = pipeline_trace(pipeline)
    publishing = checked.get("phase") == "publish"
    task = None if publishing else _planned_task(plan, checked["node"])
    call = None if task is None else _stage_call(trace, task)
    run = checked["run"]
    run_id: str = run["id"]
    if not storage.is_within(run["storage"], config.storage_root):
        raise ConfinementError(
            f"event field 'run.storage': {run['storage']!r} is outside the pipeline's storage root "
            f"{config.storage_root!r}; nothing was read or written"
        )
    if task is None or call is None:
        return _publish(checked, config, started, values)
    overrides: dict[str, str] = run.get("params", {}).get("sources", {})
    _check_overrides("sources", overrides, [source.name for source in plan.sources], pipeline.name)
    declared = tuple(source_uri(pipeline, source) for source in plan.sources)
    confinement = storage.Confinement(run["storage"], declared + config.readable)
    location = confinement.check_write(node_location(run["storage"], pipeline.name, run_id, task.id), "output")
    work = confinement.check_write(work_location(run["storage"], pipeline.name, run_id, task.id), "work folder")
    inputs = _input_locations(task, config, run, overrides, confinement, values)
    context = _Context(
        pipeline.name,
        call.node_id,
        run_id,
        checked.get("attempt") or storage.new_attempt_id(),
        checked.get("phase"),
        checked.get("chunk"),
    )

    phase: str | None = checked.get("phase")
    if phase is not None and task.fanout is None:
        raise EventError(
            f"event field 'phase': stage {task.stage!r} runs on its whole input in plan {plan.digest!r} and has no "
            f"{phase!r} phase"
        )
    if checked.get("fused") and phase is None:
        raise EventError("event field 'fused': only the phases of a split stage run fused stages; add 'phase'")
    fused_ids = [fused.id for fused in task.fused]
    if "fused" in checked and checked["fused"] != fused_ids:
        raise EventError(
            f"event field 'fused' is {checked['fused']!r}, but plan {plan.digest!r} fuses {fused_ids!r} into "
            f"{task.id!r}"
        )
    fused = _fused_chains(task, trace, config, run, overrides, confinement, values)
    existing = storage.read_manifest(location)
    claimed = storage.read_claim(work) if existing is None else None
    if claimed is not None:  # an earlier attempt claimed the output and stopped before it was committed
        existing = storage.publish(location, work, claimed)
    if existing is not None:
        logs.log("stage skipped: already committed", **context.fields())
        if phase in ("split", "partition"):  # a resumed run: no chunk to map or reduce, straight to commit
            return _committed_split(context, work, started, phase)
        return _result(context, existing, location, started, "already-committed")

    logs.log("stage start", **context.fields())
    try:
        with engines.one_task_at_a_time(_engine_name(config, task)):
            if phase is None:
                manifest = _run(task, call, inputs, location, work, run, config, context)
            else:
                manifest = _run_phase(checked, phase, task, call, inputs, fused, location, work, run, config, context)
    except Exception as error:
        logs.log("stage failed", severity="ERROR", **failures.log_fields(error), **context.fields())
        raise
    result = _result(context, manifest, location, started, "committed")
    if phase is not None:
        result.update({"phase": phase, **({"chunk": checked["chunk"]} if "chunk" in checked else {})})
    output = result["output"]
    rejected = {"rejected": output["rejected"]} if "rejected" in output else {}
    logs.log(
        "stage end",
        seconds=result["seconds"],
        rows=output.get("rows"),
        bytes=output.get("bytes"),
        **rejected,
        **context.fields(),
    )
    logs.emit_metrics(pipeline.name, task.id, result["seconds"], output.get("rows", 0), output.get("bytes", 0))
    return result


def _check_overrides(kind: str, overrides: dict[str, str], known: list[str], pipeline: str) -> None:
    """Every location the run's ``params.<kind>`` gives names a source (or sink) of the Plan."""
    for name in overrides:
        if name not in known:
            raise EventError(
                f"event field 'run.params.{kind}.{name}': pipeline {pipeline!r} has no {kind[:-1]} {name!r} "
                f"({kind}: {', '.join(known) or 'none'})"
            )


def _engine_name(config: RuntimeConfig, task: PlanTask) -> str:
    """The engine a task runs on: the function's (SPARKFLOW_ENGINE), else the Plan's."""
    return config.engine or task.engine


def _planned_task(plan: Plan, node: str) -> PlanTask:
    """The task of ``plan`` an event's ``node`` names. A stage the Plan fuses into another's tasks is found too: a
    state machine never sends it, but an event may run it on its own (its output then goes to its own location)."""
    tasks = {task.id: task for task in plan.tasks} | {fused.id: fused for task in plan.tasks for fused in task.fused}
    if node not in tasks:
        raise EventError(
            f"event field 'node': pipeline {plan.pipeline!r} has no node {node!r} in plan {plan.digest!r} "
            f"(nodes: {', '.join(tasks)})"
        )
    return tasks[node]


def _stage_call(trace: Trace, task: PlanTask) -> StageCall:
    """The function that runs ``task``'s stage: the only thing taken from the pipeline's code, not its Plan."""
    call = trace.calls.get(task.id)
    if call is None or call.stage.name != task.stage:
        raise EnvironmentProblem(
            f"the pipeline code deployed with this function has no stage {task.stage!r} at node {task.id!r}, which "
            "its Plan runs: the code changed after the Plan was compiled; package and deploy them together again"
        )
    return call


_SPLIT_FIELDS = ("kind", "bucket", "map_items", "reduce_items", "results", "chunks", "buckets")


@dataclass(frozen=True)
class _Context:
    """What every log line of a task names: its pipeline, node, run and attempt, and a split stage's phase and
    chunk (or bucket)."""

    pipeline: str
    node: str
    run_id: str
    attempt: str
    phase: str | None = None
    chunk: int | None = None

    def fields(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "pipeline": self.pipeline,
            "node": self.node,
            "run_id": self.run_id,
            "attempt": self.attempt,
        }
        found.update({key: value for key, value in (("phase", self.phase), ("chunk", self.chunk)) if value is not None})
        return found


def _input_locations(
    task: PlanTask,
    config: RuntimeConfig,
    run: dict[str, Any],
    overrides: dict[str, str],
    confinement: storage.Confinement,
    values: dict[str, Any],
) -> list[Input]:
    pipeline = config.pipeline
    found: list[Input] = []
    for item in task.inputs:
        if item.kind == "source":
            source = config.plan.source(item.node)
            uri = overrides.get(item.node) or source_uri(pipeline, source)
            found.append(Input(item.param, "source", confinement.check_read(uri, f"source {item.node!r}"), source))
        elif item.kind == "value":
            found.append(Input(item.param, "value", value_key(pipeline.name, run["id"], item.node)))
        elif item.kind == "param":
            found.append(Input(item.param, "param", item.node, value=values[item.node]))
        else:
            uri = node_location(run["storage"], pipeline.name, run["id"], item.node)
            found.append(Input(item.param, "dataset", confinement.check_read(uri, f"input {item.param!r}")))
    return found


def _fused_chains(
    task: PlanTask,
    trace: Trace,
    config: RuntimeConfig,
    run: dict[str, Any],
    overrides: dict[str, str],
    confinement: storage.Confinement,
    values: dict[str, Any],
) -> dict[str, list[Fused]]:
    """The stages the Plan fuses into ``task``, as chains per split parameter (upstream first): each feeds the
    parameter directly or through another one of them, at its own split input."""
    if not task.fused or task.fanout is None:
        return {}
    fused = {link.id: link for link in task.fused}
    chains: dict[str, list[Fused]] = {}
    for param in task.fanout.split:
        upstream = next(item.node for item in task.inputs if item.param == param)
        chain: list[Fused] = []
        while upstream in fused:
            link = fused[upstream]
            assert link.fanout is not None, f"the Plan fuses {link.id!r}, which it does not split"
            first = link.fanout.split[0]
            link_inputs = _input_locations(link, config, run, overrides, confinement, values)
            chain.insert(0, Fused(_stage_call(trace, link), link_inputs, first))
            upstream = next(item.node for item in link.inputs if item.param == first)
        if chain:
            chains[param] = chain
    return chains


class _Resources:
    """The engine and KV store one task uses, each started on first use (a stage that only passes values never
    starts an engine), and the one way inputs are read."""

    def __init__(self, task: PlanTask, call: StageCall, config: RuntimeConfig, run: dict[str, Any]) -> None:
        self.task, self.call, self.config, self.run = task, call, config, run
        self._engine: Engine | None = None
        self._kv: Any = None
        pipeline = config.pipeline.name
        rejects = rejects_location(run["storage"], pipeline, run["id"], call.node_id)
        # Sources are read under their on_bad_record= policies; what was rejected goes into the task's manifest.
        self.reader = records.SourceReader(
            call.stage.name,
            storage.Confinement(run["storage"]).check_write(rejects, "rejected records"),
            {"pipeline": pipeline, "node": call.node_id, "run_id": run["id"]},
        )

    def engine(self) -> Engine:
        if self._engine is None:  # with the Plan's memory: a container's size, or the largest of fused stages
            self._engine = engines.start(
                _engine_name(self.config, self.task), self.task.memory_mb, self.config.pipeline.fn.__module__
            )
        return self._engine

    def kv(self) -> Any:
        if self._kv is None:
            self._kv = _open_kv(self.config, self.run)
        return self._kv

    def read(self, item: Input, folder: str) -> Any:
        """An input read whole: a run's parameter, a value from the KV store, a source or an upstream output
        through the engine."""
        if item.kind == "param":
            return item.value
        if item.kind == "value":
            return self.kv().get(item.location)
        if item.kind == "source":
            assert item.source is not None
            return self.reader.read(self.engine(), item.source, item.location, folder)
        return self.engine().read_dataset(item.location, folder, f"input {item.param!r}")

    def failure(self, error: BaseException, inputs: list[Input]) -> BaseException:
        """The error to report for ``error``: what the engine makes of it (a corrupt record, an API it lacks), else
        the stage's own failure as its user sees it (:mod:`sparkflow.runtime.failures`), else ``error`` itself."""
        if self._engine is not None:
            names = ", ".join(repr(item.location) for item in inputs if item.kind == "source")
            problem = self._engine.explain(error, self.call.stage, names)
            if isinstance(problem, InputError):  # a bad record met while the stage ran: name its file and line
                return self.reader.explain(self._engine, problem)
            if problem is not None:
                return problem
        stage = failures.blamed(error)
        return failures.stage_failure(error, stage) if stage is not None else error

    def close(self) -> None:
        if self._kv is not None:
            self._kv.close()


def _run(
    task: PlanTask,
    call: StageCall,
    inputs: list[Input],
    location: str,
    work: str,
    run: dict[str, Any],
    config: RuntimeConfig,
    context: _Context,
) -> dict[str, Any]:
    resources = _Resources(task, call, config, run)
    with tempfile.TemporaryDirectory(prefix=f"sparkflow-{context.node}-", dir=config.workdir) as scratch:
        try:
            args: list[Any] = []
            kwargs: dict[str, Any] = {}
            for index, item in enumerate(inputs):
                _bind(call, item.param, resources.read(item, os.path.join(scratch, f"in{index}")), args, kwargs)
            try:
                with failures.running(call.stage):
                    output = call.stage.fn(*args, **kwargs)
                if task.output == "value":
                    key = value_key(context.pipeline, context.run_id, context.node)
                    resources.kv().put(key, output)
                    manifest: dict[str, Any] = {"kind": "value", "key": key, "value": output, "files": [], "from": {}}
                else:
                    manifest = _write_output(call, resources.engine(), output, work, scratch, context)
            except Exception as error:
                reported = resources.failure(error, inputs)
                if reported is error:
                    raise
                raise reported from error
        finally:
            resources.close()
    manifest.update(
        {"version": EVENT_VERSION, "node": context.node, "run_id": context.run_id, "attempt": context.attempt}
    )
    manifest.update(resources.reader.commit("records"))  # bad records its sources skipped or quarantined
    return storage.publish(location, work, manifest)


def _run_phase(
    event: dict[str, Any],
    phase: str,
    task: PlanTask,
    call: StageCall,
    inputs: list[Input],
    fused: dict[str, list[Fused]],
    location: str,
    work: str,
    run: dict[str, Any],
    config: RuntimeConfig,
    context: _Context,
) -> dict[str, Any]:
    """One phase of a split stage (see :mod:`sparkflow.runtime.fanout`)."""
    from sparkflow.runtime import fanout

    assert task.fanout is not None  # handle_event refuses a phase of a task the Plan does not split
    if phase not in task.fanout.phases():
        raise EventError(
            f"event field 'phase': stage {task.stage!r} is split by {task.fanout.mode} in plan "
            f"{config.plan.digest!r}: its phases are {', '.join(task.fanout.phases())}, not {phase!r}"
        )
    # The run's own size (sparkflow run --chunk-bytes, an execution's params) over the event's (the Plan's in a
    # compiled definition; a hand-written event may ask for another) over the Plan's.
    chunk_bytes = run.get("params", {}).get("chunk_bytes") or event.get("chunk_bytes") or task.fanout.chunk_bytes
    resources = _Resources(task, call, config, run)
    merge = call.stage.merge_function() if task.fanout.combine else None
    if task.fanout.combine and merge is None:
        raise EnvironmentProblem(
            f"plan {config.plan.digest!r} combines stage {task.stage!r} before its shuffle, but the pipeline code "
            "deployed with this function declares no combine= on it: the code changed after the Plan was compiled; "
            "package and deploy them together again"
        )

    def bind(values: dict[str, Any], target: StageCall = call) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param, _ in target.inputs:
            _bind(target, param, values[param], args, kwargs)
        return args, kwargs

    with tempfile.TemporaryDirectory(prefix=f"sparkflow-{context.node}-{phase}-", dir=config.workdir) as scratch:
        job = fanout.Job(
            call=call,
            mode=task.fanout.mode,
            split=task.fanout.split,
            partition_by=task.partition_by,
            inputs=inputs,
            location=location,
            work=work,
            attempt=context.attempt,
            chunk_bytes=int(chunk_bytes),
            scratch=scratch,
            engine=resources.engine,
            read_whole=resources.read,
            bind=bind,
            reader=resources.reader,
            fused=fused,
            merge=merge,
        )
        try:
            return fanout.run_phase(job, phase, event.get("chunk"))
        except Exception as error:
            reported = resources.failure(error, inputs)
            if reported is error:
                raise
            raise reported from error
        finally:
            resources.close()


def _bind(call: StageCall, param: str, value: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
    parameters = call.stage.signature.parameters
    name = param if param in parameters else param.rstrip("0123456789")
    kind = parameters[name].kind
    if kind is inspect.Parameter.KEYWORD_ONLY:
        kwargs[name] = value
    else:
        args.append(value)


def _write_output(
    call: StageCall, engine: Engine, output: Any, work: str, scratch: str, context: _Context
) -> dict[str, Any]:
    """Write the stage's DataFrame to this attempt's folder under ``work``; return the manifest to publish."""
    if not engine.is_dataframe(output):
        raise failures.StageError(
            f"stage {call.stage.name!r} ({call.stage.origin}) returned {type(output).__name__}, but it is declared to "
            "return a DataFrame: return one, or annotate the function's return type (e.g. -> float) for a value",
            call.stage.origin,
            kind="TypeError",
        )
    with failures.running(call.stage, evaluating=True):  # evaluating what the stage returned runs its code
        files, rows = engine.write_attempt(output, work, scratch, context.attempt)
    names = [storage.published_name(index) for index in range(len(files))]
    return {
        "kind": "dataset",
        "files": names,
        "from": {name: relative for name, (relative, _) in zip(names, files, strict=True)},
        "rows": rows,
        "bytes": sum(size for _, size in files),
    }


def _remove_work(work: str, fields: dict[str, Any]) -> None:
    """Delete a published run's working files. A failure is a warning, not a failed run: the outputs and
    ``_latest.json`` are already published, and what is left expires under the storage's lifecycle rule
    (:data:`sparkflow.layout.WORK_EXPIRY_DAYS`)."""
    try:
        storage.remove_folder(work)
    except StorageError as error:
        logs.log("work not deleted", severity="WARNING", location=work, detail=str(error)[:2000], **fields)
        return
    logs.log("work deleted", location=work, **fields)


def _publish(event: dict[str, Any], config: RuntimeConfig, started: float, values: dict[str, Any]) -> dict[str, Any]:
    """The run's publish task (see :mod:`sparkflow.runtime.publish`): every sink, then ``_latest.json``, then the
    run's working files are deleted (unless the run's input says ``keep_work``).

    Last, so that a publish that fails leaves the run as resumable as any failed run. Once ``_latest.json`` names
    the run nothing reads them: ``show``, ``read_output`` and a run resumed again read the outputs'
    ``_COMMITTED.json`` (a committed stage never opens its claim or split manifests), the logs are the run's
    ``_logs.jsonl``, and quarantined records live under the run's ``_rejects/``, not here."""
    from sparkflow.dsl.sink import sink_uri
    from sparkflow.runtime import publish

    pipeline, plan, run = config.pipeline, config.plan, event["run"]
    root, run_id = run["storage"], run["id"]
    overrides: dict[str, str] = run.get("params", {}).get("sinks", {})
    known = [sink.name for sink in plan.sinks]
    _check_overrides("sinks", overrides, known, pipeline.name)
    declared = tuple(sink_uri(sink.uri, root) for sink in plan.sinks)
    confinement = storage.Confinement(root, writable=declared + config.writable)
    targets = {
        sink.name: confinement.check_write(overrides.get(sink.name) or sink_uri(sink.uri, root), f"sink {sink.name!r}")
        for sink in plan.sinks
    }
    context = _Context(pipeline.name, "publish", run_id, event.get("attempt") or storage.new_attempt_id(), "publish")
    logs.log("publish start", sinks=known, **context.fields())
    published: dict[str, Any] = {}
    try:
        for sink in plan.sinks:
            location = node_location(root, pipeline.name, run_id, sink.node)
            manifest = storage.read_manifest(location)
            if manifest is None:
                raise InputError(
                    f"sink {sink.name!r}: stage {sink.node!r} has no committed output in run {run_id!r}; a run "
                    "publishes after every stage has committed: finish the run first (sparkflow run --resume)"
                )
            files = [storage.join(location, item) for item in manifest["files"]]
            done = publish.publish_sink(sink, targets[sink.name], files, int(manifest["rows"]), pipeline.name, run_id)
            published[sink.name] = done.to_dict()
            logs.log("sink published", sink=sink.name, **done.to_dict(), **context.fields())
        latest = publish.latest_location(root, pipeline.name)
        outputs = {
            node: f"kv:{value_key(pipeline.name, run_id, node)}"
            if plan.task(node).output == "value"
            else node_location(root, pipeline.name, run_id, node)
            for node in plan.outputs
        }
        record = {
            "pipeline": pipeline.name,
            "run_id": run_id,
            "storage": root,
            "outputs": outputs,
            "params": values,
            "sinks": {name: item["uri"] for name, item in published.items()},
            "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        storage.write_file(latest, json.dumps(record, indent=2, sort_keys=True).encode())
        work = confinement.check_write(run_work_location(root, pipeline.name, run_id), "work folder")
        if run.get("params", {}).get(KEEP_WORK_FIELD):
            logs.log("work kept", location=work, **context.fields())
        else:
            _remove_work(work, context.fields())
    except Exception as error:
        logs.log(
            "publish failed", severity="ERROR", error=type(error).__name__, detail=str(error)[:2000], **context.fields()
        )
        raise
    result = {
        "version": EVENT_VERSION,
        "pipeline": pipeline.name,
        "phase": "publish",
        "run_id": run_id,
        "status": "committed",
        "seconds": round(time.monotonic() - started, 3),
        "output": {"kind": "publish", "sinks": published, "latest": latest},
    }
    logs.log("publish end", seconds=result["seconds"], **context.fields())
    return validate_result(result)


def _open_kv(config: RuntimeConfig, run: dict[str, Any]) -> Any:
    from sparkflow.runtime.kv import open_kv

    uri = config.kv or config.pipeline.kv
    if uri:
        return open_kv(uri)
    root = run_location(run["storage"], config.pipeline.name, run["id"])
    if storage.is_remote(root):
        raise EnvironmentProblem(
            f"pipeline {config.pipeline.name!r} passes values between stages but has no KV store: "
            "set kv='dynamodb://table' (or firestore://collection) on @sf.pipeline, or SPARKFLOW_KV where deployed"
        )
    return open_kv(f"sqlite:///{os.path.join(storage.normalize(root), '_kv.sqlite')}")


def _committed_split(context: _Context, work: str, started: float, phase: str) -> dict[str, Any]:
    """The split (or partition) task's answer for a stage already committed (a resumed run): no chunks and no
    buckets, so neither the state machine (which skips the map, partition and reduce states on
    ``already-committed``) nor ``sparkflow run`` starts a chunk task. The item lists it names are where a split
    would put them; they are never read."""
    from sparkflow.runtime.fanout import pointer_to_nothing

    result = _result(context, pointer_to_nothing(work), "", started, "already-committed")
    result["phase"] = phase
    return validate_result(result)


def _result(context: _Context, manifest: dict[str, Any], location: str, started: float, status: str) -> dict[str, Any]:
    if manifest.get("kind") == "split":
        output: dict[str, Any] = {key: manifest[key] for key in _SPLIT_FIELDS}
    elif manifest.get("kind") == "value":
        output = {"kind": "value", "key": manifest["key"], "value": manifest["value"]}
    else:
        output = {
            "kind": "dataset",
            "uri": location + "/",
            "rows": manifest["rows"],
            "bytes": manifest["bytes"],
            "files": len(manifest["files"]),
        }
    if manifest.get("kind") != "split":
        output.update({key: manifest[key] for key in ("rejected", "rejects") if key in manifest})
    result = {
        "version": EVENT_VERSION,
        "pipeline": context.pipeline,
        "node": context.node,
        "run_id": context.run_id,
        "status": status,
        "seconds": round(time.monotonic() - started, 3),
        "output": output,
    }
    return validate_result(result)
