"""Validate: the graph is one the rest of the compiler can trust.

Reports everything found while tracing (arity, unknown inputs, duplicate names, a pipeline that returns
nothing) together with what only the whole graph shows (cycles, value stages that cannot be split).
All problems are raised at once.
"""

from __future__ import annotations

import networkx as nx

from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import output_kind, stage_nodes
from sparkflow.errors import CompileError, DefinitionError, SparkflowError
from sparkflow.plan import ROW_KINDS


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
    if problems:
        raise CompileError(problems)
    return graph
