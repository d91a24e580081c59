"""The DAG of a Plan as a diagram (``sparkflow graph``): Mermaid, Graphviz DOT, or JSON.

Every source, stage, sink and edge is drawn: a stage fused into the split stage it feeds (it runs inside that stage's
map tasks) is drawn inside its host, with its own edges; each stage says how it runs: whole or split (by rows, or by
key), where (a function, a container, serverless Spark), with how much memory, and on which engine.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sparkflow.plan import Plan, PlanParam, PlanTask


@dataclass(frozen=True)
class Node:
    """A source, a stage call or a sink (names are unique across the three). ``host`` is the stage a fused stage runs
    inside."""

    id: str
    kind: str  # source, param, dataset (a stage returning a DataFrame), value or sink
    detail: str
    host: str | None = None


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    param: str


def layout(plan: Plan) -> tuple[list[Node], list[Edge]]:
    """The nodes and edges of ``plan``, in its order (sources, then stages, fused stages before their host, then
    sinks)."""
    nodes = [Node(source.name, "source", f"{source.format} source") for source in plan.sources]
    nodes += [Node(param.name, "param", _param_detail(param)) for param in plan.params]
    edges: list[Edge] = []
    for task in plan.tasks:
        for fused in task.fused:
            nodes.append(Node(fused.id, fused.output, f"split by rows, fused into {task.id}", host=task.id))
            edges += [Edge(item.node, fused.id, item.param) for item in fused.inputs]
        nodes.append(Node(task.id, task.output, describe(task)))
        edges += [Edge(item.node, task.id, item.param) for item in task.inputs]
    for sink in plan.sinks:
        nodes.append(Node(sink.name, "sink", f"{sink.format} sink, {sink.mode}"))
        edges.append(Edge(sink.node, sink.name, "publish"))
    return nodes, edges


def _param_detail(param: PlanParam) -> str:
    """``int parameter, default 3`` (or ``required``)."""
    return f"{param.type} parameter, " + ("required" if param.required else f"default {param.default!r}")


def describe(task: PlanTask) -> str:
    """How a stage runs: ``split by key (word), function, 2048 MB, spark`` (``sail (auto)``: chosen by the
    compiler for a stage that said ``engine="auto"``)."""
    if task.fanout is None:
        split = "whole"
    elif task.fanout.mode == "key":
        split = f"split by key ({', '.join(task.partition_by)})"
    else:
        split = "split by rows"
    engine = f"{task.engine} (auto)" if task.engine_choice else task.engine
    return f"{split}, {task.placement}, {task.memory_mb} MB, {engine}"


def to_mermaid(plan: Plan) -> str:
    """Mermaid flowchart text: sources and sinks as cylinders, parameters as parallelograms, value stages as
    hexagons, fused stages inside a box that holds their host."""
    nodes, edges = layout(plan)
    ids = {node.id: f"n{number}" for number, node in enumerate(nodes)}
    lines = ["flowchart TD"]

    def shape(node: Node) -> str:
        label = f'"{_mermaid_text(node.id)}<br/><small>{_mermaid_text(node.detail)}</small>"'
        if node.kind in ("source", "sink"):
            return f"{ids[node.id]}[({label})]"
        if node.kind == "param":
            return f"{ids[node.id]}[/{label}/]"
        return f"{ids[node.id]}{{{{{label}}}}}" if node.kind == "value" else f"{ids[node.id]}[{label}]"

    hosts = {node.host for node in nodes if node.host}
    for node in nodes:
        if node.host is None and node.id not in hosts:
            lines.append(f"    {shape(node)}")
    for number, host in enumerate(sorted(hosts, key=[node.id for node in nodes].index)):
        lines.append(f'    subgraph g{number} ["{_mermaid_text(host)}: its map tasks run the stages fused into it"]')
        lines += [f"        {shape(node)}" for node in nodes if node.host == host or node.id == host]
        lines.append("    end")
    lines += [f"    {ids[edge.source]} -->|{_mermaid_text(edge.param)}| {ids[edge.target]}" for edge in edges]
    return "\n".join(lines) + "\n"


_DOT_SHAPES = {"source": "cylinder", "sink": "cylinder", "value": "hexagon", "param": "parallelogram"}


def to_dot(plan: Plan) -> str:
    """Graphviz DOT text (``sparkflow graph --format dot | dot -Tsvg``): the same drawing as :func:`to_mermaid`."""
    nodes, edges = layout(plan)
    lines = [f"digraph {_dot_id(plan.pipeline)} {{", "    rankdir=TB;", "    node [fontname=Helvetica];"]

    def shape(node: Node) -> str:
        form = _DOT_SHAPES.get(node.kind, "box")
        return f"{_dot_id(node.id)} [shape={form}, label={_dot_id(node.id + chr(10) + node.detail)}];"

    hosts = {node.host for node in nodes if node.host}
    for node in nodes:
        if node.host is None and node.id not in hosts:
            lines.append(f"    {shape(node)}")
    for host in sorted(hosts, key=[node.id for node in nodes].index):
        lines.append(f"    subgraph {_dot_id('cluster_' + host)} {{")
        lines.append(f"        label={_dot_id(host + ': its map tasks run the stages fused into it')};")
        lines += [f"        {shape(node)}" for node in nodes if node.host == host or node.id == host]
        lines.append("    }")
    for edge in edges:
        lines.append(f"    {_dot_id(edge.source)} -> {_dot_id(edge.target)} [label={_dot_id(edge.param)}];")
    return "\n".join([*lines, "}"]) + "\n"


def to_json(plan: Plan) -> str:
    """The nodes and edges as JSON (``sparkflow graph --json``)."""
    nodes, edges = layout(plan)
    document: dict[str, Any] = {
        "pipeline": plan.pipeline,
        "nodes": [asdict(node) for node in nodes],
        "edges": [asdict(edge) for edge in edges],
    }
    return json.dumps(document, indent=2) + "\n"


FORMATS = {"mermaid": to_mermaid, "dot": to_dot, "json": to_json}


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label (names are letters, digits, '_' and '-'; formats are words)."""
    return text.replace('"', "#quot;")


def _dot_id(text: str) -> str:
    """A quoted DOT identifier."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
