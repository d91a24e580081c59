"""Split: decide which stages run as split -> map fan-out -> (shuffle -> reduce) -> commit.

A stage declared ``partition="rows"`` or ``partition_by=...`` is split unless every input it would split has a
declared size that fits one task (see :mod:`sparkflow.compiler.chunking`); an unknown size (any stage output,
a source without ``size=``) may not fit, so it is split, and the split task measures the real input at run
time (one chunk when it is small). A rows stage splits its first dataset input and reads the others whole; a
key stage splits every dataset input and buckets them all by the same key (a join). Values are never split.

A whole stage (the default) is never split: if its declared input exceeds what a function can take, the
stage must say how it may be split (a container or serverless Spark placement is not available yet).
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from sparkflow.compiler.chunking import chunk_bytes
from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import SourceNode, StageNode, node, replace_node, stage_nodes
from sparkflow.errors import CompileError, DefinitionError, SparkflowError
from sparkflow.plan import Fanout

DEFAULT_MAX_CONCURRENCY = 100


def split(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    problems: list[SparkflowError] = []
    limits = context.target.function_limits
    for item in stage_nodes(graph):
        options = item.options
        budget = options.chunk_size or chunk_bytes(options.memory_mb, options.timeout_s, options.engine, limits)
        datasets = [(param, upstream) for param, upstream in item.inputs if _kind(graph, upstream) != "value"]
        sizes = [_declared_size(graph, upstream) for _, upstream in datasets]
        if options.partition == "whole" or not datasets:
            known = [size for size in sizes if size is not None]
            if options.partition == "whole" and known and sum(known) > budget * _WHOLE_HEADROOM:
                problems.append(_too_big(item, sum(known), budget))
            continue
        chosen = datasets[:1] if options.partition == "rows" else datasets
        declared = [_declared_size(graph, upstream) for _, upstream in chosen]
        fits = all(size is not None for size in declared) and sum(s or 0 for s in declared) <= budget
        if fits and options.chunk_size is None:
            continue
        fanout = Fanout(
            mode=options.partition,
            split=tuple(param for param, _ in chosen),
            chunk_bytes=budget,
            max_concurrency=DEFAULT_MAX_CONCURRENCY,
        )
        replace_node(graph, replace(item, fanout=fanout))
    if problems:
        raise CompileError(problems)
    return graph


# A whole stage may read up to this many chunk budgets (Spark spills to disk; a chunk budget is conservative).
_WHOLE_HEADROOM = 8


def _kind(graph: nx.DiGraph, node_id: str) -> str:
    item = node(graph, node_id)
    return "source" if isinstance(item, SourceNode) else item.options.output


def _declared_size(graph: nx.DiGraph, node_id: str) -> int | None:
    item = node(graph, node_id)
    return item.source.size_bytes if isinstance(item, SourceNode) else None


def _too_big(item: StageNode, size: int, budget: int) -> DefinitionError:
    gb = size / 1024**3
    return DefinitionError(
        f"stage {item.stage!r} runs on its whole input ({gb:,.1f} GB declared), more than one function can take "
        f"(about {budget * _WHOLE_HEADROOM / 1024**3:,.1f} GB with memory={item.options.memory_mb} MB): declare "
        "partition='rows' if any split of its rows gives the same result, or partition_by='column' if rows "
        "with equal keys must meet (container and serverless Spark placement are not available yet)",
        item.origin,
    )
