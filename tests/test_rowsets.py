"""Comparing outputs as multisets of rows (sparkflow.rowsets): a planted difference is always found, and only the
stated normalisations are forgiven."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sparkflow.rowsets import Row, canonical, difference

COLUMNS = ("k", "rows", "total", "day")
EXPECTED: list[Row] = [
    ("a", 3, 10.5, dt.date(2024, 1, 2)),
    ("b", 1, 0.1 + 0.2, dt.date(2024, 1, 3)),
    (None, 2, None, None),
    ("c", 2, 7.0, dt.date(2024, 1, 4)),
    ("c", 2, 7.0, dt.date(2024, 1, 4)),  # the same row twice: a multiset
]


@pytest.mark.parametrize(
    ("planted", "found"),
    [
        ("a lost row", EXPECTED[:-1]),
        ("a lost null row", [row for row in EXPECTED if row[0] is not None]),
        ("a duplicated row", [*EXPECTED, EXPECTED[0]]),
        ("a value changed beyond the tolerance", [("a", 3, 10.5 * (1 + 1e-8), dt.date(2024, 1, 2)), *EXPECTED[1:]]),
        ("an int changed", [("a", 4, 10.5, dt.date(2024, 1, 2)), *EXPECTED[1:]]),
        ("a null that became a value", [*EXPECTED[:2], (None, 2, 0.0, None), *EXPECTED[3:]]),
        ("a date moved", [*EXPECTED[:3], ("c", 2, 7.0, dt.date(2024, 1, 5)), EXPECTED[4]]),
        ("a row replaced by a copy of another", [*EXPECTED[:4], EXPECTED[0]]),
        ("a boolean for an int", [("a", True, 10.5, dt.date(2024, 1, 2)), *EXPECTED[1:]]),
    ],
)
def test_a_planted_difference_is_detected(planted: str, found: list[Row]) -> None:
    assert difference(EXPECTED, found, COLUMNS, COLUMNS), planted


def test_differences_within_the_stated_normalisations_are_not_reported() -> None:
    found: list[Row] = [
        ("c", 2.0, Decimal("7.0"), dt.date(2024, 1, 4)),  # DuckDB's DOUBLE sums, a Decimal
        ("b", 1, 0.3, dt.date(2024, 1, 3)),  # 0.1 + 0.2 != 0.3, within 1e-9 relative
        ("a", 3, 10.5 * (1 + 1e-10), dt.date(2024, 1, 2)),
        (None, 2, None, None),
        ("c", 2, 7, dt.date(2024, 1, 4)),
    ]
    assert not difference(EXPECTED, found, COLUMNS, COLUMNS)
    assert canonical(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert canonical(dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == dt.datetime(
        2024, 1, 2, 3, 4, 5
    )
    assert canonical(float("nan")) == canonical(float("nan"))
    assert canonical(True) != canonical(1) and canonical(dt.date(2024, 1, 2)) != canonical(dt.datetime(2024, 1, 2))
    assert not difference([(1e-13,)], [(0.0,)])  # within the absolute tolerance of 1e-12
    assert difference([(1e-11,)], [(0.0,)])
    assert difference([(0.5,)], [("0.5",)])  # a number never equals its text
