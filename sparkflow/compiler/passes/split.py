"""Split: insert split -> map fan-out -> (shuffle -> reduce) where a stage's input may not fit one function.

Not implemented yet (issue 4): every stage runs on its whole input in one task. The pass keeps its place in
the pipeline of passes so that adding it changes no other module.
"""

from __future__ import annotations

import networkx as nx

from sparkflow.compiler.context import Context


def split(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    return graph
