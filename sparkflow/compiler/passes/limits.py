"""Limits: every stage fits the target's functions. Limits of the emitted definition itself (size, payload,
state names) are checked by the target after emission (``Target.check``)."""

from __future__ import annotations

import networkx as nx

from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import stage_nodes
from sparkflow.errors import CompileError, DefinitionError, SparkflowError


def limits(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    function = context.target.function_limits
    problems: list[SparkflowError] = []
    for item in stage_nodes(graph):
        if item.placement != "function":
            continue
        if item.options.memory_mb > function.memory_mb.value:
            problems.append(
                DefinitionError(
                    f"stage {item.stage!r}: memory={item.options.memory_mb:,} MB is over the "
                    f"{context.target.name} {function.memory_mb.describe()}: lower memory=",
                    item.origin,
                )
            )
        if item.options.timeout_s > function.timeout_s.value:
            problems.append(
                DefinitionError(
                    f"stage {item.stage!r}: timeout={item.options.timeout_s:,} s is over the "
                    f"{context.target.name} {function.timeout_s.describe()}: lower timeout= "
                    "(or split the stage's input with partition= / partition_by=)",
                    item.origin,
                )
            )
    if problems:
        raise CompileError(problems)
    return graph
