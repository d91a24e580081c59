"""The schedule: nested sequences and parallel branches that never start a stage before its inputs finished,
and, for series-parallel DAGs, no ordering the DAG does not ask for (as much parallelism as the DAG allows)."""

from __future__ import annotations

import itertools

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkflow.compiler.schedule import MAX_DEPTH, schedule
from sparkflow.plan import Parallel, Run, Sequence, Step


def dag(*edges: str, nodes: str = "") -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edge.split("->") for edge in edges)
    return graph


def plan_of(graph: nx.DiGraph) -> Step:
    return schedule(graph, {node: index for index, node in enumerate(sorted(graph))})


def tasks(step: Step) -> list[str]:
    if isinstance(step, Run):
        return [step.task]
    inner = step.steps if isinstance(step, Sequence) else step.branches
    return [task for item in inner for task in tasks(item)]


def before(step: Step) -> set[tuple[str, str]]:
    """Pairs (u, v) such that the schedule finishes u before it starts v: its semantics."""
    if isinstance(step, Run):
        return set()
    inner = step.steps if isinstance(step, Sequence) else step.branches
    pairs = set().union(*(before(item) for item in inner))
    if isinstance(step, Sequence):
        for earlier, later in itertools.combinations(inner, 2):
            pairs |= set(itertools.product(tasks(earlier), tasks(later)))
    return pairs


def reachable(graph: nx.DiGraph) -> set[tuple[str, str]]:
    return {(u, v) for u in graph for v in nx.descendants(graph, u)}


def assert_sound(graph: nx.DiGraph, step: Step) -> None:
    """Every stage exactly once, and every edge u->v: u finishes before v starts."""
    assert sorted(tasks(step)) == sorted(graph)
    assert set(graph.edges) <= before(step)


def test_single_stage() -> None:
    assert plan_of(dag(nodes="a")) == Run("a")


def test_chain() -> None:
    assert plan_of(dag("a->b", "b->c")) == Sequence((Run("a"), Run("b"), Run("c")))


def test_fan_in() -> None:
    assert plan_of(dag("a->c", "b->c")) == Sequence((Parallel((Run("a"), Run("b"))), Run("c")))


def test_fan_out() -> None:
    assert plan_of(dag("a->b", "a->c")) == Sequence((Run("a"), Parallel((Run("b"), Run("c")))))


def test_diamond() -> None:
    assert plan_of(dag("a->b", "a->c", "b->d", "c->d")) == Sequence(
        (Run("a"), Parallel((Run("b"), Run("c"))), Run("d"))
    )


def test_several_sources_and_sinks() -> None:
    # Two independent pipelines in one: a->b and c->d->e, plus a lone stage f.
    assert plan_of(dag("a->b", "c->d", "d->e", nodes="f")) == Parallel(
        (Sequence((Run("a"), Run("b"))), Sequence((Run("c"), Run("d"), Run("e"))), Run("f"))
    )


def test_uneven_branches_of_a_diamond() -> None:
    graph = dag("a->b", "b->c", "a->d", "c->e", "d->e")
    assert plan_of(graph) == Sequence((Run("a"), Parallel((Sequence((Run("b"), Run("c"))), Run("d"))), Run("e")))
    assert before(plan_of(graph)) == reachable(graph)


def test_n_graph_is_not_series_parallel_but_never_starts_early() -> None:
    graph = dag("a->c", "a->d", "b->d")
    step = plan_of(graph)
    assert_sound(graph, step)
    assert step == Sequence((Parallel((Run("a"), Run("b"))), Parallel((Run("c"), Run("d")))))


def test_deep_nesting_is_bounded() -> None:
    """A chain whose every stage also feeds a side stage would nest one Parallel per stage."""
    graph = nx.DiGraph()
    for index in range(300):
        graph.add_edge(f"a{index}", f"b{index}")
        if index:
            graph.add_edge(f"a{index - 1}", f"a{index}")
    step = plan_of(graph)
    assert_sound(graph, step)

    def depth(item: Step) -> int:
        if isinstance(item, Run):
            return 0
        inner = item.steps if isinstance(item, Sequence) else item.branches
        return 1 + max(depth(child) for child in inner)

    assert depth(step) <= MAX_DEPTH + 2


@st.composite
def random_dags(draw: st.DrawFn) -> nx.DiGraph:
    """Any DAG: nodes 0..n-1, edges only from a lower to a higher number."""
    size = draw(st.integers(min_value=1, max_value=14))
    graph = nx.DiGraph()
    graph.add_nodes_from(f"n{index:02d}" for index in range(size))
    pairs = [(u, v) for u in range(size) for v in range(u + 1, size)]
    for u, v in draw(st.lists(st.sampled_from(pairs), unique=True)) if pairs else []:
        graph.add_edge(f"n{u:02d}", f"n{v:02d}")
    return graph


@st.composite
def series_parallel_dags(draw: st.DrawFn, budget: int = 10) -> nx.DiGraph:
    """A series-parallel DAG built by composing smaller ones in series (all sinks -> all sources) or in parallel."""
    counter = itertools.count()

    def build(size: int) -> nx.DiGraph:
        if size == 1:
            graph = nx.DiGraph()
            graph.add_node(f"n{next(counter):02d}")
            return graph
        left = draw(st.integers(min_value=1, max_value=size - 1))
        first, second = build(left), build(size - left)
        joined = nx.union(first, second)
        if draw(st.booleans()):
            sinks = [n for n in first if first.out_degree(n) == 0]
            sources = [n for n in second if second.in_degree(n) == 0]
            joined.add_edges_from(itertools.product(sinks, sources))
        return joined

    return build(draw(st.integers(min_value=1, max_value=budget)))


@settings(max_examples=300, deadline=None)
@given(random_dags())
def test_random_dags_never_start_a_stage_before_its_inputs(graph: nx.DiGraph) -> None:
    assert_sound(graph, plan_of(graph))


@settings(max_examples=300, deadline=None)
@given(series_parallel_dags())
def test_series_parallel_dags_get_all_the_parallelism_they_allow(graph: nx.DiGraph) -> None:
    """The schedule orders exactly the pairs the DAG orders: no stage waits for one it does not depend on."""
    step = plan_of(graph)
    assert_sound(graph, step)
    assert before(step) == reachable(graph)
