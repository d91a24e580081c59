"""What running an entry on an engine produced, as plain data: no engine's classes, so an outcome crosses from a
worker process to the runner (pickled) and compares with another engine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: What an example's result was:
#: ``frame``: a DataFrame (its column types and collected rows);
#: ``schema``: a schema (``df.schema``, ``df.printSchema()``): its column types;
#: ``rows``: Rows or a list of Rows (``collect()``, ``head()``, ``first()``): their values;
#: ``value``: any other plain value (a count, a list of names, a string);
#: ``column``: a Column, compared by kind only (its text is each engine's own);
#: ``object``: any other object (a GroupedData, a plan), compared by kind only;
#: ``raised``: the example raised, as its documentation shows it raising (the exception's class).
Kind = Literal["frame", "schema", "rows", "value", "column", "object", "raised"]


@dataclass(frozen=True)
class Result:
    """One result of one example.

    Attributes:
        line: the example's line in the pyspark file.
        source: the example's first line (for reasons).
        kind: what the result was (see :data:`Kind`).
        types: a frame's or a schema's column types (Spark's ``simpleString``, without spaces after commas).
        names: a frame's or a schema's column names (shown, not compared: see docs/engines.md).
        rows: a frame's or Rows' values, each row a tuple of plain Python values.
        ordered: whether the rows are compared in order (the example sorts them), not as a multiset.
        value: a ``value``'s plain value; an ``object``'s or ``raised``'s class name.
    """

    line: int
    source: str
    kind: Kind
    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    ordered: bool = False
    value: Any = None


@dataclass(frozen=True)
class Outcome:
    """An entry's run on one engine.

    Attributes:
        results: its examples' results, in order.
        failures: (line, ``Type: message``) of each example that raised where its documentation shows no error.
        timed_out: the entry ran past its time bound (the examples after the one running then did not run).
        problem: why the entry did not run at all (its worker failed), or ''.
    """

    entry: str
    results: tuple[Result, ...] = ()
    failures: tuple[tuple[int, str], ...] = ()
    timed_out: bool = False
    seconds: float = 0.0
    problem: str = ""
