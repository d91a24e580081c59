"""The Plan: the contract between the compiler and everything that consumes it (targets, local executor).

Plain frozen dataclasses with a deterministic order and no heavy imports (no networkx), so the targets and
the local executor can take a Plan without pulling in the compiler.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from sparkflow.errors import Origin


@dataclass(frozen=True)
class PlanSource:
    """An input that exists before the run."""

    name: str
    uri: str
    format: str
    size_bytes: int | None
    options: tuple[tuple[str, Any], ...]
    origin: Origin


@dataclass(frozen=True)
class PlanInput:
    """One input of a task: the stage parameter it feeds and the node it comes from."""

    param: str
    node: str
    kind: str  # "source", "dataset" or "value"


@dataclass(frozen=True)
class Fanout:
    """How a split stage runs: a split task measures its input and writes a manifest of chunks; one map task
    per chunk; for ``key`` stages one reduce task per bucket after map tasks bucketed rows by key; then a
    commit task publishes the parts as the stage's output.

    Attributes:
        mode: ``rows`` (split -> map -> commit) or ``key`` (split -> map -> reduce -> commit).
        split: the parameters whose inputs are cut into chunks (a join splits both of its inputs).
        chunk_bytes: input bytes per chunk (the run may override it).
        max_concurrency: how many chunk tasks may run at once.
    """

    mode: str
    split: tuple[str, ...]
    chunk_bytes: int
    max_concurrency: int


@dataclass(frozen=True)
class PlanTask:
    """One stage call, as it will run.

    Attributes:
        id: node id, unique in the pipeline (also the state / step name).
        stage: the stage's name.
        inputs: in the order of the stage's parameters.
        output: ``dataset`` or ``value``.
        placement: ``function`` (Lambda / Cloud Run).
        location: output location relative to the storage root, with ``{run_id}`` open.
        origin: where the stage was declared; call_origin: where the pipeline calls it.
        fused: row-wise stages upstream of this split stage that run inside its map tasks, chunk by chunk,
            instead of as tasks of their own (see :mod:`sparkflow.compiler.passes.fuse`); upstream first.
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

    @property
    def upstream(self) -> frozenset[str]:
        """The tasks whose outputs this task reads, also through the stages fused into it."""
        fused = {task.id for task in self.fused}
        read = {item.node for task in (*self.fused, self) for item in task.inputs if item.kind != "source"}
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

    def task(self, task_id: str) -> PlanTask:
        """The task called ``task_id`` (KeyError if there is none); O(1), so emitters may call it per task."""
        return self._tasks_by_id[task_id]

    @cached_property
    def _tasks_by_id(self) -> dict[str, PlanTask]:
        # Not a field: it is derived, so it stays out of equality, hashing and to_dict().
        return {task.id: task for task in self.tasks}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view (for tools and debugging)."""
        return asdict(self)
