"""Layout: where each stage's output lives, relative to the storage root (see :mod:`sparkflow.layout`)."""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import replace_node, stage_nodes
from sparkflow.layout import location_template


def layout(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    for item in stage_nodes(graph):
        replace_node(graph, replace(item, location=location_template(context.pipeline.name, item.id)))
    return graph
