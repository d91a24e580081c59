"""Spark's result types and values, applied to the SQL sqlframe generates for a DataFrame on DuckDB.

sqlframe turns a stage's PySpark DataFrame code into one SQL query for DuckDB. For most functions that query means
what the code means on Spark, but DuckDB types many results otherwise (a sum of a ``DECIMAL(15, 2)`` is
``DECIMAL(38, 2)`` on DuckDB and ``DECIMAL(25, 2)`` on Spark, an average of decimals DOUBLE, ``year()`` BIGINT) and
rounds some values otherwise. A reader with a strict schema (a Delta table, a warehouse load) would see a stage's
output change type when the stage moves between engines. So each call below is rewritten to Spark's type and value:

* ``sum``, and ``+``, ``-``, ``*``, ``%`` with a decimal result: cast to Spark's type (DuckDB's value is exact);
* ``/`` with a decimal result, and ``avg`` of a decimal: computed exactly with 128-bit integers and rounded half up
  to Spark's scale, as Spark does (DuckDB divides decimals in floating point);
* arithmetic whose Spark result is DOUBLE: its operands cast to DOUBLE first, as Spark does (a Python float operand
  is a DOUBLE on Spark and a decimal literal on DuckDB);
* ``sum`` of integers: BIGINT (DuckDB's is a 128-bit integer); date parts, ``length``, ``instr``, ``datediff``,
  ``size``, ``row_number``, ``rank``, ``dense_rank``: INT (DuckDB's are BIGINT);
* ``round`` of a DOUBLE or FLOAT: Spark's rounding of the value's shortest decimal form;
* a cast of a decimal or floating-point number to an integer: the fraction dropped (DuckDB rounds).

Spark's types come from :class:`sparkflow.runtime.spark_typing.SparkTypes` over a copy of the query that sqlglot
typed (sqlframe's catalog knows the schema of everything the query reads), the way sqlframe itself types map
lookups. Every rule is listed, with its test, in docs/engines.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from sqlglot import exp

from sparkflow.runtime.spark_typing import (
    INT_RESULT_NAMES,
    INT_RESULTS,
    SparkTypes,
    arithmetic,
    decimal_of,
    is_decimal,
    sum_type,
)

_MARK = "_sparkflow_spark_semantics"
_FLOATING = (exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
_INTEGRAL = (exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT, exp.DataType.Type.BIGINT)
#: The unscaled value of a COUNT as Spark divides by it: a BIGINT as a decimal.
_COUNT_DECIMAL = (20, 0)

# (call, its typed copy, Spark's types, what the rewrite replaces) -> the replacement, or None to leave it
Rule = Callable[[exp.Expr, exp.Expr, SparkTypes, exp.Expr], exp.Expr | None]


def install() -> None:
    """Apply the rules to every query sqlframe's DuckDB DataFrames run or write from now on (again: no-op)."""
    from sqlframe.duckdb.dataframe import DuckDBDataFrame

    original = DuckDBDataFrame._get_expressions
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def get_expressions(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [with_spark_semantics(expression, self.session) for expression in original(self, *args, **kwargs)]

    setattr(get_expressions, _MARK, True)
    DuckDBDataFrame._get_expressions = get_expressions  # type: ignore[method-assign]


def with_spark_semantics(expression: exp.Expr, session: Any) -> exp.Expr:
    """``expression`` (a query in sqlframe's input dialect) with each call rewritten to Spark's type and value."""
    if not any(_rule(node) for node in expression.walk(bfs=False)):
        return expression  # no rule applies: the query is not typed (that costs a walk of the whole query)
    typed = expression.copy()
    # Paired before typing: qualifying the copy adds aliases, which would change the order of a later walk.
    pairs = [
        (node, copied)
        for node, copied in zip(expression.walk(bfs=False), typed.walk(bfs=False), strict=True)
        if _rule(node)
    ]
    _annotate(typed, session)
    types = SparkTypes(typed)
    # Innermost first, so an outer call's rewrite takes arguments that are already rewritten.
    for node, copied in reversed(pairs):
        rule = _rule(node)
        assert rule is not None
        target = _replaced(node)
        replacement = rule(node, copied, types, target)
        if replacement is not None:
            target.replace(replacement)
    return expression


def _rule(node: exp.Expr) -> Rule | None:
    """The rule for ``node``, None when there is none."""
    if isinstance(node, exp.Sum):
        return _cast_to_spark_type
    if isinstance(node, exp.Avg):
        return _average
    if isinstance(node, _ARITHMETIC):
        return _arithmetic
    if isinstance(node, exp.Round):
        return _round
    if isinstance(node, exp.Cast) and node.to.this in _INTEGRAL:
        return _cast_to_integer
    if isinstance(node, INT_RESULTS):
        return _cast_to_spark_type
    if isinstance(node, exp.Anonymous) and str(node.this).upper() in INT_RESULT_NAMES:
        return _cast_to_spark_type
    return None


def _replaced(node: exp.Expr) -> exp.Expr:
    """What a rewrite of ``node`` replaces: a window function's whole ``... OVER (...)``, else the call itself."""
    parent = node.parent
    return parent if isinstance(parent, exp.Window) and parent.this is node else node


def _annotate(typed: exp.Expr, session: Any) -> None:
    """Give every node of ``typed`` its type, in place."""
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    schema = session.catalog._schema
    qualify(
        typed,
        dialect=session.input_dialect,
        schema=schema,
        expand_alias_refs=False,
        expand_stars=False,
        validate_qualify_columns=False,
        quote_identifiers=False,
        identify=False,
    )
    annotate_types(typed, schema=schema, dialect=session.input_dialect)


# ---- the rules ------------------------------------------------------------------------------------------------


def _cast_to_spark_type(node: exp.Expr, copied: exp.Expr, types: SparkTypes, target: exp.Expr) -> exp.Expr | None:
    """DuckDB's value in Spark's type (a DOUBLE is DuckDB's already)."""
    kind = types.of(copied)
    if kind is None or kind.this in _FLOATING:
        return None
    return _cast(target.copy(), kind.copy())


def _arithmetic(node: exp.Expr, copied: exp.Expr, types: SparkTypes, target: exp.Expr) -> exp.Expr | None:
    """``+ - * / %``: a DOUBLE result from DOUBLE operands, a decimal quotient exact, another decimal cast."""
    kind = types.of(copied)
    if kind is None:
        return None
    if kind.this in _FLOATING:
        for name in ("this", "expression"):
            if types.of(copied.args[name]) != kind:
                node.set(name, _cast(node.args[name], kind.copy()))
        return None
    if not is_decimal(kind):
        return None
    if isinstance(node, exp.Div):
        dividend, divisor = decimal_of(types.of(copied.this)), decimal_of(types.of(copied.expression))
        if dividend is None or divisor is None:
            return None
        return exact_quotient(node.this, dividend, node.expression, divisor, kind)
    return _cast(target.copy(), kind.copy())


def _average(node: exp.Expr, copied: exp.Expr, types: SparkTypes, target: exp.Expr) -> exp.Expr | None:
    """``avg`` of a decimal as Spark computes it: its sum (in Spark's type) over its count, exactly, then cast."""
    kind, total_kind = types.of(copied), sum_type(types.of(copied.this))
    total = decimal_of(total_kind) if is_decimal(total_kind) else None
    quotient_kind = arithmetic(exp.Div, total_kind, exp.DataType.build("BIGINT"))
    if kind is None or not is_decimal(kind) or total_kind is None or total is None or quotient_kind is None:
        return None

    def over(call: exp.Expr) -> exp.Expr:
        if not isinstance(target, exp.Window):
            return call
        window = target.copy()
        window.set("this", call)
        return window

    numerator = _cast(over(exp.Sum(this=node.this.copy())), total_kind.copy())
    denominator = over(exp.Count(this=node.this.copy()))
    return _cast(exact_quotient(numerator, total, denominator, _COUNT_DECIMAL, quotient_kind), kind.copy())


def exact_quotient(
    dividend: exp.Expr,
    dividend_type: tuple[int, int],
    divisor: exp.Expr,
    divisor_type: tuple[int, int],
    kind: exp.DataType,
) -> exp.Expr:
    """``dividend / divisor`` as Spark's decimal ``kind``: the exact quotient rounded half up (away from zero) to
    its scale, from both operands' unscaled values as 128-bit integers. Given as ``(precision, scale)``, the
    operands' types say how to unscale them. A zero divisor raises, as on Spark (ANSI mode)."""
    result = decimal_of(kind)
    assert result is not None
    (_, dividend_scale), (_, divisor_scale), (_, scale) = dividend_type, divisor_type, result
    # quotient * 10**scale = (a * 10**-dividend_scale) / (b * 10**-divisor_scale) * 10**scale
    shift = scale - dividend_scale + divisor_scale
    numerator, denominator = _unscaled(dividend, dividend_scale), _unscaled(divisor, divisor_scale)
    if shift >= 0:
        numerator = exp.Mul(this=numerator, expression=_power_of_ten(shift))
    else:
        denominator = exp.Mul(this=denominator, expression=_power_of_ten(-shift))
    magnitude, size = exp.Abs(this=numerator.copy()), exp.Abs(this=denominator.copy())
    whole = exp.IntDiv(this=magnitude.copy(), expression=size.copy())
    remainder = exp.Mod(this=magnitude, expression=size.copy())
    rounds_up = exp.GTE(this=exp.Mul(this=exp.Literal.number(2), expression=remainder), expression=size)
    half_up = exp.If(this=rounds_up, true=exp.Literal.number(1), false=exp.Literal.number(0))
    sign = exp.Mul(this=exp.Sign(this=numerator), expression=exp.Sign(this=denominator))
    unscaled = exp.Mul(this=exp.Paren(this=sign), expression=exp.Paren(this=exp.Add(this=whole, expression=half_up)))
    quotient: exp.Expr = _cast(unscaled, exp.DataType.build("DECIMAL(38, 0)"))
    if scale:
        step = _cast(exp.Literal.string(f"{10**-scale:.{scale}f}"), exp.DataType.build(f"DECIMAL({scale}, {scale})"))
        quotient = exp.Mul(this=quotient, expression=step)
    return _cast(quotient, kind.copy())


def _unscaled(value: exp.Expr, scale: int) -> exp.Expr:
    """``value`` times ``10**scale`` (its scale) as a 128-bit integer, exactly: the text of the decimal without its
    point (multiplying the decimal could pass 38 digits)."""
    as_decimal = _cast(value.copy(), exp.DataType.build(f"DECIMAL(38, {scale})"))
    if not scale:
        return _cast(as_decimal, exp.DataType.build("INT128"))
    text = _cast(as_decimal, exp.DataType.build("VARCHAR"))
    digits = exp.Anonymous(this="REPLACE", expressions=[text, exp.Literal.string("."), exp.Literal.string("")])
    return _cast(digits, exp.DataType.build("INT128"))


def _cast(value: exp.Expr, kind: exp.DataType | str) -> exp.Expr:
    """``CAST(value AS kind)``, always: sqlglot's ``exp.cast`` keeps an existing cast to another decimal."""
    return exp.Cast(this=value, to=exp.DataType.build(kind) if isinstance(kind, str) else kind)


def _power_of_ten(exponent: int) -> exp.Expr:
    return _cast(exp.Literal.string(str(10**exponent)), exp.DataType.build("INT128"))


def _cast_to_integer(node: exp.Expr, copied: exp.Expr, types: SparkTypes, target: exp.Expr) -> exp.Expr | None:
    """A cast of a decimal or floating-point number to an integer drops the fraction, as on Spark (DuckDB rounds)."""
    argument = types.of(copied.this)
    if argument is None or not (is_decimal(argument) or argument.this in _FLOATING):
        return None
    return _cast(exp.Trunc(this=node.this.copy()), node.args["to"].copy())


def _round(node: exp.Expr, copied: exp.Expr, types: SparkTypes, target: exp.Expr) -> exp.Expr | None:
    """``round`` of a DOUBLE or FLOAT: see :func:`_spark_round`."""
    kind = copied.this.type  # sqlglot's: a FLOAT computed with other numbers is DOUBLE to it (docs/engines.md)
    if kind is None or not kind.is_type(*_FLOATING):
        return None
    rounded: exp.Expr = _spark_round(node, kind)
    return rounded


def _spark_round(call: Any, kind: Any) -> Any:
    """Spark's ``round`` of a DOUBLE or FLOAT: the value's shortest decimal form rounded half up, as a decimal.

    DuckDB scales the binary value instead, so a value within floating-point error of a half (150.545 is
    150.54499999999998749...) rounds the other way, and a large value loses digits. The decimal form fits
    DECIMAL(38, 20) below 1e18; up to 1e38 the double is a whole number and fits DECIMAL(38, 0); beyond that,
    and for NaN and infinities, Spark's result is the value itself (unless rounded to more than 20 places left
    of the point). The result has the type sqlglot gives the argument: DOUBLE for a FLOAT computed with other
    numbers (``x * 10``), which Spark and DuckDB keep FLOAT.
    """
    value = call.this
    places = call.args.get("decimals") or exp.Literal.number(0)
    # Spark takes a FLOAT's decimal form as a DOUBLE's; the cast also covers a FLOAT that sqlglot typed DOUBLE.
    as_double = _cast(value.copy(), "DOUBLE")

    def rounded_as(decimal: str) -> Any:
        exact = _cast(_cast(as_double.copy(), "STRING"), exp.DataType.build(decimal))
        return _cast(exp.Round(this=exact, decimals=places.copy()), kind.copy())

    def below(bound: str) -> Any:
        return exp.LT(this=exp.Abs(this=value.copy()), expression=exp.Literal.number(bound))

    return exp.Case(
        ifs=[
            exp.If(this=below("1e18"), true=rounded_as("DECIMAL(38, 20)")),
            exp.If(this=below("1e38"), true=rounded_as("DECIMAL(38, 0)")),
        ],
        default=value.copy(),
    )
