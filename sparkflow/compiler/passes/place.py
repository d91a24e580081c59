"""Place: decide where each stage runs — a function, a container or serverless Spark.

A stage runs on a function (Lambda / a Cloud Run request) when it fits one: memory= and timeout= within the
function's limits, and the input it reads whole (declared ``size=``) no more than a function can take (see
:func:`sparkflow.compiler.chunking.whole_capacity`). Split stages (``partition="rows"`` / ``partition_by=``)
fan out over chunks sized for functions, so they stay on functions. Otherwise, with ``placement="auto"``:

* a **container** (ECS Fargate task / Cloud Run job) when one is big enough: the stage's memory is rounded up
  to the smallest container size that holds its declared input, and its timeout must be within the container's;
* else **serverless Spark** (EMR Serverless / Dataproc Serverless) for Spark stages: the stage runs as a Spark
  application on a cluster that reads storage directly, so no single machine must hold the input;
* else a compile error that says why and what to declare.

A stage may force ``placement=``; this pass then checks that the choice can hold it (a forced placement on a
partitioned stage runs it whole there). On a target without containers or serverless Spark — a local run,
which uses sample data — every stage runs where it is.
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from sparkflow.compiler.chunking import whole_capacity
from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import SourceNode, StageNode, node, output_kind, replace_node, stage_nodes
from sparkflow.compiler.passes.engine_choice import SERVERLESS_SPARK_RUNS_SPARK
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
    for item in stage_nodes(graph):
        if containers is None and target.serverless_spark is None:
            replace_node(graph, replace(item, placement=FUNCTION))
            continue
        try:
            placed = _place(graph, item, target)
        except DefinitionError as problem:
            problems.append(problem)
            continue
        replace_node(graph, placed)
    if problems:
        raise CompileError(problems)
    return graph


def declared_input(graph: nx.DiGraph, item: StageNode) -> int:
    """Bytes of the stage's inputs whose size is declared (sources with ``size=``); unknown sizes count 0."""
    total = 0
    for _, upstream in item.inputs:
        found = node(graph, upstream)
        if isinstance(found, SourceNode) and found.source.size_bytes is not None:
            total += found.source.size_bytes
    return total


def _place(graph: nx.DiGraph, item: StageNode, target: Target) -> StageNode:
    options = item.options
    size = declared_input(graph, item)
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
    if target.serverless_spark is not None and ENGINES[options.engine].runs_on_clusters:
        return replace(item, placement=SERVERLESS_SPARK)
    if target.serverless_spark is not None and item.engine_choice:  # engine="auto": clusters run Spark
        engine = replace(options, engine=DEFAULT_ENGINE)
        return replace(item, placement=SERVERLESS_SPARK, options=engine, engine_choice=SERVERLESS_SPARK_RUNS_SPARK)
    raise _nothing_fits(item, size, target)


def _split(graph: nx.DiGraph, item: StageNode) -> bool:
    """Whether the split pass may fan the stage out (it then runs on functions, one chunk per task)."""
    datasets = [upstream for _, upstream in item.inputs if output_kind(graph, upstream) in ROW_KINDS]
    return item.options.partition != "whole" and bool(datasets)


def _fits_function(item: StageNode, size: int, target: Target) -> bool:
    options, limits = item.options, target.function_limits
    if options.memory_mb > limits.memory_mb.value or options.timeout_s > limits.timeout_s.value:
        return False
    scratch = limits.scratch_bytes.value if limits.scratch_bytes else None
    capacity = whole_capacity(options.memory_mb, options.engine, scratch, timeout_s=options.timeout_s)
    return size <= capacity


def _container_memory(item: StageNode, size: int, containers: ContainerLimits) -> int | None:
    """The memory of the smallest container size that takes the stage, or None if none does."""
    options = item.options
    if options.timeout_s > containers.timeout_s.value:
        return None
    for _, memory in containers.sizes:
        if memory < options.memory_mb:
            continue
        scratch = containers.scratch_bytes.value if containers.scratch_bytes else None
        if size <= whole_capacity(memory, options.engine, scratch):
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
    largest = whole_capacity(containers.sizes[-1][1], options.engine, scratch)
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


def _nothing_fits(item: StageNode, size: int, target: Target) -> DefinitionError:
    containers = target.container_limits
    why = "" if containers is None else f": {_container_reason(item, size, containers)}"
    fix = "declare partition='rows' or partition_by='column' so its input is split"
    if target.serverless_spark is not None:
        fix += f", or engine='spark' so it can run on {target.serverless_spark}"
    return DefinitionError(
        f"stage {item.stage!r} fits neither a function nor a container on {target.name}{why}; {fix}", item.origin
    )
