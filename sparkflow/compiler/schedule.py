"""Turn the DAG of stages into nested sequences and parallel branches (what ASL and Workflows can express).

Series-parallel graphs decompose exactly: disconnected parts run in parallel; a connected part is cut into
a sequence wherever everything after the cut depends on everything before it. A graph that is not
series-parallel (e.g. a->c, a->d, b->d) has no such cut; its parts then run one topological generation
after another, which never starts a stage before its inputs exist but may make a stage wait for an
unrelated one of the previous generation.
"""

from __future__ import annotations

from collections.abc import Collection

import networkx as nx

from sparkflow.plan import Parallel, Run, Sequence, Step


def schedule(graph: nx.DiGraph, order: dict[str, int]) -> Step:
    """The schedule of ``graph`` (only stage-to-stage edges matter); ``order`` sorts siblings."""
    return _decompose(graph, set(graph), order)


def _decompose(graph: nx.DiGraph, nodes: set[str], order: dict[str, int]) -> Step:
    if len(nodes) == 1:
        return Run(next(iter(nodes)))
    view = graph.subgraph(nodes)
    parts = sorted(nx.weakly_connected_components(view), key=lambda part: min(order[n] for n in part))
    if len(parts) > 1:
        return _parallel([_decompose(graph, set(part), order) for part in parts])
    generations = [sorted(gen, key=order.__getitem__) for gen in nx.topological_generations(view)]
    segments = _series_segments(view, generations)
    if len(segments) == 1:
        segments = generations  # not series-parallel: one generation after another
    return _sequence([_decompose(graph, set(segment), order) for segment in segments])


def _series_segments(view: nx.DiGraph, generations: list[list[str]]) -> list[list[str]]:
    """Cut between generations where every node after the cut depends on every node before it.

    Only the latest nodes before the cut (those with no successor before it) and the first generation
    after it need checking: every other node before is an ancestor of a latest one, and every other node
    after descends from the first generation after the cut.
    """
    segments: list[list[str]] = []
    current: list[str] = []
    latest: set[str] = set()
    for index, generation in enumerate(generations):
        current.extend(generation)
        for node in generation:
            latest.difference_update(view.predecessors(node))
            latest.add(node)
        if index + 1 < len(generations) and _depends_on_all(view, generations[index + 1], latest):
            segments.append(current)
            current = []
    segments.append(current)
    return segments


def _depends_on_all(view: nx.DiGraph, after: Collection[str], before: Collection[str]) -> bool:
    for node in after:
        direct = set(view.predecessors(node))
        missing = [b for b in before if b not in direct]
        if missing and not set(missing) <= nx.ancestors(view, node):
            return False
    return True


def _sequence(steps: list[Step]) -> Step:
    flat: list[Step] = []
    for step in steps:
        flat.extend(step.steps if isinstance(step, Sequence) else (step,))
    return flat[0] if len(flat) == 1 else Sequence(tuple(flat))


def _parallel(branches: list[Step]) -> Step:
    flat: list[Step] = []
    for branch in branches:
        flat.extend(branch.branches if isinstance(branch, Parallel) else (branch,))
    return Parallel(tuple(flat))
