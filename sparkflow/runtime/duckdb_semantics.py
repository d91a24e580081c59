"""Spark's meaning of a function where DuckDB's differs, applied to the SQL sqlframe generates for a DataFrame.

sqlframe turns a stage's PySpark DataFrame code into one SQL query for DuckDB. For most functions that query
means what the code means on Spark; where a function means something else on DuckDB for some argument type, a
rule here rewrites the call. The argument's type comes from sqlglot's type annotation of a copy of the query
(sqlframe's catalog knows the schema of everything the query reads), the same way sqlframe types map lookups.
Each rule is listed, with its test, in docs/engines.md.
"""

from __future__ import annotations

import functools
from typing import Any

_MARK = "_sparkflow_spark_semantics"


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


def with_spark_semantics(expression: Any, session: Any) -> Any:
    """``expression`` (a query in sqlframe's input dialect) with each call DuckDB would evaluate otherwise rewritten."""
    from sqlglot import exp

    rounds = list(expression.find_all(exp.Round, bfs=False))
    if not rounds:  # no rule applies: the query is not typed (that costs a walk of the whole query)
        return expression
    typed = expression.copy()
    # Paired before typing: qualifying the copy adds aliases, which could change the order of a later walk.
    pairs = list(zip(rounds, typed.find_all(exp.Round, bfs=False), strict=True))
    _annotate(typed, session)
    # Innermost first, so an outer call's rewrite copies an argument that is already rewritten.
    for call, typed_call in reversed(pairs):
        kind = typed_call.this.type
        if kind is not None and kind.is_type(exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT):
            call.replace(_spark_round(call, kind))
    return expression


def _annotate(typed: Any, session: Any) -> None:
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


def _spark_round(call: Any, kind: Any) -> Any:
    """Spark's ``round`` of a DOUBLE or FLOAT: the value's shortest decimal form rounded half up, as a decimal.

    DuckDB scales the binary value instead, so a value within floating-point error of a half (150.545 is
    150.54499999999998749...) rounds the other way, and a large value loses digits. The decimal form fits
    DECIMAL(38, 20) below 1e18; up to 1e38 the double is a whole number and fits DECIMAL(38, 0); beyond that,
    and for NaN and infinities, Spark's result is the value itself (unless rounded to more than 20 places left
    of the point). The result has the type sqlglot gives the argument: DOUBLE for a FLOAT computed with other
    numbers (``x * 10``), which Spark and DuckDB keep FLOAT.
    """
    from sqlglot import exp

    value = call.this
    places = call.args.get("decimals") or exp.Literal.number(0)
    # Spark takes a FLOAT's decimal form as a DOUBLE's; the cast also covers a FLOAT that sqlglot typed DOUBLE.
    as_double = exp.cast(value.copy(), "DOUBLE")

    def rounded_as(decimal: str) -> Any:
        exact = exp.cast(exp.cast(as_double.copy(), "STRING"), exp.DataType.build(decimal))
        return exp.cast(exp.Round(this=exact, decimals=places.copy()), kind.copy())

    def below(bound: str) -> Any:
        return exp.LT(this=exp.Abs(this=value.copy()), expression=exp.Literal.number(bound))

    return exp.Case(
        ifs=[
            exp.If(this=below("1e18"), true=rounded_as("DECIMAL(38, 20)")),
            exp.If(this=below("1e38"), true=rounded_as("DECIMAL(38, 0)")),
        ],
        default=value.copy(),
    )
