"""The compiler: pipeline -> graph -> passes -> Plan -> target definition.

>>> text = compile_pipeline(wordcount, "aws")  # doctest: +SKIP
"""

from __future__ import annotations

import os

import networkx as nx

from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import ParamNode, SourceNode, StageNode, build, node, output_kind
from sparkflow.compiler.passes import PASSES, Pass
from sparkflow.compiler.passes.fuse import absorbed
from sparkflow.compiler.schedule import schedule
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.dsl.stage import DEFAULT_MEMORY_MB, DEFAULT_RETRIES, DEFAULT_TIMEOUT_S
from sparkflow.errors import CompileError
from sparkflow.plan import (
    Plan,
    PlanInput,
    PlanParam,
    PlanSource,
    PlanTask,
    Publish,
    StartSchedule,
    StartTrigger,
    display_path,
)
from sparkflow.targets import get_target
from sparkflow.targets.base import Target

__all__ = ["PASSES", "CompileError", "build", "compile_pipeline", "definition_text", "plan_pipeline"]


def plan_pipeline(pipeline: Pipeline, target: str | Target, passes: tuple[Pass, ...] = PASSES) -> Plan:
    """Build the graph of ``pipeline``, run the passes for ``target`` (a name, or a Target such as
    :data:`sparkflow.targets.local.LOCAL`) and return the Plan.

    ``passes`` is :data:`PASSES` but for tools that want a plan without a decision, e.g. ``sparkflow verify``'s
    reference run, where no stage is split or fused."""
    chosen = get_target(target, pipeline.origin) if isinstance(target, str) else target
    context = Context(pipeline, chosen)
    graph = build(pipeline)
    for compiler_pass in passes:
        graph = compiler_pass(graph, context)
    return to_plan(graph, pipeline, chosen)


def compile_pipeline(pipeline: Pipeline, target: str) -> str:
    """The definition of ``pipeline`` for ``target`` as text; the same input always gives the same bytes.

    Raises:
        CompileError: with every problem found, each naming the user's file and line.
    """
    return definition_text(plan_pipeline(pipeline, target), target)


def definition_text(plan: Plan, target: str) -> str:
    """The definition of a compiled ``plan`` for ``target`` (see :func:`compile_pipeline`)."""
    chosen = get_target(target)
    text = chosen.emit(plan)
    problems = chosen.check(plan, text)
    if problems:
        raise CompileError(problems)
    return text


def to_plan(graph: nx.DiGraph, pipeline: Pipeline, target: Target) -> Plan:
    """Freeze the compiled graph into a Plan with a deterministic order (declaration order)."""
    order = {node_id: node(graph, node_id).order for node_id in graph}
    topological = list(nx.lexicographical_topological_sort(graph, key=order.__getitem__))
    fused = absorbed(graph)
    sources: list[PlanSource] = []
    params: list[PlanParam] = []
    tasks: list[PlanTask] = []
    for node_id in topological:
        item = node(graph, node_id)
        if isinstance(item, SourceNode):
            src = item.source
            sources.append(
                PlanSource(src.name, src.uri, src.format, src.size_bytes, src.options, src.origin, src.on_bad_record)
            )
        elif isinstance(item, ParamNode):
            declared = item.param
            default = None if declared.required else declared.default
            params.append(PlanParam(declared.name, declared.type, default, declared.required, declared.origin))
        elif node_id not in fused:
            assert isinstance(item, StageNode)
            tasks.append(_task(graph, item))
    stages = graph.subgraph(task.id for task in tasks)
    return Plan(
        pipeline=pipeline.name,
        source_file=display_path(os.path.abspath(pipeline.origin.file)),
        storage=pipeline.storage,
        kv=pipeline.kv,
        sources=tuple(sources),
        tasks=tuple(tasks),
        outputs=tuple(graph.graph["outputs"]),
        schedule=schedule(stages, order),
        publish=publish_task(tasks, target),
        sinks=tuple(graph.graph["sinks"]),
        start_schedule=StartSchedule(pipeline.schedule, pipeline.origin) if pipeline.schedule else None,
        params=tuple(sorted(params, key=lambda item: order[item.name])),
        start_trigger=StartTrigger(pipeline.trigger.source, pipeline.trigger.origin) if pipeline.trigger else None,
    )


def publish_task(tasks: list[PlanTask], target: Target) -> Publish:
    """The run's publish task runs on the smallest function the pipeline already has (publishing streams rows and
    copies files, so memory hardly matters, and no function is added for it), with a stage's default timeout and
    retries, within the target's function limits."""
    memories = [task.memory_mb for task in tasks if task.placement == "function"]
    timeout = min(DEFAULT_TIMEOUT_S, target.function_limits.timeout_s.value)
    return Publish(memory_mb=min(memories, default=DEFAULT_MEMORY_MB), timeout_s=timeout, retries=DEFAULT_RETRIES)


def _task(graph: nx.DiGraph, item: StageNode) -> PlanTask:
    options = item.options
    return PlanTask(
        id=item.id,
        stage=item.stage,
        inputs=tuple(PlanInput(param, upstream, output_kind(graph, upstream)) for param, upstream in item.inputs),
        output=options.output,
        placement=item.placement,
        memory_mb=options.memory_mb,
        timeout_s=options.timeout_s,
        retries=options.retries,
        engine=options.engine,
        partition=options.partition,
        partition_by=options.partition_by,
        location=item.location,
        origin=item.origin,
        call_origin=item.call_origin,
        fanout=item.fanout,
        fused=tuple(_task(graph, inner) for inner in item.fused),
        engine_choice=item.engine_choice,
    )
