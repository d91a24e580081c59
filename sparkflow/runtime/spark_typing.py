"""Spark's result types for the expressions of a query sqlframe generates, as Spark 4 gives them (ANSI mode, decimal
arithmetic that may lose precision: ``spark.sql.decimalOperations.allowPrecisionLoss``, the default).

The query comes typed by sqlglot (:func:`sparkflow.runtime.duckdb_semantics.typed_copy`): its columns have the types
of what the query reads, which are Spark's; sqlglot's types of computed expressions are not (a sum of a
``DECIMAL(15, 2)`` is typed ``DECIMAL(15, 2)``; Spark's is ``DECIMAL(25, 2)``). :class:`SparkTypes` computes
Spark's type of an expression from its operands' Spark types, following a column of one of the query's CTEs to the
expression that defines it. An expression it has no rule for has sqlglot's type; an operand of unknown type gives
an unknown (None) result, so that no rule is applied on a guess.

The rules, from Spark's ``DecimalPrecision``, ``Sum``, ``Average`` and ``TypeCoercion``:

* ``+``, ``-``, ``*``, ``/`` and ``%`` of decimals: :mod:`sparkflow.runtime.spark_decimals`. An integer operand
  counts as ``DECIMAL(10, 0)`` (INT), ``(20, 0)`` (BIGINT), ``(5, 0)`` (SMALLINT), ``(3, 0)`` (TINYINT); a DOUBLE or
  FLOAT operand makes the result DOUBLE (FLOAT with FLOAT).
* ``/`` of integers is DOUBLE; ``+``, ``-``, ``*`` of integers the wider integer.
* ``sum``: a decimal ``(p, s)`` gives ``(min(38, p + 10), s)``, any integer BIGINT, DOUBLE or FLOAT DOUBLE;
  ``avg``: a decimal gives ``(min(38, p + 4), min(38, s + 4))``, anything else DOUBLE.
* ``year``, ``month``, ``dayofmonth`` and the other date parts, ``length``, ``instr``, ``datediff``, ``size``,
  ``row_number``, ``rank``, ``dense_rank``: INT; ``count``: BIGINT.
* a literal number: INT (BIGINT beyond INT's range) without a point, DOUBLE with one (a Python float in
  ``F.lit`` or an operand; a decimal literal in ``F.expr`` text is DECIMAL on Spark: see docs/engines.md).
* ``CASE`` / ``coalesce`` / ``if``: the wider of their branches (decimals: the integer digits and scale of both).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from sparkflow.runtime import spark_decimals

T = exp.DataType.Type
_INTEGERS = {T.TINYINT: 3, T.SMALLINT: 5, T.INT: 10, T.BIGINT: 20}
_INTEGER_ORDER = (T.TINYINT, T.SMALLINT, T.INT, T.BIGINT)
_FLOATS = (T.FLOAT, T.DOUBLE)
_OPERATORS: dict[type[exp.Expr], spark_decimals.Operator] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}

#: Spark functions whose result is an INT (DuckDB's are BIGINT), by sqlglot node class or anonymous function name.
INT_RESULTS: tuple[type[exp.Expr], ...] = (
    exp.Year,
    exp.Month,
    exp.Quarter,
    exp.Day,
    exp.DayOfMonth,
    exp.DayOfWeek,
    exp.DayOfYear,
    exp.WeekOfYear,
    exp.Hour,
    exp.Minute,
    exp.Second,
    exp.Length,
    exp.StrPosition,
    exp.DateDiff,
    exp.ArraySize,
)
INT_RESULT_NAMES = ("ROW_NUMBER", "RANK", "DENSE_RANK", "QUARTER")


def build(kind: Any) -> exp.DataType:
    return exp.DataType.build(kind)


def decimal(precision: int, scale: int) -> exp.DataType:
    return exp.DataType.build(f"DECIMAL({precision}, {scale})")


def decimal_of(kind: exp.DataType | None) -> tuple[int, int] | None:
    """``(precision, scale)`` of a decimal type, or of the decimal an integer type widens to; None otherwise."""
    if kind is None:
        return None
    if kind.this in _INTEGERS:
        return _INTEGERS[kind.this], 0
    if kind.this != T.DECIMAL:
        return None
    params = [int(param.this.this) for param in kind.expressions]
    if not params:
        return None  # an unbounded DECIMAL: not a type Spark gives
    return params[0], params[1] if len(params) > 1 else 0


def is_decimal(kind: exp.DataType | None) -> bool:
    return kind is not None and kind.this == T.DECIMAL and bool(kind.expressions)


def bounded(precision: int, scale: int) -> exp.DataType:
    return decimal(*spark_decimals.bounded(precision, scale))


def arithmetic(operator: type[exp.Expr], left: exp.DataType | None, right: exp.DataType | None) -> exp.DataType | None:
    """Spark's type of ``left <operator> right`` (None when an operand's type is unknown or not a number)."""
    if left is None or right is None:
        return None
    numeric = (*_INTEGERS, *_FLOATS, T.DECIMAL)
    if left.this not in numeric or right.this not in numeric:
        return None
    if left.this in _FLOATS or right.this in _FLOATS:
        both_float = left.this == T.FLOAT and right.this == T.FLOAT
        return build(T.FLOAT if both_float else T.DOUBLE)
    if left.this in _INTEGERS and right.this in _INTEGERS:
        if operator is exp.Div:
            return build(T.DOUBLE)
        return build(max(left.this, right.this, key=_INTEGER_ORDER.index))
    left_decimal, right_decimal = decimal_of(left), decimal_of(right)
    if left_decimal is None or right_decimal is None:
        return None
    symbol = _OPERATORS.get(operator)
    return None if symbol is None else decimal(*spark_decimals.arithmetic(symbol, left_decimal, right_decimal))


def wider(kinds: list[exp.DataType | None]) -> exp.DataType | None:
    """The type Spark gives a CASE / coalesce of branches of these types (None: unknown, or not all numbers)."""
    if any(kind is None for kind in kinds):
        return None
    known = [kind for kind in kinds if kind is not None and kind.this != T.NULL]
    if not known:
        return None
    first = known[0]
    if all(kind == first for kind in known):
        return first
    if any(kind.this == T.DOUBLE for kind in known):
        return build(T.DOUBLE)
    if any(kind.this == T.FLOAT for kind in known):
        return build(T.DOUBLE) if any(is_decimal(kind) for kind in known) else build(T.FLOAT)
    if all(kind.this in _INTEGERS for kind in known):
        return build(max((kind.this for kind in known), key=_INTEGER_ORDER.index))
    decimals = [decimal_of(kind) for kind in known]
    if any(item is None for item in decimals):
        return None
    scale = max(item[1] for item in decimals if item is not None)
    digits = max(item[0] - item[1] for item in decimals if item is not None)
    return bounded(digits + scale, scale)


class SparkTypes:
    """Spark's types of the expressions of one typed query (see the module docs); memoised per node."""

    def __init__(self, typed: exp.Expr) -> None:
        self._memo: dict[int, exp.DataType | None] = {}
        self._ctes: dict[str, exp.Select] = {}
        for cte in typed.find_all(exp.CTE):
            if isinstance(cte.this, exp.Select):
                self._ctes[cte.alias_or_name] = cte.this

    def of(self, node: exp.Expr) -> exp.DataType | None:
        key = id(node)
        if key not in self._memo:
            self._memo[key] = None  # a cycle (it cannot happen in a query) stays unknown
            self._memo[key] = self._compute(node)
        return self._memo[key]

    def _compute(self, node: exp.Expr) -> exp.DataType | None:
        if isinstance(node, exp.Alias | exp.Paren):
            return self.of(node.this)
        if isinstance(node, exp.Column):
            return self._column(node)
        if isinstance(node, exp.Literal):
            return _literal(node)
        if isinstance(node, exp.Cast | exp.TryCast):
            return node.to
        if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
            return arithmetic(type(node), self.of(node.this), self.of(node.expression))
        if isinstance(node, exp.Neg):
            return self.of(node.this)
        if isinstance(node, exp.Sum):
            return sum_type(self.of(node.this))
        if isinstance(node, exp.Avg):
            return average_type(self.of(node.this))
        if isinstance(node, exp.Count):
            return build(T.BIGINT)
        if isinstance(node, exp.Min | exp.Max | exp.First | exp.Last | exp.AnyValue):
            return self.of(node.this)
        if isinstance(node, exp.Window):
            return self.of(node.this)
        if isinstance(node, exp.Case):
            branches = [self.of(item.args["true"]) for item in node.args.get("ifs", [])]
            default = node.args.get("default")
            return wider([*branches, self.of(default) if default is not None else build(T.NULL)])
        if isinstance(node, exp.If):
            false = node.args.get("false")
            return wider([self.of(node.args["true"]), self.of(false) if false is not None else build(T.NULL)])
        if isinstance(node, exp.Coalesce):
            return wider([self.of(node.this), *(self.of(item) for item in node.expressions)])
        if isinstance(node, INT_RESULTS) or (
            isinstance(node, exp.Anonymous) and str(node.this).upper() in INT_RESULT_NAMES
        ):
            return build(T.INT)
        if isinstance(node, exp.Null):
            return build(T.NULL)
        kind = node.type
        return None if kind is None or kind.this == T.UNKNOWN else kind

    def _column(self, column: exp.Column) -> exp.DataType | None:
        select = self._ctes.get(column.table)
        if select is not None:
            for projection in select.expressions:
                if projection.alias_or_name == column.name:
                    return self.of(projection)
        kind = column.type
        return None if kind is None or kind.this == T.UNKNOWN else kind


def _literal(node: exp.Literal) -> exp.DataType | None:
    if node.is_string:
        return build(T.VARCHAR)
    text = node.this
    if any(mark in text for mark in ".eE"):
        return build(T.DOUBLE)
    try:
        value = int(text)
    except ValueError:
        return None
    return build(T.INT if -(2**31) <= value < 2**31 else T.BIGINT)


def sum_type(kind: exp.DataType | None) -> exp.DataType | None:
    """Spark's type of ``sum`` of a ``kind``."""
    if kind is None:
        return None
    if kind.this in _INTEGERS:
        return build(T.BIGINT)
    if kind.this in _FLOATS:
        return build(T.DOUBLE)
    found = decimal_of(kind) if is_decimal(kind) else None
    return None if found is None else decimal(*spark_decimals.summed(found))


def average_type(kind: exp.DataType | None) -> exp.DataType | None:
    """Spark's type of ``avg`` of a ``kind``."""
    if kind is None:
        return None
    if kind.this in _INTEGERS or kind.this in _FLOATS:
        return build(T.DOUBLE)
    found = decimal_of(kind) if is_decimal(kind) else None
    return None if found is None else decimal(*spark_decimals.averaged(found))
