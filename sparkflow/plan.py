"""The Plan: the contract between the compiler and everything that consumes it (targets, local executor, runtime).

Plain frozen dataclasses with a deterministic order and no heavy imports (no networkx), so the targets, the
local executor and the runtime can take a Plan without pulling in the compiler. A Plan is shipped with the
functions as deterministic JSON (:meth:`Plan.to_json`) whose digest every run carries (``run.plan`` in each
event): the runtime executes the task an event names as that Plan says, and refuses a run of another Plan.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from functools import cache, cached_property
from types import NoneType, UnionType
from typing import Any, get_args, get_origin, get_type_hints

from sparkflow.errors import Origin

#: The version of the Plan's JSON form; part of the digest.
PLAN_VERSION = 1


@dataclass(frozen=True)
class PlanSource:
    """An input that exists before the run, as ``sf.source`` declared it: the runtime reads it with these reader
    options and this bad-record policy (see :class:`sparkflow.dsl.source.Source` for the fields)."""

    name: str
    uri: str
    format: str
    size_bytes: int | None
    options: tuple[tuple[str, Any], ...]
    origin: Origin
    on_bad_record: str

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class PlanParam:
    """A value each run gives (``sf.param``): its name, type (``int``, ``float``, ``str`` or ``bool``) and, unless
    ``required``, the default a run that gives none uses."""

    name: str
    type: str
    default: Any
    required: bool
    origin: Origin


#: A field's metadata key: the shipped JSON holds the field only when it differs from its default (a field added
#: after the first Plans, such as :attr:`Fanout.combine`, leaves every Plan that does not use it as it was). The
#: digest covers what is shipped, so it still changes with the field's value.
_OMITTED_AT_DEFAULT = "omitted_at_default"

#: The kinds of input that carry rows (read through an engine, possibly split); the others are plain values.
ROW_KINDS = ("source", "dataset")


@dataclass(frozen=True)
class PlanInput:
    """One input of a task: the stage parameter it feeds and the node it comes from (for a ``param``, the name of
    the pipeline's parameter whose run value the stage receives)."""

    param: str
    node: str
    kind: str  # "source", "dataset", "value" (a value stage's result) or "param" (a run's parameter)

    @property
    def carries_rows(self) -> bool:
        return self.kind in ROW_KINDS


@dataclass(frozen=True)
class Fanout:
    """How a split stage runs: a split task measures its input and writes a manifest of chunks; one map task
    per chunk; for ``key`` stages, after map tasks bucketed rows by key, a partition task groups the buckets into
    reducers by what they hold, and one reduce task per reducer; then a commit task publishes the parts as the
    stage's output.

    Attributes:
        mode: ``rows`` (split -> map -> commit) or ``key`` (split -> map -> partition -> reduce -> commit).
        split: the parameters whose inputs are cut into chunks (a join splits both of its inputs).
        chunk_bytes: input bytes per chunk (the run may override it).
        max_concurrency: how many chunk tasks may run at once.
        combine: a ``key`` stage whose map tasks run the stage on their chunk and shuffle those partial results,
            which reduce tasks merge (the stage's ``combine=``); False: map tasks shuffle every row and reduce tasks
            run the stage.
    """

    mode: str
    split: tuple[str, ...]
    chunk_bytes: int
    max_concurrency: int
    combine: bool = field(default=False, metadata={_OMITTED_AT_DEFAULT: True})

    def phases(self) -> tuple[str, ...]:
        """The stage's phases in the order they run: a key stage's partition task chooses, from what its map tasks
        shuffled, how many reduce tasks run (see :mod:`sparkflow.runtime.partition`)."""
        if self.mode == "key":
            return ("split", "map", "partition", "reduce", "commit")
        return ("split", "map", "commit")


@dataclass(frozen=True)
class PlanTask:
    """One stage call, as it will run.

    Attributes:
        id: node id, unique in the pipeline (also the state / step name).
        stage: the stage's name.
        inputs: in the order of the stage's parameters.
        output: ``dataset`` or ``value``.
        placement: ``function`` (Lambda / Cloud Run), ``container`` (ECS Fargate / a Cloud Run job) or
            ``serverless-spark`` (EMR Serverless / Dataproc Serverless).
        memory_mb: what the task runs with: the declared memory, rounded up to a container size, or the largest
            of the stages fused into it.
        location: output location relative to the storage root, with ``{run_id}`` open.
        origin: where the stage was declared; call_origin: where the pipeline calls it.
        fused: row-wise stages upstream of this split stage that run inside its map tasks, chunk by chunk,
            instead of as tasks of their own (see :mod:`sparkflow.compiler.passes.fuse`); upstream first.
        engine_choice: for a stage that said ``engine="auto"``, why it got ``engine`` (empty otherwise; see
            :mod:`sparkflow.compiler.passes.engine_choice`).
    """

    id: str
    stage: str
    inputs: tuple[PlanInput, ...]
    output: str
    placement: str
    memory_mb: int
    timeout_s: int
    retries: int
    engine: str
    partition: str
    partition_by: tuple[str, ...]
    location: str
    origin: Origin
    call_origin: Origin
    fanout: Fanout | None = None
    fused: tuple[PlanTask, ...] = ()
    engine_choice: str = field(default="", metadata={_OMITTED_AT_DEFAULT: True})

    @property
    def upstream(self) -> frozenset[str]:
        """The tasks whose outputs this task reads, also through the stages fused into it."""
        fused = {task.id for task in self.fused}
        read = {item.node for task in (*self.fused, self) for item in task.inputs if item.kind in ("dataset", "value")}
        return frozenset(read - fused)


@dataclass(frozen=True)
class Run:
    """Run one task."""

    task: str


@dataclass(frozen=True)
class Sequence:
    """Run steps one after another."""

    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Parallel:
    """Run branches at the same time; done when all are done."""

    branches: tuple[Step, ...]


Step = Run | Sequence | Parallel


@dataclass(frozen=True)
class PlanSink:
    """A table the run publishes one output to once every stage has committed (see ``sf.sink``).

    Attributes:
        uri: as declared: a URI, an absolute path, or a path relative to the storage root.
        node: the node whose output it publishes.
        origin: where the sink is declared; call_origin: where the pipeline publishes to it.
    """

    name: str
    uri: str
    format: str
    mode: str
    partition_cols: tuple[str, ...]
    node: str
    origin: Origin
    call_origin: Origin


@dataclass(frozen=True)
class Publish:
    """The run's last task: publish every sink, then point the pipeline's ``_latest.json`` at the run. It runs on
    the function it fits, like a stage (see :func:`sparkflow.compiler.publish_task`)."""

    memory_mb: int
    timeout_s: int
    retries: int


@dataclass(frozen=True)
class StartSchedule:
    """When the deployed pipeline starts a run by itself (``@sf.pipeline(schedule=...)``).

    Attributes:
        expression: as declared, in EventBridge Scheduler's syntax (``cron(0 3 * * ? *)``, ``rate(1 day)``; see
            :mod:`sparkflow.schedules`), already checked.
        origin: where the pipeline declares it.
    """

    expression: str
    origin: Origin


@dataclass(frozen=True)
class StartTrigger:
    """The deployed pipeline starts a run for each new object under a source's folder
    (``@sf.pipeline(trigger=sf.on_new_objects(...))``), reading that object as the source.

    Attributes:
        source: the source whose folder is watched (one of the Plan's sources, checked; its folder is in object
            storage, checked).
        origin: where ``sf.on_new_objects`` is called.
    """

    source: str
    origin: Origin


#: Plan fields that say how a run is started, not what it executes: the shipped JSON holds them only when set, and
#: the digest leaves them out, so changing a schedule or a trigger does not invalidate the deployed functions' Plan
#: (a schedule does not change the checked-in definitions either; a trigger adds the GCP workflow's steps that read
#: the event).
_NOT_EXECUTED = ("start_schedule", "start_trigger")


@dataclass(frozen=True)
class Plan:
    """A compiled pipeline.

    Attributes:
        pipeline: the pipeline's name.
        source_file: the pipeline file, as shown in generated headers (relative to the working directory).
        storage: the declared storage root, or None.
        kv: the declared KV store URI, or None.
        sources: by name.
        tasks: in a deterministic topological order.
        outputs: the node ids the pipeline returns.
        schedule: the order tasks run in: nested sequences and parallel branches.
        publish: the task that runs after every stage: publishes ``sinks``, then updates ``_latest.json``.
        sinks: the tables outputs are published to, in declaration order.
        start_schedule: when the deployed pipeline starts runs by itself; None: only when started.
        start_trigger: the source whose new objects start runs by themselves; None: none does.
        params: the values each run gives (``sf.param``), in the order the pipeline first uses them; the tasks'
            ``param`` inputs name them.
    """

    pipeline: str
    source_file: str
    storage: str | None
    kv: str | None
    sources: tuple[PlanSource, ...]
    tasks: tuple[PlanTask, ...]
    outputs: tuple[str, ...]
    schedule: Step
    publish: Publish
    sinks: tuple[PlanSink, ...] = ()
    start_schedule: StartSchedule | None = None
    params: tuple[PlanParam, ...] = ()
    start_trigger: StartTrigger | None = None

    def rebased(self, root: str) -> Plan:
        """This Plan with the origins a shipped Plan holds relative to the project root (see :meth:`to_json`) made
        absolute under ``root``, for messages that name the user's files as the compiling process did."""
        rebased: Plan = _with_origins(self, lambda origin: Origin(os.path.join(root, origin.file), origin.line))
        return rebased

    def task(self, task_id: str) -> PlanTask:
        """The task called ``task_id`` (KeyError if there is none); O(1), so emitters may call it per task."""
        return self._tasks_by_id[task_id]

    def param(self, name: str) -> PlanParam:
        """The parameter called ``name`` (KeyError if there is none)."""
        return {item.name: item for item in self.params}[name]

    def source(self, name: str) -> PlanSource:
        """The source called ``name`` (KeyError if there is none)."""
        return self._sources_by_name[name]

    @cached_property
    def _sources_by_name(self) -> dict[str, PlanSource]:
        return {source.name: source for source in self.sources}

    @cached_property
    def _tasks_by_id(self) -> dict[str, PlanTask]:
        # Not a field: it is derived, so it stays out of equality, hashing and to_dict().
        return {task.id: task for task in self.tasks}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (for tools and debugging)."""
        return asdict(self)

    @cached_property
    def document(self) -> dict[str, Any]:
        """The Plan as shipped: JSON types only, origins relative to the project root, with its version and digest."""
        body = {"plan_version": PLAN_VERSION, **_encode(self)}
        for key in _NOT_EXECUTED:
            if body[key] is None:
                del body[key]
        return {**body, "digest": _digest(body)}

    @property
    def digest(self) -> str:
        """What every run of this Plan carries (16 hex digits of a SHA-256 of the JSON form, without the digest):
        the same pipeline compiled for the same target gives the same digest on every machine."""
        digest: str = self.document["digest"]
        return digest

    def to_json(self) -> str:
        """The shipped form: deterministic (sorted keys), one line per field."""
        return json.dumps(self.document, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """A Plan read back from :meth:`to_json` (origins stay relative to the project root).

        Raises:
            ValueError: not a Plan of this version, or its digest does not match its content.
        """
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("plan_version") != PLAN_VERSION:
            found = document.get("plan_version") if isinstance(document, dict) else None
            raise ValueError(f"not a sparkflow plan of version {PLAN_VERSION} (plan_version: {found!r})")
        body = {key: value for key, value in document.items() if key != "digest"}
        if document.get("digest") != _digest(body):
            raise ValueError("the plan's digest does not match its content: the file was changed after compiling")
        plan = _decode_plan(body)
        if plan.digest != document["digest"]:
            raise ValueError("the plan does not read back as it was written: recompile it with this sparkflow")
        return plan


def project_root(pipeline_file: str, source_file: str) -> str:
    """The folder a Plan's paths are relative to on this machine: where its pipeline file is, less the Plan's
    ``source_file`` (the file's path from the project root); the file's folder when they do not line up."""
    absolute = os.path.realpath(pipeline_file)
    parts = source_file.split("/")
    absolute_parts = absolute.split(os.sep)
    if absolute_parts[-len(parts) :] == parts:
        return os.sep.join(absolute_parts[: -len(parts)]) or os.sep
    return os.path.dirname(absolute)


def display_path(path: str) -> str:
    """``path`` relative to its project root (the nearest folder up with a pyproject.toml or .git), in POSIX form,
    so that what the Plan names is the same on every machine and from every working directory."""
    if not os.path.isabs(path):
        return path.replace(os.sep, "/")
    root = _project_root(os.path.dirname(path))
    return os.path.relpath(path, root).replace(os.sep, "/") if root else os.path.basename(path)


@cache
def _project_root(folder: str) -> str | None:
    """The nearest folder from ``folder`` up with a pyproject.toml or .git, or None (cached: a Plan's origins
    share a few folders, and every compile serialises its Plan for the digest)."""
    if any(os.path.exists(os.path.join(folder, marker)) for marker in ("pyproject.toml", ".git")):
        return folder
    parent = os.path.dirname(folder)
    return None if parent == folder else _project_root(parent)


def _digest(body: dict[str, Any]) -> str:
    import hashlib  # lazy: OpenSSL's loading is most of this module's import time, and only a digest needs it

    executed = {key: value for key, value in body.items() if key not in _NOT_EXECUTED}
    canonical = json.dumps(executed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _encode(value: Any) -> Any:
    """``value`` in JSON types: dataclasses as objects (a schedule step tagged by its kind), tuples as lists."""
    if isinstance(value, Origin):
        return {"file": display_path(value.file), "line": value.line}
    if isinstance(value, Run | Sequence | Parallel):
        inner = value.task if isinstance(value, Run) else [_encode(step) for step in _steps(value)]
        return {type(value).__name__.lower(): inner}
    if hasattr(value, "__dataclass_fields__"):
        return {
            item.name: _encode(getattr(value, item.name))
            for item in fields(value)
            if not (item.metadata.get(_OMITTED_AT_DEFAULT) and getattr(value, item.name) == item.default)
        }
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    return value


def _with_origins(value: Any, change: Any) -> Any:
    """``value`` with ``change(origin)`` for each relative Origin in it (dataclasses and tuples rebuilt)."""
    if isinstance(value, Origin):
        return value if os.path.isabs(value.file) else change(value)
    if is_dataclass(value) and not isinstance(value, type):
        changed = {item.name: _with_origins(getattr(value, item.name), change) for item in fields(value)}
        return type(value)(**changed)
    if isinstance(value, tuple):
        return tuple(_with_origins(item, change) for item in value)
    return value


def _steps(step: Sequence | Parallel) -> tuple[Step, ...]:
    return step.steps if isinstance(step, Sequence) else step.branches


def _decode_plan(body: dict[str, Any]) -> Plan:
    plan: Plan = _decode(Plan, body)
    return plan


def _decode(kind: Any, value: Any) -> Any:
    """``value`` (JSON types, as :func:`_encode` wrote it) as the ``kind`` a Plan field is annotated with."""
    if value is None:
        return None
    if kind == Step:
        ((tag, inner),) = value.items()
        if tag == "run":
            return Run(inner)
        steps = tuple(_decode(Step, step) for step in inner)
        return Sequence(steps) if tag == "sequence" else Parallel(steps)
    if isinstance(kind, type) and is_dataclass(kind):
        hints = _hints(kind)
        # A field missing from the JSON is one of _NOT_EXECUTED left unset, or one _OMITTED_AT_DEFAULT: its default.
        present = [item.name for item in fields(kind) if item.name in value]
        return kind(**{name: _decode(hints[name], value[name]) for name in present})
    arguments = get_args(kind)
    if isinstance(kind, UnionType):  # X | None
        return _decode(next(argument for argument in arguments if argument is not NoneType), value)
    if get_origin(kind) is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_decode(arguments[0], item) for item in value)
        return tuple(_decode(argument, item) for argument, item in zip(arguments, value, strict=True))
    if kind is Any:  # a source option as declared: JSON gave lists where it held tuples
        return _decode(tuple[Any, ...], value) if isinstance(value, list) else value
    return value


@cache
def _hints(kind: type) -> dict[str, Any]:
    return get_type_hints(kind)
