"""What giving Sail Spark's semantics costs a query (:mod:`sparkflow.runtime.sail_semantics`): the same queries in one
process on the sail engine, with the rewrite and (``--without``) without it; prints each query's mean seconds.

* ``rewritten``: an aggregate mixing a grouping expression, a rounded sum of doubles and a decimal average, whose
  argument types take the most AnalyzePlan calls (an aggregate's arguments tried together, then one by one);
* ``untouched``: the warm-invocation stage's ``groupBy().agg(F.sum(...))``, which has no call to rewrite.

    .venv/bin/python bench/sail_rewrite_cost.py [--without] [--runs 20]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without", action="store_true", help="Sail's own semantics: no rewrite")
    parser.add_argument("--runs", type=int, default=20)
    arguments = parser.parse_args()

    from sparkflow.runtime import engines

    engines.prepare("sail")
    from sparkflow.runtime import sail_engine, sail_semantics

    if arguments.without:
        sail_semantics.install = lambda session: None
    session = sail_engine.session(1024)
    from pyspark.sql import functions as F

    frame = session.createDataFrame([(1.5, "2.00"), (2.5, "3.00")], "x DOUBLE, d STRING")
    frame = frame.withColumn("d", F.col("d").cast("decimal(10,2)"))

    def rewritten() -> Any:
        grouped = frame.groupBy((F.col("x") * 2).alias("k"))
        return grouped.agg(F.round(F.sum("x"), 2).alias("r"), F.avg("d").alias("a")).collect()

    def untouched() -> Any:
        return frame.groupBy("x").agg(F.sum("x").alias("total")).collect()

    queries: list[Callable[[], Any]] = [rewritten, untouched]
    for query in queries:
        query()  # the first call of a kind pays the server's own warm-up
        started = time.perf_counter()
        for _ in range(arguments.runs):
            query()
        print(f"{query.__name__}: {(time.perf_counter() - started) / arguments.runs:.4f} s per query")


if __name__ == "__main__":
    main()
