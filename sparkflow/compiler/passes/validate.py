"""Validate: the graph is one the rest of the compiler can trust.

Reports everything found while tracing (arity, unknown inputs, duplicate names, a pipeline that returns
nothing) together with what only the whole graph shows (cycles, value stages that cannot be split, a scheduled
pipeline that takes a parameter without a default). All problems are raised at once.
"""

from __future__ import annotations

import networkx as nx

from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import ParamNode, stage_nodes
from sparkflow.errors import CompileError, DefinitionError, SparkflowError


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
    if pipeline.schedule is not None:
        problems += _unscheduled_params(graph, context)
    if problems:
        raise CompileError(problems)
    return graph


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
