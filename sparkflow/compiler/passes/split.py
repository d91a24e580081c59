"""Split: decide which stages run as split -> map fan-out -> (shuffle -> reduce) -> commit.

A stage declared ``partition="rows"`` or ``partition_by=...`` is split unless every input it would split has a
declared size that fits one task (see :mod:`sparkflow.compiler.chunking`); an unknown size (any stage output,
a source without ``size=``) may not fit, so it is split, and the split task measures the real input at run
time (one chunk when it is small). A rows stage splits its first dataset input and reads the others whole; a
key stage splits every dataset input and buckets them all by the same key (a join). Values are never split.

A whole stage (the default) is never split, nor is a stage the place pass put on a container or serverless
Spark: those run whole where they are placed.
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from sparkflow import shrink
from sparkflow.compiler.chunking import chunk_bytes, whole_capacity
from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import SourceNode, StageNode, node, output_kind, replace_node, stage_nodes
from sparkflow.compiler.passes.place import FUNCTION, expected_outputs
from sparkflow.errors import CompileError, DefinitionError, SparkflowError
from sparkflow.plan import ROW_KINDS, Fanout

DEFAULT_MAX_CONCURRENCY = 100


def split(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    problems: list[SparkflowError] = []
    limits = context.target.function_limits
    outputs = expected_outputs(graph, shrink.load(context.pipeline.origin.file, context.pipeline.name))
    for item in stage_nodes(graph):
        options = item.options
        budget = options.chunk_size or chunk_bytes(options.memory_mb, options.timeout_s, options.engine, limits)
        datasets = [(param, upstream) for param, upstream in item.inputs if output_kind(graph, upstream) in ROW_KINDS]
        if item.placement != FUNCTION:
            continue
        if options.partition == "whole" or not datasets:
            size = sum(outputs[upstream] for _, upstream in item.inputs)
            scratch = limits.scratch_bytes.value if limits.scratch_bytes else None
            if not _local(context) and size > whole_capacity(
                options.memory_mb, options.engine, scratch, timeout_s=options.timeout_s
            ):
                problems.append(_too_big(item, size, context))
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
            combine=options.partition == "key" and options.combine is not False,
        )
        replace_node(graph, replace(item, fanout=fanout))
    if problems:
        raise CompileError(problems)
    return graph


def _local(context: Context) -> bool:
    """A run on this machine (no containers, no serverless Spark): sizes declared for the cloud don't apply."""
    return context.target.container_limits is None and context.target.serverless_spark is None


def _declared_size(graph: nx.DiGraph, node_id: str) -> int | None:
    item = node(graph, node_id)
    return item.source.size_bytes if isinstance(item, SourceNode) else None


def _too_big(item: StageNode, size: int, context: Context) -> DefinitionError:
    """A stage forced onto a function (placement='function') whose declared input a function cannot take."""
    options, limits = item.options, context.target.function_limits
    scratch = limits.scratch_bytes.value if limits.scratch_bytes else None
    capacity = whole_capacity(options.memory_mb, options.engine, scratch, timeout_s=options.timeout_s)
    return DefinitionError(
        f"stage {item.stage!r} runs on its whole input ({size / 1024**3:,.1f} GB declared), more than one function "
        f"can take (about {capacity / 1024**3:,.1f} GB with memory={options.memory_mb} MB): declare "
        "partition='rows' if any split of its rows gives the same result, or partition_by='column' if rows "
        "with equal keys must meet, or drop placement='function' so it runs on a container or serverless Spark",
        item.origin,
    )
