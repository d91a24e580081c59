"""Fuse: run a row-wise stage inside the map tasks of the split stage it feeds, as Spark pipelines narrow
transformations.

A split stage's map task reads one chunk of its input. When that input is the output of a row-wise stage
(``partition="rows"``) that nothing else reads, the map task can read a chunk of *that* stage's input instead
and apply the row-wise stage to it first: the same rows reach the split stage (any split of a row-wise stage's
input gives the same rows), but the intermediate output is never written, read or listed, and the state machine
has one fan-out fewer. Chains fuse too (rows -> rows -> key), and a join fuses each of its inputs.

A stage is fused into its consumer when all of these hold:

* it is split by rows, runs on a function, returns a dataset and uses the same engine as its consumer;
* its consumer is split (rows or key) on a function and takes it as an input that is cut into chunks;
* nothing else reads it, the pipeline does not return it and publishes it to no sink.

The fused stage leaves the schedule; the consumer lists it in ``fused`` and takes the larger memory, timeout and
retries and the smaller chunk of the two (its chunks are now the upstream stage's input).
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import StageNode, node, replace_node, stage_nodes
from sparkflow.compiler.passes.place import FUNCTION


def fuse(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    kept = set(graph.graph["outputs"]) | {sink.node for sink in graph.graph["sinks"]}
    order = {item.id: item.order for item in stage_nodes(graph)}
    for consumer_id in nx.lexicographical_topological_sort(graph, key=lambda n: order.get(n, -1)):
        consumer = node(graph, consumer_id)
        if not isinstance(consumer, StageNode) or consumer.fanout is None or consumer.placement != FUNCTION:
            continue
        for param, upstream_id in consumer.inputs:
            upstream = node(graph, upstream_id)
            if param in consumer.fanout.split and _fusable(graph, upstream, consumer, kept):
                assert isinstance(upstream, StageNode)
                consumer = _absorb(graph, consumer, upstream)
        replace_node(graph, consumer)
    return graph


def absorbed(graph: nx.DiGraph) -> set[str]:
    """The ids of stages fused into another (they run inside its tasks and have none of their own)."""
    return {fused.id for item in stage_nodes(graph) for fused in item.fused}


def _fusable(graph: nx.DiGraph, upstream: object, consumer: StageNode, kept: set[str]) -> bool:
    return (
        isinstance(upstream, StageNode)
        and upstream.fanout is not None
        and upstream.fanout.mode == "rows"
        and upstream.placement == FUNCTION
        and upstream.options.output == "dataset"
        and upstream.options.engine == consumer.options.engine
        and upstream.id not in kept
        and graph.out_degree(upstream.id) == 1
    )


def _absorb(graph: nx.DiGraph, consumer: StageNode, upstream: StageNode) -> StageNode:
    """``consumer`` with ``upstream`` (and what it had absorbed) running inside its map tasks."""
    assert consumer.fanout is not None and upstream.fanout is not None
    # The consumer now waits for what the upstream stage waited for (edges only order the schedule).
    for before in graph.predecessors(upstream.id):
        if before != consumer.id:
            graph.add_edge(before, consumer.id, param=None)
    mine, theirs = consumer.options, upstream.options
    options = replace(
        mine,
        memory_mb=max(mine.memory_mb, theirs.memory_mb),
        timeout_s=max(mine.timeout_s, theirs.timeout_s),
        retries=max(mine.retries, theirs.retries),
    )
    fanout = replace(consumer.fanout, chunk_bytes=min(consumer.fanout.chunk_bytes, upstream.fanout.chunk_bytes))
    fused = (*consumer.fused, *upstream.fused, replace(upstream, fused=()))
    return replace(consumer, options=options, fanout=fanout, fused=fused)
