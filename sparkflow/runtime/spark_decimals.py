"""Spark's decimal result types, as ``(precision, scale)`` pairs: the rules of Spark 4's ``DecimalPrecision``,
``Sum``, ``Average`` and ``Round`` (ANSI mode; ``spark.sql.decimalOperations.allowPrecisionLoss``, the default).

Both engines' semantics layers read them: :mod:`sparkflow.runtime.spark_typing` (DuckDB, over sqlglot's types) and
:mod:`sparkflow.runtime.sail_semantics` (Sail, over PySpark's). No third-party import: the Sail engine's processes
import it on their first query.

* ``+`` and ``-`` of ``(p1, s1)`` and ``(p2, s2)``: scale ``max(s1, s2)``, precision ``max(p1 - s1, p2 - s2) +
  scale + 1``; ``*``: ``(p1 + p2 + 1, s1 + s2)``; ``/``: scale ``max(6, s1 + p2 + 1)``, precision ``p1 - s1 + s2 +
  scale``; ``%``: scale ``max(s1, s2)``, precision ``min(p1 - s1, p2 - s2) + scale``. A precision over 38 is cut to
  38, keeping the integer digits and at least ``min(scale, 6)`` of the scale (:func:`adjusted`).
* An integer operand counts as ``(3, 0)`` (TINYINT), ``(5, 0)`` (SMALLINT), ``(10, 0)`` (INT), ``(20, 0)``
  (BIGINT); an integer *literal* beside a decimal as just its digits (``100`` is ``(3, 0)``: Spark's
  ``spark.sql.legacy.literal.pickMinimumPrecision``, on by default).
* ``sum`` of ``(p, s)``: ``(min(38, p + 10), s)``; ``avg``: ``(min(38, p + 4), min(38, s + 4))``.
* ``round`` / ``bround`` of ``(p, s)`` to ``d`` places: ``(min(38, p - s + 1 + min(s, d)), min(s, d))``; to a
  negative ``d``: ``(min(38, max(p - s + 1, 1 - d)), 0)``.
"""

from __future__ import annotations

from typing import Literal

#: A decimal type: ``(precision, scale)``.
Decimal = tuple[int, int]
Operator = Literal["+", "-", "*", "/", "%"]

MAX_PRECISION = 38
MINIMUM_ADJUSTED_SCALE = 6
#: The decimal each integer type widens to beside a decimal, by PySpark's type name (``simpleString``).
INTEGERS: dict[str, Decimal] = {"tinyint": (3, 0), "smallint": (5, 0), "int": (10, 0), "bigint": (20, 0)}


def adjusted(precision: int, scale: int) -> Decimal:
    """Spark's ``DecimalType.adjustPrecisionScale``: a precision over 38 keeps the integer digits, cutting the scale
    down to no less than ``min(scale, 6)``."""
    if precision <= MAX_PRECISION:
        return precision, scale
    integer_digits = precision - scale
    minimum = min(scale, MINIMUM_ADJUSTED_SCALE)
    return MAX_PRECISION, max(MAX_PRECISION - integer_digits, minimum)


def bounded(precision: int, scale: int) -> Decimal:
    return min(precision, MAX_PRECISION), min(scale, MAX_PRECISION)


def arithmetic(operator: Operator, left: Decimal, right: Decimal) -> Decimal:
    """Spark's type of ``left <operator> right``, both decimals (an integer operand as its decimal)."""
    (p1, s1), (p2, s2) = left, right
    if operator in ("+", "-"):
        scale = max(s1, s2)
        return adjusted(max(p1 - s1, p2 - s2) + scale + 1, scale)
    if operator == "*":
        return adjusted(p1 + p2 + 1, s1 + s2)
    if operator == "/":
        scale = max(MINIMUM_ADJUSTED_SCALE, s1 + p2 + 1)
        return adjusted(p1 - s1 + s2 + scale, scale)
    scale = max(s1, s2)
    return adjusted(min(p1 - s1, p2 - s2) + scale, scale)


def literal(value: int) -> Decimal:
    """The decimal an integer literal counts as beside a decimal: its digits (Spark's ``DecimalType.fromLiteral``)."""
    return max(len(str(abs(value))), 1), 0


def summed(kind: Decimal) -> Decimal:
    """Spark's type of ``sum`` of a decimal."""
    return bounded(kind[0] + 10, kind[1])


def averaged(kind: Decimal) -> Decimal:
    """Spark's type of ``avg`` of a decimal."""
    return bounded(kind[0] + 4, kind[1] + 4)


def rounded(kind: Decimal, places: int) -> Decimal:
    """Spark's type of ``round`` / ``bround`` of a decimal to ``places``."""
    precision, scale = kind
    integer_digits = precision - scale + 1  # rounding may carry into one more digit: round(9.9) = 10
    if places < 0:
        return min(max(integer_digits, 1 - places), MAX_PRECISION), 0
    kept = min(scale, places)
    return min(integer_digits + kept, MAX_PRECISION), kept
