"""Engine choice: decide the engine of each stage that says ``engine="auto"`` (itself or through its pipeline).

The rule, decided here at compile time from what is known, and shown by ``sparkflow plan`` and ``sparkflow graph``:

* a stage that asks for serverless Spark runs on Spark (the engine of clusters), and so does one the place pass,
  which runs next, finds too big for any function or container;
* otherwise the first engine of :data:`sparkflow.engines.AUTO_CANDIDATES` (Sail) unless the stage's code uses an
  API where that engine does not give Spark's answer — by the conformance suite's measurement of it
  (``make conformance``: PySpark's own documentation examples run on every engine against Spark, written to
  ``sparkflow/engine_differences.json``) — or its source cannot be read;
* else Spark.

The code is read, not run (:mod:`sparkflow.compiler.apis`): a stage that uses ``F.round`` goes to Spark, because Sail
rounds doubles otherwise. ``sparkflow verify`` then compares every stage that left Spark with Spark on the user's
sample.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from importlib import resources

import networkx as nx

from sparkflow.compiler.apis import uses
from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import StageNode, replace_node, stage_nodes
from sparkflow.engines import AUTO, AUTO_CANDIDATES, DEFAULT

SERVERLESS_SPARK = "serverless-spark"
SERVERLESS_SPARK_RUNS_SPARK = "serverless Spark runs Spark"


def choose_engine(graph: nx.DiGraph, context: Context) -> nx.DiGraph:
    for item in stage_nodes(graph):
        if item.options.engine == AUTO:
            engine, why = _choose(item)
            replace_node(graph, replace(item, options=replace(item.options, engine=engine), engine_choice=why))
    return graph


def _choose(item: StageNode) -> tuple[str, str]:
    """The engine of an ``auto`` stage and why, in a few words."""
    if item.options.placement == SERVERLESS_SPARK:
        return DEFAULT, SERVERLESS_SPARK_RUNS_SPARK
    found = uses(item.function)
    if not found.known:
        return DEFAULT, "its source cannot be read"
    reason = "no engine is a candidate"
    for candidate in AUTO_CANDIDATES:
        touched = sorted(api for api in differences(candidate) if found.touches(api))
        if not touched:
            return candidate, f"uses no API where {candidate} differs from Spark"
        shown = ", ".join(touched[:3]) + (f" and {len(touched) - 3} more" if len(touched) > 3 else "")
        reason = f"uses {shown}, where {candidate} differs from Spark"
    return DEFAULT, reason


@cache
def differences(engine: str) -> dict[str, str]:
    """The APIs where ``engine`` does not give Spark's answer (API -> class: ``values differ``, ``types differ``,
    ``unsupported``), as the conformance suite measured them."""
    text = resources.files("sparkflow").joinpath("engine_differences.json").read_text(encoding="utf-8")
    found: dict[str, str] = json.loads(text).get(engine, {})
    return found
