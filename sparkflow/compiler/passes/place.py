"""Place: decide where each stage runs — a function, a container or serverless Spark.

A stage's input is sized as the estimate sizes it (:func:`expected_outputs`): declared sources (``size=``; unknown
sizes count 0) and upstream stages' outputs, each its own input times its shrink (:mod:`sparkflow.shrink`:
measured, else the combined default, else 1). A stage runs on a function (Lambda / a Cloud Run request) when it
fits one: memory= and timeout= within the function's limits, the input it reads whole no more than a function can
hold (see :func:`sparkflow.compiler.chunking.whole_capacity`), and the estimate's seconds for it
(:func:`sparkflow.compiler.chunking.task_seconds`) within its timeout. Split stages (``partition="rows"`` /
``partition_by=``) fan out over chunks sized for functions, so they stay on functions. Otherwise, with
``placement="auto"``:

* a **container** (ECS Fargate task / Cloud Run job) when one is big enough: the stage's memory is rounded up
  to the smallest container size that holds its input and, with that size's vCPUs, reads it within its timeout;
* else **serverless Spark** (EMR Serverless / Dataproc Serverless) for Spark stages: the stage runs as a Spark
  application on a cluster that reads storage directly, so no single machine must hold the input, if the
  cluster reads it within its timeout;
* else a compile error that says why and what to declare.

So no stage is placed where ``sparkflow plan`` (with the declared sizes) would say it runs past its timeout.

A stage may force ``placement=``; this pass then checks that the choice can hold it (a forced placement on a
partitioned stage runs it whole there). On a target without containers or serverless Spark — a local run,
which uses sample data — every stage runs where it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import networkx as nx

from sparkflow import shrink
from sparkflow.compiler.chunking import MODEL_VCPUS, task_seconds, whole_capacity
from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import SourceNode, StageNode, node, output_kind, replace_node, stage_nodes
from sparkflow.compiler.passes.engine_choice import SERVERLESS_SPARK_RUNS_SPARK
from sparkflow.dsl.stage import StageOptions
from sparkflow.engines import DEFAULT as DEFAULT_ENGINE
from sparkflow.engines import ENGINES
from sparkflow.errors import CompileError, DefinitionError, SparkflowError
from sparkflow.plan import ROW_KINDS
from sparkflow.targets.base import ContainerLimits, Target

FUNCTION, CONTAINER, SERVERLESS_SPARK = "function", "container", "serverless-spark"


def place(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    target = context.target
    containers = target.container_limits
    problems: list[SparkflowError] = []
    outputs = expected_outputs(graph, shrink.load(context.pipeline.origin.file, context.pipeline.name))
    for item in stage_nodes(graph):
        if containers is None and target.serverless_spark is None:
            replace_node(graph, replace(item, placement=FUNCTION))
            continue
        try:
            size = sum(outputs[upstream] for _, upstream in item.inputs)
            placed = _place(graph, item, target, size)
        except DefinitionError as problem:
            problems.append(problem)
            continue
        replace_node(graph, placed)
    if problems:
        raise CompileError(problems)
    return graph


def expected_outputs(graph: nx.DiGraph, measured: Mapping[str, shrink.Measured]) -> dict[str, int]:
    """Bytes every node gives its consumers, as the estimate sizes them: a source its declared size (unknown: 0), a
    stage its inputs times its shrink (``measured``: :func:`sparkflow.shrink.load`); a parameter or a value none."""
    outputs: dict[str, int] = {}
    for node_id in nx.topological_sort(graph):
        found = node(graph, node_id)
        if isinstance(found, SourceNode):
            outputs[node_id] = found.source.size_bytes or 0
        elif isinstance(found, StageNode) and found.options.output == "dataset":
            combined = found.options.partition == "key" and found.options.combine is not False
            ratio = shrink.of(found.id, combined=combined, measured=measured).ratio
            outputs[node_id] = round(sum(outputs[upstream] for _, upstream in found.inputs) * ratio)
        else:
            outputs[node_id] = 0
    return outputs


def _in_time(options: StageOptions, size: int, vcpus: float) -> bool:
    """Whether the estimate times one task reading ``size`` bytes on ``vcpus`` within the stage's timeout."""
    start = ENGINES[options.engine].start_up.cloud_task
    return task_seconds(size, options.engine, start_s=start, vcpus=vcpus) <= options.timeout_s


def _serverless_spark_vcpus() -> int:
    from sparkflow.estimate.usage import SERVERLESS_SPARK_VCPUS

    return SERVERLESS_SPARK_VCPUS


def _place(graph: nx.DiGraph, item: StageNode, target: Target, size: int) -> StageNode:
    """Where the stage runs, reading ``size`` bytes (see :func:`expected_outputs`)."""
    options = item.options
    wanted = options.placement
    if wanted == FUNCTION or (wanted == "auto" and (_split(graph, item) or _fits_function(item, size, target))):
        return replace(item, placement=FUNCTION)
    containers = target.container_limits
    if wanted in (CONTAINER, "auto") and containers is not None:
        memory = _container_memory(item, size, containers)
        if memory is not None:
            return replace(item, placement=CONTAINER, options=replace(options, memory_mb=memory))
        if wanted == CONTAINER:
            raise _container_problem(item, size, containers)
    runs_spark = ENGINES[options.engine].runs_on_clusters
    if target.serverless_spark is None or not (runs_spark or item.engine_choice):
        raise _nothing_fits(item, size, target)
    # engine="auto": clusters run Spark
    spark = options if runs_spark else replace(options, engine=DEFAULT_ENGINE)
    if not _in_time(spark, size, _serverless_spark_vcpus()):
        raise _nothing_fits(replace(item, options=spark), size, target, in_time=False)
    if runs_spark:
        return replace(item, placement=SERVERLESS_SPARK)
    return replace(item, placement=SERVERLESS_SPARK, options=spark, engine_choice=SERVERLESS_SPARK_RUNS_SPARK)


def _split(graph: nx.DiGraph, item: StageNode) -> bool:
    """Whether the split pass may fan the stage out (it then runs on functions, one chunk per task)."""
    datasets = [upstream for _, upstream in item.inputs if output_kind(graph, upstream) in ROW_KINDS]
    return item.options.partition != "whole" and bool(datasets)


def _fits_function(item: StageNode, size: int, target: Target) -> bool:
    options, limits = item.options, target.function_limits
    if options.memory_mb > limits.memory_mb.value or options.timeout_s > limits.timeout_s.value:
        return False
    scratch = limits.scratch_bytes.value if limits.scratch_bytes else None
    capacity = whole_capacity(options.memory_mb, options.engine, scratch)
    return size <= capacity and _in_time(options, size, MODEL_VCPUS)


def _container_memory(item: StageNode, size: int, containers: ContainerLimits) -> int | None:
    """The memory of the smallest container size that takes the stage, or None if none does."""
    options = item.options
    if options.timeout_s > containers.timeout_s.value:
        return None
    for vcpus, memory in containers.sizes:
        if memory < options.memory_mb:
            continue
        scratch = containers.scratch_bytes.value if containers.scratch_bytes else None
        if size <= whole_capacity(memory, options.engine, scratch) and _in_time(options, size, vcpus):
            return memory
    return None


def _gb(size: int) -> str:
    return f"{size / 1024**3:,.1f} GB"


def _container_reason(item: StageNode, size: int, containers: ContainerLimits) -> str:
    """Why no container size takes the stage."""
    options = item.options
    if options.timeout_s > containers.timeout_s.value:
        return f"timeout={options.timeout_s:,} s is over the {containers.timeout_s.describe()}"
    if options.memory_mb > containers.memory_mb.value:
        return f"memory={options.memory_mb:,} MB is over the {containers.memory_mb.describe()}"
    scratch = containers.scratch_bytes.value if containers.scratch_bytes else None
    vcpus, memory = containers.sizes[-1]
    largest = whole_capacity(memory, options.engine, scratch)
    if size <= largest:
        return _over_time(options, size, vcpus, f"the largest {containers.service} container")
    return (
        f"it reads {_gb(size)} declared, more than the largest {containers.service} container takes "
        f"(about {_gb(largest)})"
    )


def _container_problem(item: StageNode, size: int, containers: ContainerLimits) -> DefinitionError:
    return DefinitionError(
        f"stage {item.stage!r} cannot run on a container: {_container_reason(item, size, containers)}; lower it, "
        "declare partition='rows' or partition_by='column' so its input is split, or use "
        "placement='serverless-spark'",
        item.origin,
    )


def _over_time(options: StageOptions, size: int, vcpus: float, where: str) -> str:
    start = ENGINES[options.engine].start_up.cloud_task
    seconds = task_seconds(size, options.engine, start_s=start, vcpus=vcpus)
    return (
        f"it reads {_gb(size)} (its inputs as sparkflow plan sizes them), estimated at {seconds:,.0f} s on {where} "
        f"({vcpus:g} vCPUs), over timeout={options.timeout_s:,} s"
    )


def _nothing_fits(item: StageNode, size: int, target: Target, *, in_time: bool = True) -> DefinitionError:
    containers = target.container_limits
    why = "" if containers is None else f": {_container_reason(item, size, containers)}"
    fix = "declare partition='rows' or partition_by='column' so its input is split"
    if not in_time:
        why = f": {_over_time(item.options, size, _serverless_spark_vcpus(), str(target.serverless_spark))}"
        fix = f"raise timeout=, or {fix}"
    elif target.serverless_spark is not None:
        fix += f", or engine='spark' so it can run on {target.serverless_spark}"
    return DefinitionError(
        f"stage {item.stage!r} fits neither a function nor a container on {target.name}{why}; {fix}", item.origin
    )
