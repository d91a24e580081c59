"""An entry's class on an engine: its outcome against Spark's, result by result.

Results compare as sparkflow's differential oracle compares outputs (:mod:`sparkflow.rowsets`): values exactly after
the oracle's stated normalisations, floats within a relative 1e-9, rows as a multiset (in order when the example
sorts them); and column types as Spark's type strings. Column names are not compared: an unnamed column's name is
each engine's own (docs/engines.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sparkflow.rowsets import canonical, canonical_row, close, difference
from tests.conformance.results import Outcome, Result

Class = Literal["equal", "types differ", "values differ", "unsupported", "not run on spark"]
#: Every class, best first; ``not run on spark`` entries are left out of the counts.
CLASSES: tuple[Class, ...] = ("equal", "types differ", "values differ", "unsupported", "not run on spark")
_RANK = {"equal": 0, "types differ": 1, "values differ": 2}
_NOUNS = {
    "frame": "a DataFrame",
    "schema": "a schema",
    "rows": "Rows",
    "value": "a value",
    "column": "a Column",
    "object": "an object",
    "raised": "an error",
}
_SHOWN = 160  # characters of a value shown in a reason


@dataclass(frozen=True)
class Verdict:
    """An entry's class on an engine, and why (the first result that differs, or the failure).

    Attributes:
        partial: the first of the entry's examples that Spark cannot run here, when it ran others (the entry is
            classed on those); ''.
    """

    klass: Class
    reason: str = ""
    partial: str = ""


def classify(reference: Outcome, found: Outcome, engine: str) -> Verdict:
    """``found`` (the entry on ``engine``) against ``reference`` (the entry on Spark), on the examples Spark ran."""
    if not spark_ran(reference):
        return Verdict("not run on spark", _failed(reference) or _failure(reference.failures[0]))
    skipped = {line for line, _ in reference.failures}
    expected = [result for result in reference.results if result.line not in skipped]
    partial = _failure(reference.failures[0]) if reference.failures else ""
    if found.timed_out or found.problem:
        return Verdict("unsupported", _failed(found), partial)
    failures = [failure for failure in found.failures if failure[0] not in skipped]
    if failures:
        return Verdict("unsupported", _failure(failures[0]), partial)
    got = [result for result in found.results if result.line not in skipped]
    verdict = Verdict("equal", partial=partial)
    for line in sorted({result.line for result in expected + got}):
        mine = [result for result in expected if result.line == line]
        theirs = [result for result in got if result.line == line]
        current = Verdict("values differ", f"line {line}: Spark gives {len(mine)} results, {engine} {len(theirs)}")
        if len(mine) == len(theirs):
            current = max((compare(left, right, engine) for left, right in zip(mine, theirs, strict=True)), key=_rank)
        if _rank(current) > _rank(verdict):
            verdict = Verdict(current.klass, current.reason, partial)
    return verdict


def spark_ran(reference: Outcome) -> bool:
    """Whether Spark ran the entry here, or some of its examples, with a result (the others need to run it only
    then): not when it timed out, its worker failed, or every example with a result failed."""
    if reference.timed_out or reference.problem:
        return False
    skipped = {line for line, _ in reference.failures}
    return not skipped or any(result.line not in skipped for result in reference.results)


def _rank(verdict: Verdict) -> int:
    return _RANK[verdict.klass]


def _failure(failure: tuple[int, str]) -> str:
    return f"line {failure[0]}: {failure[1]}"


def _failed(outcome: Outcome) -> str:
    return "timed out" if outcome.timed_out else outcome.problem


def compare(expected: Result, got: Result, engine: str) -> Verdict:
    """One result on ``engine`` against Spark's."""
    where = f"line {expected.line} {_code(expected.source)}"
    if expected.kind == "raised" or got.kind == "raised":
        if expected.kind == got.kind:
            return Verdict("equal")
        spark = f"raises {expected.value}" if expected.kind == "raised" else "answers"
        other = f"raises {got.value}" if got.kind == "raised" else "answers"
        return Verdict("values differ", f"{where}: Spark {spark}, {engine} {other}")
    if expected.kind != got.kind:
        return Verdict("values differ", f"{where}: Spark gives {_NOUNS[expected.kind]}, {engine} {_NOUNS[got.kind]}")
    if expected.kind in ("frame", "rows"):
        values = _rows(expected, got, engine)
        if values:
            return Verdict("values differ", f"{where}: {values}")
    if expected.kind == "value" and not close(canonical(expected.value), canonical(got.value)):
        return Verdict("values differ", f"{where}: Spark {_show(expected.value)}, {engine} {_show(got.value)}")
    if expected.kind in ("frame", "schema") and expected.types != got.types:
        return Verdict("types differ", f"{where}: {_types(expected, got, engine)}")
    return Verdict("equal")


def _rows(expected: Result, got: Result, engine: str) -> str:
    """How ``got``'s rows differ from ``expected``'s, or ''."""
    found = difference(list(expected.rows), list(got.rows))
    if found:
        if not found.missing or not found.extra:
            return f"Spark has {found.expected_rows} rows, {engine} {found.found_rows}"
        return f"Spark {_show(found.missing[0])}, {engine} {_show(found.extra[0])}"
    if expected.ordered:
        for index, (left, right) in enumerate(zip(expected.rows, got.rows, strict=True)):
            if not close(canonical_row(left), canonical_row(right)):
                return f"the rows in another order (row {index + 1}: Spark {_show(left)}, {engine} {_show(right)})"
    return ""


def _types(expected: Result, got: Result, engine: str) -> str:
    if len(expected.types) != len(got.types):
        return f"Spark has {len(expected.types)} columns, {engine} {len(got.types)}"
    for index, (left, right) in enumerate(zip(expected.types, got.types, strict=True)):
        if left != right:
            name = expected.names[index] if index < len(expected.names) else str(index + 1)
            return f"column `{name}`: Spark {left}, {engine} {right}"
    return ""


def _code(text: str) -> str:
    """``text`` as Markdown inline code (between double backticks when it holds one)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
