"""Comparing two outputs as multisets of rows, with stated normalisations only (``sparkflow verify`` and the
differential oracle, tests/oracle/, compare this way).

A value is first put in canonical form (:func:`canonical`):

* an integral float is the int of the same value (``3.0 == 3``: two runs may type a whole number differently),
  below 2**53 where floats are exact; NaN is one value equal to itself;
* a Decimal is the float of its value;
* a timestamp is compared by its instant: a timezone-aware one is converted to UTC and made naive; a naive one is
  taken as UTC (the runtime's and the reference's session time zone is UTC); a date is a date (never equal to a
  timestamp);
* a boolean stays a boolean (never equal to 0 or 1); strings, ints and None are themselves; lists and structs are
  compared element by element, maps as sets of entries.

Rows are then compared as multisets: equal canonical rows pair off exactly; each remaining expected row pairs with a
remaining found row that is equal except for floats within the tolerance (relative 1e-9, absolute 1e-12, as
``math.isclose``), the closest first. Rows left over on either side are the difference. Nothing is stringified and
nothing is rounded, so a lost, duplicated or changed row always remains in the difference.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

REL_TOLERANCE = 1e-9
ABS_TOLERANCE = 1e-12
_EXACT_FLOATS = 2**53

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Flag:
    """A canonical boolean: unequal to the ints 0 and 1 (which Python's ``True == 1`` would not be)."""

    value: bool

    def __repr__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class NaN:
    """The canonical NaN: equal to itself, so a NaN in both outputs pairs off."""

    def __repr__(self) -> str:
        return "NaN"


def canonical(value: Any) -> Any:
    """``value`` in the form outputs are compared in (see the module docs)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return Flag(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        if math.isnan(value):
            return NaN()
        if value.is_integer() and abs(value) < _EXACT_FLOATS:
            return int(value)
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date | dt.time | dt.timedelta | bytes):
        return value
    if isinstance(value, dict):
        return frozenset((canonical(key), canonical(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return tuple(canonical(item) for item in value)
    raise TypeError(f"no canonical form for {type(value).__name__} {value!r}")


def canonical_row(row: Row) -> Row:
    return tuple(canonical(value) for value in row)


def close(left: Any, right: Any) -> bool:
    """Canonical values equal, with floats (and ints against floats) within the tolerance."""
    if isinstance(left, tuple) and isinstance(right, tuple):
        return len(left) == len(right) and all(close(a, b) for a, b in zip(left, right, strict=True))
    if _number(left) and _number(right):
        return math.isclose(float(left), float(right), rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE)
    return bool(left == right)


def distance(left: Row, right: Row) -> float:
    """How far apart two rows that are :func:`close` are (the sum of their float differences)."""
    total = 0.0
    for a, b in zip(left, right, strict=True):
        if _number(a) and _number(b):
            total += abs(float(a) - float(b))
        elif isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
            total += distance(a, b)
    return total


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Difference:
    """Rows of the expected output that the found one lacks (``missing``) and rows of the found output the expected
    one lacks (``extra``), canonical, each a multiset; and column names, if they differ."""

    missing: tuple[Row, ...]
    extra: tuple[Row, ...]
    expected_columns: tuple[str, ...]
    found_columns: tuple[str, ...]
    expected_rows: int
    found_rows: int

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.expected_columns != self.found_columns)

    def describe(self, shown: int = 5) -> str:
        lines = [f"expected {self.expected_rows} rows, found {self.found_rows}"]
        if self.expected_columns != self.found_columns:
            lines.append(f"columns: expected {list(self.expected_columns)}, found {list(self.found_columns)}")
        for label, rows in (("missing (in the reference only)", self.missing), ("extra (in the run only)", self.extra)):
            if rows:
                lines.append(f"{len(rows)} {label}:")
                lines += [f"  {row!r}" for row in rows[:shown]]
                if len(rows) > shown:
                    lines.append(f"  ... and {len(rows) - shown} more")
        return "\n".join(lines)


def difference(
    expected: list[Row],
    found: list[Row],
    expected_columns: tuple[str, ...] = (),
    found_columns: tuple[str, ...] = (),
) -> Difference:
    """The multiset difference of two row lists under the normalisations and tolerance of the module docs."""
    want = Counter(canonical_row(row) for row in expected)
    got = Counter(canonical_row(row) for row in found)
    missing, extra = want - got, got - want
    left = sorted(missing.elements(), key=repr)
    right = sorted(extra.elements(), key=repr)
    unmatched: list[Row] = []
    for row in left:
        twins = [index for index, other in enumerate(right) if close(row, other)]
        if not twins:
            unmatched.append(row)
            continue
        nearest = min(twins, key=lambda index: distance(row, right[index]))
        right.pop(nearest)
    return Difference(
        tuple(unmatched), tuple(right), tuple(expected_columns), tuple(found_columns), len(expected), len(found)
    )
