"""Turn the DAG of stages into nested sequences and parallel branches (what ASL and Workflows can express).

Series-parallel graphs decompose exactly: disconnected parts run in parallel; a connected part is cut into
a sequence wherever everything after the cut depends on everything before it. A graph that is not
series-parallel (e.g. a->c, a->d, b->d) has no such cut; its parts then run one topological generation
after another, which never starts a stage before its inputs exist but may make a stage wait for an
unrelated one of the previous generation.

Nesting is bounded: below :data:`MAX_DEPTH` levels a part also runs generation by generation. Without the
bound, a "caterpillar" (a chain whose every stage also feeds a side stage) nests one Parallel state per
stage, which makes the definition unreadable and overflows Python's recursion (here and in json.dumps).

Cost: every level of the decomposition looks at each of its nodes and edges a constant number of times (a
cut test needs direct predecessors only, see :func:`_depends_on_all`), so compile time is linear in the
number of stages and edges.
"""

from __future__ import annotations

import networkx as nx

from sparkflow.plan import Parallel, Run, Sequence, Step

MAX_DEPTH = 16  # levels of the decomposition (a Parallel state and its branches' sequences are two)


def schedule(graph: nx.DiGraph, order: dict[str, int]) -> Step:
    """The schedule of ``graph`` (only stage-to-stage edges matter); ``order`` sorts siblings."""
    return _decompose(graph, set(graph), order, 0)


def _decompose(graph: nx.DiGraph, nodes: set[str], order: dict[str, int], depth: int) -> Step:
    if len(nodes) == 1:
        return Run(next(iter(nodes)))
    view = graph.subgraph(nodes)
    parts = sorted(nx.weakly_connected_components(view), key=lambda part: min(order[n] for n in part))
    if len(parts) > 1:
        if depth >= MAX_DEPTH:
            return _by_generations(view, order)
        return _parallel([_decompose(graph, set(part), order, depth + 1) for part in parts])
    generations = [sorted(gen, key=order.__getitem__) for gen in nx.topological_generations(view)]
    segments = _series_segments(view, generations)
    if len(segments) == 1 or depth >= MAX_DEPTH:
        return _by_generations(view, order, generations)
    return _sequence([_decompose(graph, set(segment), order, depth + 1) for segment in segments])


def _by_generations(view: nx.DiGraph, order: dict[str, int], generations: list[list[str]] | None = None) -> Step:
    """One topological generation after another; the stages of a generation are independent of each other."""
    if generations is None:
        generations = [sorted(gen, key=order.__getitem__) for gen in nx.topological_generations(view)]
    return _sequence([_parallel([Run(node) for node in generation]) for generation in generations])


def _series_segments(view: nx.DiGraph, generations: list[list[str]]) -> list[list[str]]:
    """Cut between generations where every node after the cut depends on every node before it.

    Only the latest nodes before the cut (those with no successor before it) and the first generation
    after it need checking: every other node before is an ancestor of a latest one, and every other node
    after descends from the first generation after the cut (a node of generation g > 0 has a predecessor in
    generation g - 1).
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


def _depends_on_all(view: nx.DiGraph, after: list[str], latest: set[str]) -> bool:
    # A latest node has no successor before the cut and generations strictly increase along every edge, so
    # its only way to reach a node of the very next generation is a direct edge: no ancestor search needed.
    return all(latest.issubset(view.predecessors(node)) for node in after)


def _sequence(steps: list[Step]) -> Step:
    flat: list[Step] = []
    for step in steps:
        flat.extend(step.steps if isinstance(step, Sequence) else (step,))
    return flat[0] if len(flat) == 1 else Sequence(tuple(flat))


def _parallel(branches: list[Step]) -> Step:
    flat: list[Step] = []
    for branch in branches:
        flat.extend(branch.branches if isinstance(branch, Parallel) else (branch,))
    return flat[0] if len(flat) == 1 else Parallel(tuple(flat))
