"""Estimates of a run before it runs: per stage, where it runs, its chunks and tasks, its seconds from the chunk
model (:mod:`sparkflow.estimate.model`), the orchestration steps of the emitted definition
(:mod:`sparkflow.estimate.steps`) and what it uses and costs at list prices (:mod:`sparkflow.estimate.usage`,
:mod:`sparkflow.pricing`). ``sparkflow plan`` prints it; ``sparkflow run --json`` puts the model's seconds beside
the measured ones.

>>> estimate = estimate_plan(plan, pipeline, "aws", {"books": 40 * 1024**3})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from sparkflow import shrink
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.estimate.model import CLOUD, StageWork, local_profile, run_seconds, stage_work
from sparkflow.estimate.sizes import CompressedFiles, compressed_files, source_sizes
from sparkflow.estimate.steps import RUN, asl_transitions, by_length, stage_owner, workflow_steps
from sparkflow.estimate.usage import publish_usage, speedups, stage_usage
from sparkflow.plan import Plan
from sparkflow.pricing import PriceTable, price_table
from sparkflow.shrink import Measured

STEP_USAGE = {"aws": "sfn_transitions", "gcp": "workflows_internal_steps"}


@dataclass(frozen=True)
class StageEstimate:
    """One stage (or, with ``work`` None, the run's own states and its publish task)."""

    name: str
    work: StageWork | None
    steps: int
    usage: Mapping[str, float]
    costs: Mapping[str, float | None]


@dataclass(frozen=True)
class Estimate:
    """A whole run: its stages in the Plan's order, the run's own part, the longest path's seconds, and the sources
    that have compressed files (which cannot be split: each is read whole, in one chunk)."""

    plan: Plan
    target: str
    prices: PriceTable
    sources: Mapping[str, int]
    stages: tuple[StageEstimate, ...]
    run: StageEstimate
    seconds: float
    compressed: Mapping[str, CompressedFiles]


def estimate_plan(plan: Plan, pipeline: Pipeline, target: str, given: Mapping[str, int]) -> Estimate:
    """Estimate a run of ``plan`` (compiled for ``target``, ``aws`` or ``gcp``) with sources of ``given`` bytes
    (the rest: declared sizes, else local data; see :func:`sparkflow.estimate.sizes.source_sizes`)."""
    from sparkflow.targets import get_target

    sizes = source_sizes(plan, pipeline, given)
    measured = measured_shrinks(pipeline)
    work = stage_work(plan, sizes, CLOUD, speedups=speedups(plan, target), measured=measured)
    seconds = run_seconds(plan, work, CLOUD)
    text = get_target(target).emit(plan)
    if target == "aws":
        steps = asl_transitions(plan, json.loads(text), work)
    else:
        import yaml

        steps = workflow_steps(plan, yaml.safe_load(text), work)
    prices = price_table(target)
    usages = stage_usage(plan, work, target, seconds)
    stages = tuple(
        _priced(task.id, work[task.id], steps[task.id], usages[task.id], target, prices) for task in plan.tasks
    )
    publish_seconds = CLOUD.publish_start_s
    run = _priced(RUN, None, steps[RUN], publish_usage(plan, work, publish_seconds, target), target, prices)
    return Estimate(plan, target, prices, sizes, stages, run, seconds, compressed_files(plan, pipeline, sizes))


@dataclass(frozen=True)
class Seconds:
    """The chunk model's seconds of one run: per stage (task id) and for the whole run (its longest path)."""

    plan: Plan
    stages: Mapping[str, float]
    run: float

    def stage_of(self, name: str) -> str | None:
        """The stage ``name`` (a task id, or a state or step named after one, such as ``counts-map``) belongs to."""
        found = stage_owner(name, by_length(self.plan), RUN)
        return None if found == RUN else found

    def of(self, name: str) -> float | None:
        """The estimate of the stage ``name`` belongs to, to the millisecond (None: not a stage's)."""
        stage = self.stage_of(name)
        return None if stage is None else round(self.stages[stage], 3)


def add_estimates(rows: Mapping[str, MutableMapping[str, Any]], estimated: Seconds) -> float:
    """Put the model's seconds (``estimated_seconds``) beside the measured ones in each row of a stage (keyed by its
    name); return the run's. ``sparkflow run --json`` and ``sparkflow status`` show estimates with it."""
    for name, row in rows.items():
        row["estimated_seconds"] = estimated.of(name)
    return round(estimated.run, 3)


def cloud_seconds(plan: Plan, pipeline: Pipeline, target: str, given: Mapping[str, int]) -> Seconds:
    """The seconds ``sparkflow plan`` shows for a run of ``plan`` on ``target`` (the same model, profile and
    sizes; see :func:`estimate_plan`), without the steps and prices."""
    sizes = source_sizes(plan, pipeline, given)
    work = stage_work(plan, sizes, CLOUD, speedups=speedups(plan, target), measured=measured_shrinks(pipeline))
    return Seconds(plan, {task_id: done.seconds for task_id, done in work.items()}, run_seconds(plan, work, CLOUD))


def local_estimate(
    plan: Plan,
    pipeline: Pipeline,
    inputs: Mapping[str, str],
    *,
    workers: int | None,
    engine: str | None,
    chunk_bytes: int | None,
) -> Seconds:
    """The model's seconds of a `sparkflow run` of ``plan`` (the local target's) on the sources it reads
    (``inputs``: overridden locations), as that run will run them."""
    from sparkflow.estimate.sizes import location_size

    given = {name: size for name, location in inputs.items() if (size := location_size(location)) is not None}
    sizes = source_sizes(plan, pipeline, given, prefer_local=True)
    profile = local_profile(workers or os.cpu_count() or 1)
    work = stage_work(plan, sizes, profile, engine=engine, chunk_bytes=chunk_bytes, measured=measured_shrinks(pipeline))
    per_stage = {task_id: done.seconds for task_id, done in work.items()}
    return Seconds(plan, per_stage, run_seconds(plan, work, profile, engine))


def measured_shrinks(pipeline: Pipeline) -> dict[str, Measured]:
    """The shrinks measured for ``pipeline`` (its shrink file, see :mod:`sparkflow.shrink`)."""
    return shrink.load(pipeline.origin.file, pipeline.name)


def _priced(
    name: str, work: StageWork | None, steps: int, usage: Mapping[str, float], target: str, prices: PriceTable
) -> StageEstimate:
    quantities: dict[str, float] = dict(usage)
    quantities[STEP_USAGE[target]] = steps
    costs = {key: prices.price(key).cost(value) for key, value in quantities.items()}
    return StageEstimate(name, work, steps, quantities, costs)
