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
from typing import Any

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.dsl.source import Source
from sparkflow.dsl.trace import StageCall, Trace
from sparkflow.errors import ConfinementError, EnvironmentProblem, EventError, InputError
from sparkflow.layout import node_location, rejects_location, run_location, value_key, work_location
from sparkflow.runtime import engines, failures, logs, records, storage
from sparkflow.runtime.engines import Engine
from sparkflow.runtime.fanout import Fused, Input, split_inputs
from sparkflow.runtime.protocol import EVENT_VERSION, validate_event, validate_result


@dataclass(frozen=True)
class RuntimeConfig:
    """How this process serves a pipeline; fixed where it is deployed, never taken from an event.

    Attributes:
        pipeline: the pipeline this function serves.
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


def source_uri(pipeline: Pipeline, source: Source) -> str:
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
    pipeline = config.pipeline
    if checked["pipeline"] != pipeline.name:
        raise EventError(
            f"event field 'pipeline' is {checked['pipeline']!r}, but this function serves {pipeline.name!r}"
        )
    trace = pipeline_trace(pipeline)
    publishing = checked.get("phase") == "publish"
    call = None if publishing else trace.calls.get(checked["node"])
    if call is None and not publishing:
        raise EventError(
            f"event field 'node': pipeline {pipeline.name!r} has no node {checked['node']!r} "
            f"(nodes: {', '.join(trace.calls)})"
        )
    run = checked["run"]
    run_id: str = run["id"]
    if not storage.is_within(run["storage"], config.storage_root):
        raise ConfinementError(
            f"event field 'run.storage': {run['storage']!r} is outside the pipeline's storage root "
            f"{config.storage_root!r}; nothing was read or written"
        )
    if call is None:
        return _publish(checked, config, trace, started)
    overrides: dict[str, str] = run.get("params", {}).get("sources", {})
    for name in overrides:
        if name not in trace.sources:
            raise EventError(
                f"event field 'run.params.sources.{name}': pipeline {pipeline.name!r} has no source {name!r} "
                f"(sources: {', '.join(trace.sources) or 'none'})"
            )
    declared = tuple(source_uri(pipeline, source) for source in trace.sources.values())
    confinement = storage.Confinement(run["storage"], declared + config.readable)
    location = confinement.check_write(node_location(run["storage"], pipeline.name, run_id, call.node_id), "output")
    work = confinement.check_write(work_location(run["storage"], pipeline.name, run_id, call.node_id), "work folder")
    inputs = _input_locations(call, trace, pipeline, run, overrides, confinement)
    context = _Context(
        pipeline.name,
        call.node_id,
        run_id,
        checked.get("attempt") or storage.new_attempt_id(),
        checked.get("phase"),
        checked.get("chunk"),
    )

    phase: str | None = checked.get("phase")
    if phase is not None and call.stage.options.partition == "whole":
        raise EventError(
            f"event field 'phase': stage {call.stage.name!r} runs on its whole input and has no {phase!r} phase"
        )
    if checked.get("fused") and phase is None:
        raise EventError("event field 'fused': only the phases of a split stage run fused stages; add 'phase'")
    fused = _fused_chains(checked.get("fused", []), call, inputs, trace, pipeline, run, overrides, confinement)
    if phase != "split":
        existing = storage.read_manifest(location)
        claimed = storage.read_claim(work) if existing is None else None
        if claimed is not None:  # an earlier attempt claimed the output and stopped before it was committed
            existing = storage.publish(location, work, claimed)
        if existing is not None:
            logs.log("stage skipped: already committed", **context.fields())
            return _result(context, existing, location, started, "already-committed")

    logs.log("stage start", **context.fields())
    try:
        with engines.one_task_at_a_time(_engine_name(config, call)):
            if phase is None:
                manifest = _run(call, inputs, location, work, run, config, context)
            else:
                manifest = _run_phase(checked, phase, call, inputs, fused, location, work, run, config, context)
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
    logs.emit_metrics(pipeline.name, call.node_id, result["seconds"], output.get("rows", 0), output.get("bytes", 0))
    return result


def _engine_name(config: RuntimeConfig, call: StageCall) -> str:
    """The engine a task of ``call`` runs on: the function's (SPARKFLOW_ENGINE), else the stage's own."""
    return config.engine or call.stage.options.engine


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
    call: StageCall,
    trace: Trace,
    pipeline: Pipeline,
    run: dict[str, Any],
    overrides: dict[str, str],
    confinement: storage.Confinement,
) -> list[Input]:
    found: list[Input] = []
    for param, upstream in call.inputs:
        if upstream in trace.sources:
            source = trace.sources[upstream]
            uri = overrides.get(upstream) or source_uri(pipeline, source)
            found.append(Input(param, "source", confinement.check_read(uri, f"source {upstream!r}"), source))
        elif trace.calls[upstream].stage.options.output == "value":
            found.append(Input(param, "value", value_key(pipeline.name, run["id"], upstream)))
        else:
            uri = node_location(run["storage"], pipeline.name, run["id"], upstream)
            found.append(Input(param, "dataset", confinement.check_read(uri, f"input {param!r}")))
    return found


def _fused_chains(
    names: list[str],
    call: StageCall,
    inputs: list[Input],
    trace: Trace,
    pipeline: Pipeline,
    run: dict[str, Any],
    overrides: dict[str, str],
    confinement: storage.Confinement,
) -> dict[str, list[Fused]]:
    """The stages the event's ``fused`` names, as chains per split parameter of ``call`` (upstream first).

    Each must be a row-wise stage feeding the split stage's split input directly or through another one of them,
    as the compiler's fuse pass chose them; anything else is a malformed event.
    """
    if not names:
        return {}
    unknown = [name for name in names if name not in trace.calls]
    if unknown:
        raise EventError(f"event field 'fused': pipeline {pipeline.name!r} has no node {unknown[0]!r}")
    remaining = list(names)
    chains: dict[str, list[Fused]] = {}
    for item in split_inputs(call, inputs):
        upstream = dict(call.inputs)[item.param]
        chain: list[Fused] = []
        while upstream in remaining:
            link = trace.calls[upstream]
            if link.stage.options.partition != "rows":
                raise EventError(f"event field 'fused': stage {link.stage.name!r} is not split by rows")
            link_inputs = _input_locations(link, trace, pipeline, run, overrides, confinement)
            chunked = split_inputs(link, link_inputs)
            if not chunked:
                raise EventError(f"event field 'fused': stage {link.stage.name!r} has no dataset input to split")
            first = chunked[0]
            chain.insert(0, Fused(link, link_inputs, first.param))
            remaining.remove(upstream)
            upstream = dict(link.inputs)[first.param]
        if chain:
            chains[item.param] = chain
    if remaining:
        raise EventError(
            f"event field 'fused': {', '.join(remaining)} do(es) not feed the split input of {call.node_id!r}"
        )
    return chains


class _Resources:
    """The engine and KV store one task uses, each started on first use (a stage that only passes values never
    starts an engine), and the one way inputs are read."""

    def __init__(self, call: StageCall, config: RuntimeConfig, run: dict[str, Any]) -> None:
        self.call, self.config, self.run = call, config, run
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
        if self._engine is None:
            options = self.call.stage.options
            self._engine = engines.start(
                _engine_name(self.config, self.call), options.memory_mb, self.config.pipeline.fn.__module__
            )
        return self._engine

    def kv(self) -> Any:
        if self._kv is None:
            self._kv = _open_kv(self.config, self.run)
        return self._kv

    def read(self, item: Input, folder: str) -> Any:
        """An input read whole: a value from the KV store, a source or an upstream output through the engine."""
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
    call: StageCall,
    inputs: list[Input],
    location: str,
    work: str,
    run: dict[str, Any],
    config: RuntimeConfig,
    context: _Context,
) -> dict[str, Any]:
    resources = _Resources(call, config, run)
    with tempfile.TemporaryDirectory(prefix=f"sparkflow-{context.node}-", dir=config.workdir) as scratch:
        try:
            args: list[Any] = []
            kwargs: dict[str, Any] = {}
            for index, item in enumerate(inputs):
                _bind(call, item.param, resources.read(item, os.path.join(scratch, f"in{index}")), args, kwargs)
            try:
                with failures.running(call.stage):
                    output = call.stage.fn(*args, **kwargs)
                if call.stage.options.output == "value":
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

    chunk_bytes = run.get("params", {}).get("chunk_bytes") or event.get("chunk_bytes")
    if phase == "split" and not chunk_bytes:
        raise EventError("event field 'chunk_bytes' is missing: the split phase needs the planned bytes per chunk")
    resources = _Resources(call, config, run)

    def bind(values: dict[str, Any], target: StageCall = call) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param, _ in target.inputs:
            _bind(target, param, values[param], args, kwargs)
        return args, kwargs

    with tempfile.TemporaryDirectory(prefix=f"sparkflow-{context.node}-{phase}-", dir=config.workdir) as scratch:
        job = fanout.Job(
            call=call,
            inputs=inputs,
            location=location,
            work=work,
            attempt=context.attempt,
            chunk_bytes=int(chunk_bytes or 0),
            scratch=scratch,
            engine=resources.engine,
            read_whole=resources.read,
            bind=bind,
            reader=resources.reader,
            fused=fused,
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
    write_attempt = getattr(engine, "write_attempt", None)
    if write_attempt is not None:  # Spark on a cluster writes to storage itself (sparkflow.runtime.cluster)
        with failures.running(call.stage, evaluating=True):  # evaluating what the stage returned runs its code
            files, rows = write_attempt(output, work, context.attempt)
    else:
        with failures.running(call.stage, evaluating=True):
            folder, rows = engine.write(output, os.path.join(scratch, "out"))
        files = storage.upload_attempt(folder, work, context.attempt)
    names = [storage.published_name(index) for index in range(len(files))]
    return {
        "kind": "dataset",
        "files": names,
        "from": {name: relative for name, (relative, _) in zip(names, files, strict=True)},
        "rows": rows,
        "bytes": sum(size for _, size in files),
    }


def _publish(event: dict[str, Any], config: RuntimeConfig, trace: Trace, started: float) -> dict[str, Any]:
    """The run's publish task (see :mod:`sparkflow.runtime.publish`): every sink, then ``_latest.json``."""
    from sparkflow.dsl.sink import sink_uri
    from sparkflow.runtime import publish

    pipeline, run = config.pipeline, event["run"]
    root, run_id = run["storage"], run["id"]
    overrides: dict[str, str] = run.get("params", {}).get("sinks", {})
    for name in overrides:
        if name not in trace.sinks:
            raise EventError(
                f"event field 'run.params.sinks.{name}': pipeline {pipeline.name!r} has no sink {name!r} "
                f"(sinks: {', '.join(trace.sinks) or 'none'})"
            )
    declared = tuple(sink_uri(sink.uri, root) for sink, _, _ in trace.sinks.values())
    confinement = storage.Confinement(root, writable=declared + config.writable)
    targets = {
        name: confinement.check_write(overrides.get(name) or sink_uri(sink.uri, root), f"sink {name!r}")
        for name, (sink, _, _) in trace.sinks.items()
    }
    context = _Context(pipeline.name, "publish", run_id, event.get("attempt") or storage.new_attempt_id(), "publish")
    logs.log("publish start", sinks=list(trace.sinks), **context.fields())
    published: dict[str, Any] = {}
    try:
        for name, (sink, node_id, _) in trace.sinks.items():
            location = node_location(root, pipeline.name, run_id, node_id)
            manifest = storage.read_manifest(location)
            if manifest is None:
                raise InputError(
                    f"sink {name!r}: stage {node_id!r} has no committed output in run {run_id!r}; a run publishes "
                    "after every stage has committed: finish the run first (sparkflow run --resume)"
                )
            files = [storage.join(location, item) for item in manifest["files"]]
            done = publish.publish_sink(sink, targets[name], files, int(manifest["rows"]), pipeline.name, run_id)
            published[name] = done.to_dict()
            logs.log("sink published", sink=name, **done.to_dict(), **context.fields())
        latest = publish.latest_location(root, pipeline.name)
        outputs = {
            node: f"kv:{value_key(pipeline.name, run_id, node)}"
            if trace.calls[node].stage.options.output == "value"
            else node_location(root, pipeline.name, run_id, node)
            for node in trace.outputs
        }
        record = {
            "pipeline": pipeline.name,
            "run_id": run_id,
            "storage": root,
            "outputs": outputs,
            "sinks": {name: item["uri"] for name, item in published.items()},
            "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        storage.write_file(latest, json.dumps(record, indent=2, sort_keys=True).encode())
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
