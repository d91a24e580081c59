"""How long each stage of a Plan should take: the compiler's chunk model, turned into seconds.

A task takes a fixed start-up plus its input bytes over the engine's throughput (the same throughput the split
pass sizes chunks with: each engine's :attr:`~sparkflow.engines.EngineSpec.chunk_model`). A split stage is a
split task, one map task per chunk, for key stages a partition task and one reduce task per reducer, and a commit
task, as the runtime runs it; its chunks are counted the way the runtime's split phase counts them, its reducers
the way its partition phase groups buckets: a chunk budget of the shuffle each (at most the split's buckets).
Tasks of a phase run ``concurrency`` at a time. A stage's output is its dataset inputs times its shrink
(:mod:`sparkflow.shrink`: measured in a local run, else the combined default for a ``combine=`` stage, else 1); a
value stage writes no dataset. A key stage's reduce tasks read the shuffle: every row, or with ``combine=`` the map
tasks' partial results (the stage's shrunk output). The pipeline takes the longest path through the Plan's
schedule.

The start-up and the throughput figures, and where each was measured, are in docs/performance.md ("Estimates").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from sparkflow import shrink
from sparkflow.compiler.chunking import MODEL_VCPUS, task_seconds
from sparkflow.engines import ENGINES
from sparkflow.plan import Parallel, Plan, PlanInput, PlanTask, Run, Sequence, Step
from sparkflow.runtime.fanout import MAX_BUCKETS

#: A deployed task of each engine, cold: a Spark task starts a JVM with the image's class-data-sharing archive; a
#: Sail or DuckDB task starts a Python process (the cold starts of docs/performance.md).
CLOUD_TASK_START_S = {name: spec.start_up.cloud_task for name, spec in ENGINES.items()}
#: `sparkflow run` starts one SparkSession (cold, no archive) and the worker processes of other engines once, then
#: runs every task warm in them.
LOCAL_SESSION_START_S = {name: spec.start_up.local_session for name, spec in ENGINES.items()}
LOCAL_TASK_START_S = {name: spec.start_up.local_task for name, spec in ENGINES.items()}
#: Publishing copies files and runs no query: a Python task's start, deployed and in `sparkflow run`.
CLOUD_PUBLISH_START_S = 0.558
LOCAL_PUBLISH_START_S = 0.024


@dataclass(frozen=True)
class Profile:
    """Where tasks run: what each task's start-up costs, what starts once per run, how many tasks of a phase may run
    at once (None: as many as the stage's fan-out allows) and what the publish task's start costs."""

    name: str
    task_start_s: Mapping[str, float]
    session_start_s: Mapping[str, float]
    concurrency: int | None
    publish_start_s: float


CLOUD = Profile("cloud", CLOUD_TASK_START_S, dict.fromkeys(ENGINES, 0.0), None, CLOUD_PUBLISH_START_S)


def local_profile(workers: int) -> Profile:
    """`sparkflow run` with ``workers`` nodes at once."""
    return Profile("local", LOCAL_TASK_START_S, LOCAL_SESSION_START_S, workers, LOCAL_PUBLISH_START_S)


@dataclass(frozen=True)
class Phase:
    """Tasks of one kind in a stage: ``count`` of them, each reading ``bytes_each`` in ``seconds_each``."""

    name: str
    count: int
    bytes_each: float
    seconds_each: float


@dataclass(frozen=True)
class StageWork:
    """What one stage of the Plan does in the model.

    Attributes:
        input_bytes: the datasets it reads (sources and upstream outputs, through stages fused into it).
        output_bytes: what it writes (0 for a value stage): its input times ``shrink``.
        shuffle_bytes: what a key stage's map tasks write for its reduce tasks (0 for other stages).
        shrink: its output per input byte, and where that figure comes from.
        chunks, buckets: of a split stage (buckets: a key stage's reduce tasks, which the partition task chooses
            from the shuffle's bytes), else None.
        phases: its tasks, in order.
        seconds: from its first task's start to its last task's end.
        speedup: the machine's throughput over the model's (vCPUs / 2 for containers and serverless Spark).
    """

    task: PlanTask
    engine: str
    input_bytes: int
    output_bytes: int
    shuffle_bytes: int
    shrink: shrink.Shrink
    chunks: int | None
    buckets: int | None
    phases: tuple[Phase, ...]
    seconds: float
    speedup: float

    @property
    def tasks(self) -> int:
        return sum(phase.count for phase in self.phases)

    @property
    def task_seconds(self) -> float:
        """Seconds of all its tasks added up (what is billed per task)."""
        return sum(phase.count * phase.seconds_each for phase in self.phases)

    def over_timeout(self) -> list[str]:
        """Phases whose tasks the model expects to run past the stage's timeout."""
        return [phase.name for phase in self.phases if phase.seconds_each > self.task.timeout_s]


def stage_work(
    plan: Plan,
    sources: Mapping[str, int],
    profile: Profile,
    *,
    speedups: Mapping[str, float] | None = None,
    engine: str | None = None,
    chunk_bytes: int | None = None,
    measured: Mapping[str, shrink.Measured] | None = None,
) -> dict[str, StageWork]:
    """The work of every task of ``plan``, in the Plan's order.

    Args:
        sources: bytes of every source.
        speedups: per task id, the machine's throughput over the model's (default 1).
        engine: every stage on this engine instead of its own (`sparkflow run --engine`).
        chunk_bytes: input per chunk of every split stage instead of the compiled one (`--chunk-size`).
        measured: the shrinks measured in a local run (:func:`sparkflow.shrink.load`).
    """
    outputs: dict[str, int] = {}
    work: dict[str, StageWork] = {}
    for task in plan.tasks:
        chosen = engine or task.engine
        faster = (speedups or {}).get(task.id, 1.0)
        done = _stage(task, chosen, sources, outputs, profile, faster, chunk_bytes, measured or {})
        work[task.id] = done
        outputs[task.id] = done.output_bytes
        for fused in task.fused:
            outputs[fused.id] = done.output_bytes
    return work


def run_seconds(plan: Plan, work: Mapping[str, StageWork], profile: Profile, engine: str | None = None) -> float:
    """Seconds of the whole run: what starts once, the longest path through the schedule, then publishing."""
    engines = {engine or task.engine for task in plan.tasks}
    once = max((profile.session_start_s[name] for name in engines), default=0.0)
    return once + _path(plan.schedule, work) + profile.publish_start_s


def _path(step: Step, work: Mapping[str, StageWork]) -> float:
    if isinstance(step, Run):
        return work[step.task].seconds
    if isinstance(step, Sequence):
        return sum(_path(inner, work) for inner in step.steps)
    assert isinstance(step, Parallel)
    return max((_path(inner, work) for inner in step.branches), default=0.0)


def _stage(
    task: PlanTask,
    engine: str,
    sources: Mapping[str, int],
    outputs: Mapping[str, int],
    profile: Profile,
    speedup: float,
    chunk_override: int | None,
    measured: Mapping[str, shrink.Measured],
) -> StageWork:
    start = profile.task_start_s[engine]

    def seconds(size: float) -> float:
        return task_seconds(size, engine, start_s=start, vcpus=speedup * MODEL_VCPUS)

    fused = {inner.id for inner in task.fused}
    by_param: dict[str, int] = {}
    for item in (*task.fused, task):
        for read in item.inputs:
            if read.node in fused or not read.carries_rows:
                continue
            by_param[f"{item.id}.{read.param}"] = sources[read.node] if read.kind == "source" else outputs[read.node]
    total = sum(by_param.values())
    fanout = task.fanout
    shrunk = shrink.of(task.id, combined=fanout is not None and fanout.combine, measured=measured)
    output = 0 if task.output == "value" else round(total * shrunk.ratio)
    if fanout is None:
        whole = (Phase("whole", 1, total, seconds(total)),)
        wall = _wall(whole, profile, None)
        return StageWork(task, engine, total, output, 0, shrunk, None, None, whole, wall, speedup)
    chunk = chunk_override or fanout.chunk_bytes
    split = [_split_bytes(task, param, sources, outputs) for param in fanout.split]
    split_bytes = sum(split)
    others = total - split_bytes  # read whole by every map task (a rows stage's second input)
    chunks = sum(max(1, math.ceil(size / chunk)) for size in split)
    map_each = split_bytes / chunks + others
    phases_list = [Phase("split", 1, 0, start), Phase("map", chunks, map_each, seconds(map_each))]
    buckets = None
    shuffle = 0
    if fanout.mode == "key":
        fine = max(1, min(MAX_BUCKETS, math.ceil(split_bytes / chunk)))  # what the split task plans, from the input
        # combine=: map tasks shuffle their partial results (bounded by the stage's shrunk output), else every row.
        shuffle = round(total * shrunk.ratio) if fanout.combine else split_bytes + others
        # The partition task gives each reducer contiguous fine buckets up to a chunk of what was shuffled.
        buckets = max(1, min(fine, math.ceil(shuffle / chunk)))
        each = shuffle / buckets
        phases_list.append(Phase("partition", 1, 0, start))
        phases_list.append(Phase("reduce", buckets, each, seconds(each)))
    phases_list.append(Phase("commit", 1, 0, start))
    phases = tuple(phases_list)
    wall = _wall(phases, profile, fanout.max_concurrency)
    return StageWork(task, engine, total, output, shuffle, shrunk, chunks, buckets, phases, wall, speedup)


def _split_bytes(task: PlanTask, param: str, sources: Mapping[str, int], outputs: Mapping[str, int]) -> int:
    """Bytes cut into chunks for ``param`` (see :func:`split_input`)."""
    read = split_input(task, param)
    return sources[read.node] if read.kind == "source" else outputs.get(read.node, 0)


def split_input(task: PlanTask, param: str) -> PlanInput:
    """What a split stage cuts into chunks for ``param``: an input from fused stages is the first fused stage's own
    split input, as the runtime cuts it (see ``Job.split_inputs``)."""
    fused = {inner.id: inner for inner in task.fused}
    read = next(item for item in task.inputs if item.param == param)
    while read.node in fused:
        read = next(item for item in fused[read.node].inputs if item.carries_rows)
    return read


def _wall(phases: tuple[Phase, ...], profile: Profile, fanout_concurrency: int | None) -> float:
    """Seconds from the first phase's start to the last one's end: each phase in waves of its concurrency."""
    limits = [limit for limit in (profile.concurrency, fanout_concurrency) if limit is not None]
    at_once = min(limits) if limits else 1
    return sum(math.ceil(phase.count / at_once) * phase.seconds_each for phase in phases)
