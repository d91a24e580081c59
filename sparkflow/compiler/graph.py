"""``build(pipeline)``: trace the pipeline and turn what it recorded into a networkx graph.

Node data (under the key ``"node"``) are frozen dataclasses that carry the user's file and line; edges carry
the parameter an upstream node feeds. Problems found while tracing are kept in ``graph.graph["problems"]``
for the validate pass, so that every problem is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from sparkflow.dsl.param import Param
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.dsl.source import Source
from sparkflow.dsl.stage import StageOptions
from sparkflow.errors import Origin
from sparkflow.plan import Fanout, PlanSink


@dataclass(frozen=True)
class SourceNode:
    """A declared input."""

    id: str
    source: Source
    order: int

    @property
    def origin(self) -> Origin:
        return self.source.origin


@dataclass(frozen=True)
class ParamNode:
    """A value each run gives; its edges lead to the stages that take it."""

    id: str
    param: Param
    order: int

    @property
    def origin(self) -> Origin:
        return self.param.origin


@dataclass(frozen=True)
class StageNode:
    """One call of a stage, and what the passes decide about it."""

    id: str
    stage: str
    options: StageOptions
    inputs: tuple[tuple[str, str], ...]  # (parameter, upstream node id)
    origin: Origin  # where the stage is declared
    call_origin: Origin  # where the pipeline calls it
    order: int
    function: Any = field(default=None, compare=False, repr=False)  # the stage's function (its code is read)
    placement: str = ""  # set by the place pass
    engine_choice: str = ""  # set by the engine choice pass: why an engine="auto" stage got its engine
    fanout: Fanout | None = None  # set by the split pass when the input may not fit one task
    location: str = ""  # set by the layout pass
    fused: tuple[StageNode, ...] = ()  # set by the fuse pass: row-wise stages run inside this one's map tasks


Node = SourceNode | ParamNode | StageNode


def build(pipeline: Pipeline) -> nx.DiGraph:
    """Trace ``pipeline`` and return its graph; raises nothing for the user's mistakes (validate does)."""
    trace = pipeline.trace()
    sinks = tuple(
        PlanSink(sink.name, sink.uri, sink.format, sink.mode, sink.partition_cols, node_id, sink.origin, published)
        for sink, node_id, published in trace.sinks.values()
    )
    graph = nx.DiGraph(pipeline=pipeline, outputs=trace.outputs, sinks=sinks, problems=list(trace.problems))
    order = 0
    for name, source in trace.sources.items():
        graph.add_node(name, node=SourceNode(name, source, order))
        order += 1
    for name, declared in trace.params.items():
        graph.add_node(name, node=ParamNode(name, declared, order))
        order += 1
    for node_id, call in trace.calls.items():
        graph.add_node(
            node_id,
            node=StageNode(
                id=node_id,
                stage=call.stage.name,
                options=call.stage.options,
                inputs=call.inputs,
                origin=call.stage.origin,
                call_origin=call.origin,
                order=order,
                function=call.stage.fn,
            ),
        )
        order += 1
        for param, upstream in call.inputs:
            graph.add_edge(upstream, node_id, param=param)
    return graph


def node(graph: nx.DiGraph, node_id: str) -> Any:
    """The dataclass of ``node_id``."""
    return graph.nodes[node_id]["node"]


def stage_nodes(graph: nx.DiGraph) -> list[StageNode]:
    """Stage nodes in declaration order."""
    found = [data["node"] for _, data in graph.nodes(data=True) if isinstance(data["node"], StageNode)]
    return sorted(found, key=lambda item: item.order)


def output_kind(graph: nx.DiGraph, node_id: str) -> str:
    """What a node gives its consumers: ``source``, ``param``, ``dataset`` or ``value``."""
    item = node(graph, node_id)
    if isinstance(item, SourceNode):
        return "source"
    return "param" if isinstance(item, ParamNode) else str(item.options.output)


def replace_node(graph: nx.DiGraph, new: Node) -> None:
    graph.nodes[new.id]["node"] = new
