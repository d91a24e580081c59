"""Place: decide where each stage runs.

Today every stage runs on a function (AWS Lambda / Cloud Run); containers and serverless Spark engines for
stages whose input may exceed a function come with the split work (issue 4), here.
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import replace_node, stage_nodes

FUNCTION = "function"


def place(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    for item in stage_nodes(graph):
        replace_node(graph, replace(item, placement=FUNCTION))
    return graph
