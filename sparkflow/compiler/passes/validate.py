"""Validate: the graph is one the rest of the compiler can trust.

Reports everything found while tracing (arity, unknown inputs, duplicate names, a pipeline that returns
nothing) together with what only the whole graph shows (cycles, value stages that cannot be split, a scheduled
pipeline that takes a parameter without a default). All problems are raised at once.
"""

from __future__ import annotations

import difflib

import networkx as nx

from sparkflow import compression
from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import ParamNode, SourceNode, node, output_kind, stage_nodes
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import CompileError, DefinitionError, SparkflowError
from sparkflow.plan import ROW_KINDS
from sparkflow.triggers import TriggerError, watched_folder


def validate(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    problems: list[SparkflowError] = list(graph.graph.get("problems", ()))
    pipeline = context.pipeline
    stages = stage_nodes(graph)
    if not stages and not problems:
        problems.append(DefinitionError(f"pipeline {pipeline.name!r} calls no stage", pipeline.origin))
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(edge[0] for edge in nx.find_cycle(graph))
        problems.append(DefinitionError(f"pipeline {pipeline.name!r} has a cycle: {cycle}", pipeline.origin))
    for item in stages:
        if item.options.output == "value" and item.options.partition != "whole":
            problems.append(
                DefinitionError(
                    f"stage {item.stage!r} returns a value, so it must see its whole input: "
                    "remove partition=/partition_by= or return a DataFrame",
                    item.origin,
                )
            )
        known = [(param, upstream) for param, upstream in item.inputs if upstream in graph]
        rows = [param for param, upstream in known if output_kind(graph, upstream) in ROW_KINDS]
        if item.options.combine is not False and len(rows) > 1:
            problems.append(
                DefinitionError(
                    f"stage {item.stage!r} joins {len(rows)} inputs ({', '.join(rows)}), so its map tasks have "
                    "nothing to combine: partial results of one input cannot be merged before they meet the other's "
                    "rows; remove combine= (or combine after the join, in a stage of its own)",
                    item.origin,
                )
            )
    problems += _compression_problems(graph)
    problems += trigger_problems(graph, pipeline)
    if pipeline.schedule is not None:
        problems += _unscheduled_params(graph, context)
    if problems:
        raise CompileError(problems)
    return graph


def _compression_problems(graph: nx.DiGraph) -> list[SparkflowError]:
    """A source whose declared location names a file of a compression sparkflow does not read (``logs/app.log.xz``),
    at its ``sf.source`` line. Files inside a declared folder are checked where they are listed (``sparkflow run``,
    the split and reading tasks)."""
    sources = sorted(
        (data["node"] for _, data in graph.nodes(data=True) if isinstance(data["node"], SourceNode)),
        key=lambda item: item.order,
    )
    problems: list[SparkflowError] = []
    for item in sources:
        reason = None if item.source.uri.endswith("/") else compression.refusal(item.source.uri, item.source.format)
        if reason is not None:
            problems.append(DefinitionError(f"source {item.source.name!r}: {reason}", item.origin))
    return problems


def trigger_problems(graph: nx.DiGraph, pipeline: Pipeline) -> list[SparkflowError]:
    """What makes ``trigger=sf.on_new_objects(name)`` unable to start a run, each at the trigger's line: a name that
    is no source of the pipeline (with the nearest), a source outside object storage or not a folder, a storage root
    inside the watched folder (each run's own writes would start runs), a parameter without a default (an object's
    event carries no value for it)."""
    trigger = pipeline.trigger
    if trigger is None:
        return []
    items = [node(graph, node_id) for node_id in graph]
    sources = {item.source.name: item.source for item in items if isinstance(item, SourceNode)}
    where = f"trigger=sf.on_new_objects({trigger.source!r})"
    if trigger.source not in sources:
        nearest = difflib.get_close_matches(trigger.source, list(sources), n=1, cutoff=0.5)
        hint = f"did you mean {nearest[0]!r}? " if nearest else ""
        known = ", ".join(sources) or "none"
        message = f"{where}: the pipeline reads no source {trigger.source!r}: {hint}(its sources: {known})"
        return [DefinitionError(message, trigger.origin)]
    problems: list[SparkflowError] = []
    source = sources[trigger.source]
    try:
        folder = watched_folder(source.uri)
    except TriggerError as problem:
        problems.append(
            DefinitionError(f"{where}: source {trigger.source!r} ({source.origin}): {problem}", trigger.origin)
        )
        folder = None
    written = [("the storage root", pipeline.storage)] if pipeline.storage else []
    written += [(f"sink {sink.name!r}", sink.uri) for sink in graph.graph["sinks"] if "://" in sink.uri]
    for what, uri in written:
        if folder is not None and folder.overlaps(uri):
            problems.append(
                DefinitionError(
                    f"{where}: the watched folder {folder.uri} and {what} {uri} overlap, so every run's own writes "
                    "would start more runs: watch a folder outside what the pipeline writes",
                    trigger.origin,
                )
            )
    for item in items:
        if isinstance(item, ParamNode) and item.param.required:
            problems.append(
                DefinitionError(
                    f"{where}: parameter {item.param.name!r} ({item.param.origin}) has no default, and a run a new "
                    f"object starts gets no value for it: give it one, e.g. sf.param({item.param.name!r}, default=...)",
                    trigger.origin,
                )
            )
    return problems


def _unscheduled_params(graph: nx.DiGraph, context: Context) -> list[SparkflowError]:
    """A scheduled run gets no parameter values (its input names only the sources): a parameter without a default
    would fail every run the schedule starts, so it is refused here, where the schedule is declared."""
    pipeline = context.pipeline
    required = sorted(
        (item.param for _, data in graph.nodes(data=True) if isinstance(item := data["node"], ParamNode)),
        key=lambda param: (param.origin.line, param.name),
    )
    return [
        DefinitionError(
            f"pipeline {pipeline.name!r} has schedule={pipeline.schedule!r} but its parameter {param.name!r} "
            f"({param.origin}) has no default, so every scheduled run would fail (a schedule gives no parameter "
            f"values): give it one, sf.param({param.name!r}, default=..., type={param.type}), or drop schedule=",
            pipeline.origin,
        )
        for param in required
        if param.required
    ]
