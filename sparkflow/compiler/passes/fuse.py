"""Fuse: run consecutive row-wise stages in one task per chunk (fewer writes and state transitions).

Not implemented yet (issue 4): it only has work once the split pass creates chunked stages.
"""

from __future__ import annotations

import networkx as nx

from sparkflow.compiler.context import Context


def fuse(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    return graph
