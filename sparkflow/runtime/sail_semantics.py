"""Spark's values and types for the calls Sail computes otherwise, by rewriting each query's Spark Connect plan just
before PySpark's client sends it.

Sail (0.7.2) gives Spark's answer almost everywhere, but some common calls silently give other values or types:

* ``round`` / ``bround`` of a DOUBLE or FLOAT: Spark rounds the value's shortest decimal form (``150.545`` rounds
  to ``150.55``), Sail the binary value (``150.54499999999998...``: 150.54);
* ``avg`` / ``mean`` of a decimal: Spark rounds its last place half up, Sail truncates it;
* ``+ - * /`` with a decimal operand: Spark's type follows its ``DecimalPrecision`` rules (a quotient of two
  ``DECIMAL(10, 2)`` is a ``DECIMAL(23, 13)``; an exact type past 38 digits keeps at least 6 places; an integer
  literal counts as its digits) and the value is rounded half up to it. Sail's quotient has 4 places more than
  the dividend, truncated, and its other results keep every place up to 38 digits (another type, or an overflow
  where Spark has a value); ``%`` and ``pmod`` of decimals have another type;
* a FLOAT with an integer or a decimal (``x * 10``): DOUBLE on Spark (ANSI), computed as a FLOAT on Sail;
* ``when(...).otherwise(...)``, ``coalesce``, ``greatest``, ``least``, ``nvl2`` of numbers of several types: Spark
  widens them all to one type; Sail takes ``when``'s first branch's (a decimal ``otherwise`` of an integer
  ``when`` loses its places), and ``nvl`` / ``ifnull`` of decimals are DOUBLEs;
* ``round`` / ``bround`` of a decimal: Spark's type has one more integer digit and no more places than the result
  needs (Sail refuses ``bround``); ``datediff`` / ``date_diff``: INT on Spark, BIGINT on Sail.

The client builds a plan of unresolved expressions: it does not know an argument's type. So each plan is rewritten
where it leaves the client (a :class:`pyspark.sql.connect.session.SparkSession.Hook` on every execution, and the
schema a DataFrame reports), relation by relation from its inputs up. Where a rule may apply, the types of its
arguments come from the in-process server (an AnalyzePlan call per relation and nesting level, about a
millisecond), and the call is replaced by one that computes Spark's value in Spark's type:

* a floating-point ``round`` reads the value's shortest decimal digits from Sail's text of it (the digits of Java's
  ``Double.toString`` from JDK 19 on), rounds them half up (half to even) and casts them back to the value's type;
* decimal arithmetic is computed exactly in 256-bit decimals (a quotient to at least one place past Spark's scale,
  truncated), then cast to Spark's type, which rounds half up as Spark does; ``avg`` is ``sum`` over ``count``,
  the same way (a group of NULLs is NULL);
* FLOAT arithmetic and conditionals have their operands cast to Spark's wider type; the other results are cast to
  Spark's type.

A top-level expression that changes keeps the name Sail gave it. Not rewritten, keeping Sail's own semantics
(docs/engines.md): SQL text (``F.expr``, ``selectExpr``, a ``where`` string, ``spark.sql``), calls inside a lambda
of a higher-order function, ``pivot`` aggregates, relations other than ``select`` / ``withColumn(s)`` / ``agg`` /
``where`` / ``orderBy`` / a join's condition, a ``round`` whose scale is not a literal number, and a call whose
argument the server cannot type on its own (a column an ``orderBy`` reads from before a ``select`` dropped it, an
outer query's).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sparkflow.errors import EngineUnsupported
from sparkflow.runtime import spark_decimals
from sparkflow.runtime.engines import ON_SPARK

if TYPE_CHECKING:
    from pyspark.sql.connect import proto

_MARK = "_sparkflow_spark_semantics"
#: Sail's widest decimals: exact intermediate results of decimal arithmetic.
_WIDE = 76
#: Sail's plain text of a DOUBLE has at most this many digits after the point (see :func:`_spark_round`).
_PLAIN_PLACES = 22
#: ... and at most this many before it.
_PLAIN_WHOLE = 16
#: Functions whose value differs call by call: an argument calling one is computed once (see :func:`_once`).
_VOLATILE = frozenset({"rand", "randn", "random", "uuid", "shuffle", "randstr", "uniform"})
#: Integer types, narrowest first (PySpark's type names).
_INTEGRAL_ORDER = ("byte", "short", "integer", "long")
_INTEGRAL = frozenset(_INTEGRAL_ORDER)
#: What a FLOAT beside it widens to DOUBLE in Spark's ANSI arithmetic: integers and decimals.
_WIDENED_BY_FLOAT = frozenset({*_INTEGRAL, "decimal"})
_LAMBDA_VARIABLE = "sparkflow_value"
_VARIABLES = itertools.count()
_RELATION = "spark.connect.Relation"
_EXPRESSION = "spark.connect.Expression"

_Message = TypeVar("_Message", bound=Any)
Types = list[Any]  # PySpark DataTypes, or None where the server could not type an expression


def install(session: Any) -> None:
    """Rewrite every query ``session`` (a Spark Connect session on Sail) executes, and the schema its DataFrames
    report, from now on. Again on the same session: no-op."""
    from pyspark.sql.connect.session import SparkSession

    client = session.client
    if getattr(client, _MARK, False):
        return
    rewriter = Rewriter(functools.partial(type(client)._analyze, client))

    class Hook(SparkSession.Hook):
        def on_execute_plan(self, request: Any) -> Any:
            rewriter.plan(request.plan)
            return request

    analyze = client._analyze

    @functools.wraps(analyze)
    def analyze_with_spark_semantics(method: str, **kwargs: Any) -> Any:
        if method == "schema":
            plan = type(kwargs["plan"])()
            plan.CopyFrom(kwargs["plan"])
            rewriter.plan(plan)
            kwargs["plan"] = plan
        return analyze(method, **kwargs)

    client._session_hooks.append(Hook())
    client._analyze = analyze_with_spark_semantics
    setattr(client, _MARK, True)


@dataclass
class _Target:
    """A call a rule may rewrite, and its nesting height: 0 when no other target is inside it."""

    expression: proto.Expression
    rule: Rule
    height: int


@dataclass
class _Slot:
    """One top-level expression of a relation; ``named`` when its name is a column's (a ``select`` or an ``agg``)."""

    expression: proto.Expression
    named: bool
    targets: list[_Target] = field(default_factory=list)
    original: proto.Expression | None = None


class Rewriter:
    """Rewrites plans in place, asking ``analyze`` (PySpark's ``SparkConnectClient._analyze``, not rewritten) for
    the types of the arguments of the calls it rewrites."""

    def __init__(self, analyze: Callable[..., Any]) -> None:
        self._analyze = analyze

    def plan(self, plan: proto.Plan) -> None:
        """Rewrite the relations of ``plan`` (a query, or a command such as a write) in place. A rewrite that fails
        (a plan this module does not expect) fails the query, naming itself: Sail's own result could differ from
        Spark's, and an AttributeError from here would make PySpark take ``df.schema`` for a column named
        ``schema``."""
        try:
            self._plan(plan)
        except Exception as error:
            raise EngineUnsupported(
                f"sparkflow could not give this query Spark's semantics on the sail engine ({type(error).__name__}: "
                f"{error}); {ON_SPARK}"
            ) from error

    def _plan(self, plan: proto.Plan) -> None:
        kind = plan.WhichOneof("op_type")
        if kind == "root":
            self._relation(plan.root)
        elif kind == "command":
            self._message(plan.command)
        # A compressed plan (only sent to a server that asks for it, which Sail does not) is left as it is.

    def _message(self, message: Any) -> None:
        """Rewrite every relation inside ``message``."""
        for kind, _, item in _submessages(message):
            if kind == _RELATION:
                self._relation(item)
            elif kind != _EXPRESSION:
                self._message(item)

    def _relation(self, relation: proto.Relation) -> None:
        self._message(relation)  # the inputs first, so that their types are already Spark's
        kind = relation.WhichOneof("rel_type")
        slots = _slots(relation, kind)
        for slot in slots:
            _collect(slot.expression, slot.targets, inside_lambda=False)
        if not any(slot.targets for slot in slots):
            return
        typing = _Typing(self._analyze, relation, kind)
        for slot in slots:
            if slot.named and slot.targets and slot.expression.WhichOneof("expr_type") != "alias":
                slot.original = _copy(slot.expression)
        # Names are read where the expressions were (a rewritten grouping expression would not match the original).
        naming = _Typing(self._analyze, _copy(relation), kind) if any(slot.original for slot in slots) else typing
        targets = [target for slot in slots for target in slot.targets]
        for height in range(max(target.height for target in targets) + 1):
            level = [target for target in targets if target.height == height]
            arguments = [argument for target in level for argument in target.rule.typed(target.expression)]
            types = iter(typing.types(arguments))
            for target in level:
                found = [next(types) for _ in target.rule.typed(target.expression)]
                replacement = (
                    None if any(kind is None for kind in found) else target.rule.apply(target.expression, found)
                )
                if replacement is not None:
                    target.expression.CopyFrom(replacement)
        renamed = [slot for slot in slots if slot.original is not None and slot.expression != slot.original]
        if renamed:
            names = naming.names([slot.original for slot in renamed if slot.original is not None])
            for slot, name in zip(renamed, names, strict=True):
                if name is not None:
                    slot.expression.CopyFrom(_alias(slot.expression, name))


def _submessages(message: Any) -> Iterator[tuple[str, str, Any]]:
    """``(type name, field name, message)`` of each message directly inside ``message``: a field's, a repeated
    field's items, a map's values."""
    for descriptor, value in message.ListFields():
        kind = descriptor.message_type
        if kind is None:
            continue
        if kind.GetOptions().map_entry:
            entry = kind.fields_by_name["value"].message_type
            if entry is not None:
                yield from ((entry.full_name, descriptor.name, item) for item in value.values())
        elif descriptor.is_repeated:
            yield from ((kind.full_name, descriptor.name, item) for item in value)
        else:
            yield kind.full_name, descriptor.name, value


def _slots(relation: proto.Relation, kind: str | None) -> list[_Slot]:
    """The top-level expressions of a relation this module rewrites (none for the other relations)."""
    if kind == "project":
        return [_Slot(expression, named=True) for expression in relation.project.expressions]
    if kind == "with_columns":
        return [_Slot(alias.expr, named=False) for alias in relation.with_columns.aliases]
    if kind == "filter":
        return [_Slot(relation.filter.condition, named=False)]
    if kind == "sort":
        return [_Slot(order.child, named=False) for order in relation.sort.order]
    if kind == "join" and relation.join.HasField("join_condition"):
        return [_Slot(relation.join.join_condition, named=False)]
    if kind == "aggregate" and relation.aggregate.group_type != relation.aggregate.GROUP_TYPE_PIVOT:
        aggregate = relation.aggregate
        return [
            _Slot(expression, named=True)
            for expression in (*aggregate.grouping_expressions, *aggregate.aggregate_expressions)
        ]
    return []


def _children(expression: proto.Expression) -> Iterator[tuple[proto.Expression, bool]]:
    """The expressions directly inside ``expression``, each with whether it is a lambda's body."""
    kind = expression.WhichOneof("expr_type")
    if kind is None or kind == "literal":
        return
    yield from _inside(getattr(expression, kind), lambda_body=kind == "lambda_function")


def _inside(message: Any, lambda_body: bool) -> Iterator[tuple[proto.Expression, bool]]:
    for kind, name, item in _submessages(message):
        if kind == _EXPRESSION:
            yield item, lambda_body and name == "function"
        elif kind != _RELATION and name != "common":
            yield from _inside(item, lambda_body)


def _collect(expression: proto.Expression, found: list[_Target], inside_lambda: bool) -> int:
    """Append the targets in ``expression`` (innermost first) to ``found``; the height of the highest, or -1."""
    rule = None if inside_lambda else _rule(expression)
    children = list(_children(expression))
    if rule is not None and rule.window:  # the rule replaces the window's function: look inside it instead
        window = expression.window
        children = [*_children(window.window_function)] + [
            (item, False) for item in (*window.partition_spec, *(order.child for order in window.order_spec))
        ]
    height = -1
    for child, body in children:
        height = max(height, _collect(child, found, inside_lambda or body))
    if rule is None:
        return height
    found.append(_Target(expression, rule, height + 1))
    return height + 1


def _window_call(expression: proto.Expression) -> proto.Expression | None:
    return expression.window.window_function if expression.WhichOneof("expr_type") == "window" else None


class _Typing:
    """Types of expressions in the context of one relation: as if they were that relation's expressions."""

    def __init__(self, analyze: Callable[..., Any], relation: proto.Relation, kind: str | None) -> None:
        self._analyze = analyze
        self._relation = relation
        self._kind = kind

    def types(self, expressions: list[proto.Expression]) -> Types:
        """The type of each expression (None where the server cannot type it there): all in one call, else (an
        aggregate's arguments are not aggregates, or some other expression cannot be typed there) one by one."""
        if not expressions:
            return []
        found = self._fields(expressions)
        if found is None and self._kind == "aggregate":
            found = self._fields(expressions, by_row=True)
        if found is not None:
            return [item.dataType for item in found]
        return [self._one(expression) for expression in expressions]

    def names(self, expressions: list[proto.Expression]) -> list[str | None]:
        """The column name Sail gives each (original, top-level) expression."""
        fields = self._fields(expressions)
        if fields is not None:
            return [item.name for item in fields]
        single = [self._fields([expression]) for expression in expressions]
        return [found[0].name if found else None for found in single]

    def _one(self, expression: proto.Expression) -> Any:
        found = self._fields([expression])
        if found is None and self._kind == "aggregate":  # an argument of an aggregate function: typed by row
            found = self._fields([expression], by_row=True)
        return found[0].dataType if found else None

    def _fields(self, expressions: list[proto.Expression], by_row: bool = False) -> list[Any] | None:
        """The fields of a relation computing ``expressions`` over this relation's input, or None if the server
        refuses it (or it has another number of columns)."""
        from pyspark.sql.connect import proto

        query = proto.Relation()
        if self._kind == "aggregate" and not by_row:
            aggregate = self._relation.aggregate
            query.aggregate.input.CopyFrom(aggregate.input)
            query.aggregate.group_type = proto.Aggregate.GROUP_TYPE_GROUPBY
            query.aggregate.grouping_expressions.extend(aggregate.grouping_expressions)
            query.aggregate.aggregate_expressions.extend(expressions)
            skipped = len(aggregate.grouping_expressions)
        else:
            query.project.input.CopyFrom(self._input())
            query.project.expressions.extend(expressions)
            skipped = 0
        try:
            schema = self._analyze("schema", plan=proto.Plan(root=query)).schema
        except Exception:  # the server refuses this context: such an argument is left as it is
            return None
        fields = list(schema.fields)[skipped:]
        return fields if len(fields) == len(expressions) else None

    def _input(self) -> proto.Relation:
        from pyspark.sql.connect import proto

        relation = self._relation
        kind = self._kind
        if kind == "join":
            both = proto.Relation()
            both.join.left.CopyFrom(relation.join.left)
            both.join.right.CopyFrom(relation.join.right)
            both.join.join_type = proto.Join.JOIN_TYPE_INNER
            return both
        inner: proto.Relation = getattr(relation, kind or "").input
        return inner


# ---- the rules ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """What replaces a call: ``typed(call)`` lists the expressions whose types ``apply(call, types)`` needs; it gives
    the replacement, or None to leave the call. ``window``: the call is a window expression whose function the rule
    replaces (its function's arguments are the ones typed)."""

    typed: Callable[[proto.Expression], list[proto.Expression]]
    apply: Callable[[proto.Expression, Types], proto.Expression | None]
    window: bool = False


def _arguments(expression: proto.Expression) -> list[proto.Expression]:
    return list(expression.unresolved_function.arguments)


def _first_argument(expression: proto.Expression) -> list[proto.Expression]:
    return _arguments(expression)[:1]


def _no_argument(expression: proto.Expression) -> list[proto.Expression]:
    return []


def _average_argument(expression: proto.Expression) -> list[proto.Expression]:
    call = _window_call(expression) or expression
    return _first_argument(call)


def _round(expression: proto.Expression, types: Types) -> proto.Expression | None:
    """``round`` / ``bround``: a floating-point value as Spark rounds it, a decimal in Spark's type."""
    from pyspark.sql.types import DecimalType, DoubleType, FloatType

    call = expression.unresolved_function
    (kind,) = types
    places = _integer(call.arguments[1]) if len(call.arguments) > 1 else 0
    if places is None:
        return None
    if isinstance(kind, DoubleType | FloatType):
        even = call.function_name == "bround"
        return _spark_round(call.arguments[0], places, even, kind)
    if isinstance(kind, DecimalType):
        result = _decimal(spark_decimals.rounded((kind.precision, kind.scale), places))
        if call.function_name == "round":
            return _cast(expression, result)
        return _cast(_decimal_half_even(call.arguments[0], places), result)  # Sail refuses bround of a decimal
    return None


def _average(expression: proto.Expression, types: Types) -> proto.Expression | None:
    """``avg`` of a decimal: its ``sum`` (in Spark's sum type) over its ``count``, exactly, in Spark's type."""
    (kind,) = types
    argument = _decimal_of(kind)
    if argument is None or kind.typeName() != "decimal":
        return None
    window = _window_call(expression)
    call = window if window is not None else expression

    def aggregate(name: str) -> proto.Expression:
        found = _copy(call)
        found.unresolved_function.function_name = name
        del found.unresolved_function.arguments[1:]
        if window is None:
            return found
        over = _copy(expression)
        over.window.window_function.CopyFrom(found)
        return over

    total = _cast(aggregate("sum"), _decimal(spark_decimals.summed(argument)))
    count = _call("nullif", aggregate("count"), _literal(0))
    result = spark_decimals.averaged(argument)
    return _cast(_exact("/", (total, spark_decimals.summed(argument)), (count, (20, 0)), result), _decimal(result))


def _arithmetic(expression: proto.Expression, types: Types) -> proto.Expression | None:
    """``+ - * / %`` and ``pmod`` of numbers: with a FLOAT and another kind of number, both as DOUBLEs (Spark's ANSI
    widening; Sail computes a FLOAT); with a decimal and a decimal or an integer, Spark's type, and for ``+ - * /``
    its value computed exactly (``%`` is exact on Sail: only its type differs)."""
    from pyspark.sql.types import DoubleType

    call = expression.unresolved_function
    if len(call.arguments) != 2:
        return None
    names = [kind.typeName() for kind in types]
    if "float" in names and any(name in _WIDENED_BY_FLOAT for name in names):
        return _call(call.function_name, *(_cast(argument, DoubleType()) for argument in call.arguments))
    if "decimal" not in names:
        return None
    left, right = (_operand(argument, kind) for argument, kind in zip(call.arguments, types, strict=True))
    if left is None or right is None:
        return None
    if call.function_name in ("%", "pmod"):
        return _cast(expression, _decimal(spark_decimals.arithmetic("%", left, right)))
    symbol: spark_decimals.Operator = call.function_name  # type: ignore[assignment]
    result = spark_decimals.arithmetic(symbol, left, right)
    return _cast(_exact(symbol, (call.arguments[0], left), (call.arguments[1], right), result), _decimal(result))


def _values(expression: proto.Expression) -> list[proto.Expression]:
    """The arguments of a conditional that give its value: ``when``'s branches and ``otherwise``, ``nvl2``'s last
    two, every argument of the others."""
    call = expression.unresolved_function
    arguments = list(call.arguments)
    if call.function_name == "when":
        return [*arguments[1::2], *arguments[len(arguments) - len(arguments) % 2 :]]
    if call.function_name == "nvl2":
        return arguments[1:]
    return arguments


def _widened(expression: proto.Expression, types: Types) -> proto.Expression | None:
    """A conditional of numbers of several types (``when(...).otherwise(...)``, ``coalesce``, ``greatest``...):
    each value cast to Spark's wider type of them all (Sail takes ``when``'s first branch's type: a decimal
    ``otherwise`` of an integer ``when`` lost its places). ``nvl`` and ``ifnull`` are ``coalesce`` (Sail's are
    DOUBLEs for decimals)."""
    wider = _wider([kind for kind in types if kind.typeName() != "void"])
    found = _copy(expression)
    if found.unresolved_function.function_name in ("nvl", "ifnull"):  # Sail's are DOUBLE for decimals
        found.unresolved_function.function_name = "coalesce"  # which they are on Spark
    elif wider is None:
        return None
    for argument, kind in zip(_values(found), types, strict=True):
        if wider is not None and kind != wider and kind.typeName() != "void":
            argument.CopyFrom(_cast(argument, wider))
    return found


def _wider(kinds: list[Any]) -> Any:
    """Spark's (ANSI) wider type of numbers of these types, or None when they are alike or not all numbers."""
    from pyspark.sql.types import DoubleType

    names = {kind.typeName() for kind in kinds}
    if len({kind.simpleString() for kind in kinds}) < 2 or not names <= {"float", "double", "decimal", *_INTEGRAL}:
        return None
    if "double" in names or "float" in names:  # a FLOAT beside anything but a FLOAT: DOUBLE
        return DoubleType()
    if names <= _INTEGRAL:
        return max(kinds, key=lambda kind: _INTEGRAL_ORDER.index(kind.typeName()))
    decimals = [_decimal_of(kind) for kind in kinds]
    scale = max(found[1] for found in decimals if found is not None)
    digits = max(found[0] - found[1] for found in decimals if found is not None)
    return _decimal(spark_decimals.bounded(digits + scale, scale))


def _integer_result(expression: proto.Expression, types: Types) -> proto.Expression | None:
    from pyspark.sql.types import IntegerType

    return _cast(expression, IntegerType())


_ROUND = Rule(_first_argument, _round)
_AVERAGE = Rule(_average_argument, _average)
_WINDOW_AVERAGE = Rule(_average_argument, _average, window=True)
_ARITHMETIC = Rule(_arguments, _arithmetic)
_CONDITIONAL = Rule(_values, _widened)
_INTEGER_RESULT = Rule(_no_argument, _integer_result)
#: Function name (as PySpark's client sends it) -> its rule.
RULES: dict[str, Rule] = {
    "round": _ROUND,
    "bround": _ROUND,
    "avg": _AVERAGE,
    "mean": _AVERAGE,
    "+": _ARITHMETIC,
    "-": _ARITHMETIC,
    "*": _ARITHMETIC,
    "/": _ARITHMETIC,
    "%": _ARITHMETIC,
    "pmod": _ARITHMETIC,
    "when": _CONDITIONAL,
    "coalesce": _CONDITIONAL,
    "nvl": _CONDITIONAL,
    "ifnull": _CONDITIONAL,
    "nvl2": _CONDITIONAL,
    "greatest": _CONDITIONAL,
    "least": _CONDITIONAL,
    "datediff": _INTEGER_RESULT,
    "date_diff": _INTEGER_RESULT,
}


def _rule(expression: proto.Expression) -> Rule | None:
    kind = expression.WhichOneof("expr_type")
    if kind == "window":
        function = expression.window.window_function
        is_average = function.WhichOneof("expr_type") == "unresolved_function" and (
            RULES.get(function.unresolved_function.function_name) is _AVERAGE
        )
        return _WINDOW_AVERAGE if is_average else None
    if kind != "unresolved_function" or expression.unresolved_function.is_user_defined_function:
        return None
    return RULES.get(expression.unresolved_function.function_name)


# ---- Spark's values, as expressions --------------------------------------------------------------------------


def _exact(
    operator: spark_decimals.Operator,
    left: tuple[proto.Expression, spark_decimals.Decimal],
    right: tuple[proto.Expression, spark_decimals.Decimal],
    result: spark_decimals.Decimal,
) -> proto.Expression:
    """``left <operator> right`` in 256-bit decimals: exact, or for ``/`` truncated to at least one place past the
    result's scale (Sail's quotient has 4 places more than its dividend), which is all that Spark's rounding half
    up to that scale reads. Both given with their decimal types."""
    (dividend, (_, left_scale)), (divisor, (_, right_scale)) = left, right
    if operator == "/":
        left_scale = max(left_scale, result[1] - 3)
    return _call(
        operator, _cast(dividend, _decimal((_WIDE, left_scale))), _cast(divisor, _decimal((_WIDE, right_scale)))
    )


def _spark_round(value: proto.Expression, places: int, even: bool, kind: Any) -> proto.Expression:
    """Spark's ``round`` (``bround`` when ``even``) of the DOUBLE or FLOAT ``value`` to ``places``: its shortest
    decimal form rounded half up (half to even), as a ``kind``, from Sail's text of the value (as a DOUBLE: Spark
    reads a FLOAT's digits as a DOUBLE's).

    Sail writes ``1e-5 <= |x| < 1e16`` as plain digits, at most 16 before the point and 21 after: that text is
    exactly a DECIMAL(38, 22) (of fewer places to round to a negative ``places``: a value near a multiple of half
    the unit has few digits after the point), rounded there and written back (Sail parses a decimal text correctly
    rounded, as Java's ``BigDecimal.doubleValue`` does). Other values are written ``1.2345e-9``: see
    :func:`_round_digits`. NaN and infinities are returned as they are. The value's text is read in the first WHEN,
    which every row evaluates: the server computes it once per row (and the value once, unless it is not
    deterministic: see :func:`_once`)."""
    from pyspark.sql.types import DecimalType, DoubleType, StringType

    def spark_round(original: proto.Expression) -> proto.Expression:
        text = _cast(_cast(original, DoubleType()), StringType())
        special = _call("or", _call("isnan", original), _call("=", _call("abs", original), _literal(float("inf"))))
        plain = _call("and", _call("=", _call("instr", text, _literal("e")), _literal(0)), _call("not", special))
        if places > _PLAIN_PLACES:
            plain_rounded = original  # its digits end before the place rounded to
        elif places < -_PLAIN_WHOLE:
            plain_rounded = _cast(_literal(0), kind)  # below half the unit rounded to
        else:
            # Room for a unit of 10 ** -places: a value near a place that matters has no digit past 22 + places.
            scale = _PLAIN_PLACES + min(places, 0)
            exact = _cast(text, DecimalType(spark_decimals.MAX_PRECISION, scale), parsing=True)
            rounded = _decimal_half_even(exact, places) if even else _call("round", exact, _literal(places))
            plain_rounded = _cast(_cast(rounded, StringType()), kind)
        found = _case([(plain, plain_rounded), (special, original)], _round_digits(text, original, places, even, kind))
        return _call("+", found, _cast(_literal(0), kind))  # adding zero turns a negative zero positive: Spark has none

    return _once(value, spark_round)


def _decimal_half_even(exact: proto.Expression, places: int) -> proto.Expression:
    """``exact`` (a decimal) rounded half to even to ``places`` (Sail's ``bround`` takes no decimal): rounded half
    up, then back one unit toward zero when it was a tie that reached an odd last digit."""
    unit = _decimal_literal(1, -places)
    up = _call("round", exact, _literal(places))
    tie = _call("=", _call("abs", _call("-", exact, up)), _decimal_literal(5, -places - 1))
    odd = _call("=", _call("%", _call("abs", up), _call("+", unit, unit)), unit)
    back = _call("if", _call(">", exact, _literal(0)), _call("-", up, unit), _call("+", up, unit))
    return _call("if", _call("and", tie, odd), back, up)


def _round_digits(
    text: proto.Expression, original: proto.Expression, places: int, even: bool, kind: Any
) -> proto.Expression:
    """Spark's rounding of a value Sail writes ``-1.2345e-9``: the digits ``g`` of the mantissa start at the power
    of ten given by the exponent; the rounding keeps ``kept = exponent + places + 1`` of them. Keeping all of them
    returns the value itself, keeping none gives zero; otherwise the kept digits (at most 16: a BIGINT), plus one
    when the next digit rounds up, are written with the exponent ``-places`` and cast back."""
    from pyspark.sql.types import IntegerType, LongType, StringType

    zero = _cast(_literal(0), kind)
    mantissa = _call("substring_index", text, _literal("e"), _literal(1))
    exponent = _cast(_call("substring_index", text, _literal("e"), _literal(-1)), IntegerType(), parsing=True)
    digits = _call("replace", _call("replace", mantissa, _literal("-"), _literal("")), _literal("."), _literal(""))
    size = _call("length", digits)
    kept = _call("+", exponent, _literal(places + 1))
    head = _cast(_call("concat", _literal("0"), _call("substr", digits, _literal(1), kept)), LongType(), parsing=True)
    following = _call("substr", digits, _call("+", kept, _literal(1)), _literal(1))
    if even:
        rest = _call("substr", digits, _call("+", kept, _literal(2)))
        odd = _call("=", _call("%", head, _literal(2)), _literal(1))
        above = _call("or", _call("rlike", rest, _literal("[1-9]")), odd)
        up = _call(
            "or", _call(">", following, _literal("5")), _call("and", _call("=", following, _literal("5")), above)
        )
    else:
        up = _call(">=", following, _literal("5"))
    unscaled = _cast(_call("+", head, _call("if", up, _literal(1), _literal(0))), StringType())
    sign = _call(
        "if", _call("=", _call("substr", text, _literal(1), _literal(1)), _literal("-")), _literal("-"), _literal("")
    )
    rounded = _cast(_call("concat", sign, unscaled, _literal(f"e{-places}")), kind)
    return _case([(_call(">=", kept, size), original), (_call("<", kept, _literal(0)), zero)], rounded)


# ---- building expressions ------------------------------------------------------------------------------------


def _copy(message: _Message) -> _Message:
    found: _Message = type(message)()
    found.CopyFrom(message)
    return found


def _call(name: str, *arguments: proto.Expression) -> proto.Expression:
    from pyspark.sql.connect import proto

    found = proto.Expression()
    found.unresolved_function.function_name = name
    for argument in arguments:
        found.unresolved_function.arguments.add().CopyFrom(argument)
    return found


def _literal(value: int | str | float) -> proto.Expression:
    from pyspark.sql.connect import proto

    found = proto.Expression()
    if isinstance(value, str):
        found.literal.string = value
    elif isinstance(value, float):
        found.literal.double = value
    else:
        found.literal.integer = value
    return found


def _decimal_literal(digit: int, power: int) -> proto.Expression:
    """The decimal ``digit * 10 ** power`` as a literal (with no places when ``power`` is not negative)."""
    from decimal import Decimal

    from pyspark.sql.connect import proto

    text = format(Decimal(digit).scaleb(power), "f")
    found = proto.Expression()
    found.literal.decimal.value = text
    found.literal.decimal.scale = max(-power, 0)
    found.literal.decimal.precision = max(len(text.replace(".", "").lstrip("0")), max(-power, 0), 1)
    return found


def _cast(expression: proto.Expression, kind: Any, *, parsing: bool = False) -> proto.Expression:
    """``expression`` cast to ``kind``; ``parsing``: a cast of text that one branch of a CASE reads in a form only
    another branch's rows have, as a TRY cast (NULL, not an error): the server folds a CASE of constants (``round(
    lit(2.5))``) by evaluating every branch, also those no row takes."""
    from pyspark.sql.connect import proto
    from pyspark.sql.connect.types import pyspark_types_to_proto_types

    found = proto.Expression()
    found.cast.expr.CopyFrom(expression)
    found.cast.type.CopyFrom(pyspark_types_to_proto_types(kind))
    if parsing:
        found.cast.eval_mode = proto.Expression.Cast.EVAL_MODE_TRY
    return found


def _alias(expression: proto.Expression, name: str) -> proto.Expression:
    from pyspark.sql.connect import proto

    found = proto.Expression()
    found.alias.expr.CopyFrom(expression)
    found.alias.name.append(name)
    return found


def _case(branches: list[tuple[proto.Expression, proto.Expression]], otherwise: proto.Expression) -> proto.Expression:
    arguments = [item for branch in branches for item in branch]
    return _call("when", *arguments, otherwise)


def _bind(value: proto.Expression, body: Callable[[proto.Expression], proto.Expression]) -> proto.Expression:
    """``body(v)`` with ``v`` the value of ``value``, computed once: ``transform(array(value), v -> body(v))[0]``. An
    argument read many times is computed once (and a non-deterministic one drawn once)."""
    from pyspark.sql.connect import proto

    variable = proto.Expression()
    variable.unresolved_named_lambda_variable.name_parts.append(f"{_LAMBDA_VARIABLE}_{next(_VARIABLES)}")
    function = proto.Expression()
    function.lambda_function.function.CopyFrom(body(variable))
    function.lambda_function.arguments.add().CopyFrom(variable.unresolved_named_lambda_variable)
    return _field(_call("transform", _call("array", value), function), 0)


def _once(value: proto.Expression, body: Callable[[proto.Expression], proto.Expression]) -> proto.Expression:
    """``body(value)``, where ``body`` reads its argument several times: a deterministic ``value`` is written there
    each time (the server computes a subexpression read by every row once: common subexpression elimination), one
    that is not (or calls a function of the user's) is bound once by a lambda, which the server evaluates row by
    row (slower: see :func:`_bind`)."""
    return _bind(value, body) if _volatile(value) else body(value)


def _volatile(expression: proto.Expression) -> bool:
    kind = expression.WhichOneof("expr_type")
    if kind == "common_inline_user_defined_function":
        return True
    if kind == "unresolved_function" and (
        expression.unresolved_function.function_name in _VOLATILE
        or expression.unresolved_function.is_user_defined_function
    ):
        return True
    return any(_volatile(child) for child, _ in _children(expression))


def _field(value: proto.Expression, key: str | int) -> proto.Expression:
    """``value[key]``: a struct's field, an array's element."""
    from pyspark.sql.connect import proto

    found = proto.Expression()
    found.unresolved_extract_value.child.CopyFrom(value)
    found.unresolved_extract_value.extraction.CopyFrom(_literal(key))
    return found


def _decimal(kind: spark_decimals.Decimal) -> Any:
    from pyspark.sql.types import DecimalType

    return DecimalType(*kind)


def _decimal_of(kind: Any) -> spark_decimals.Decimal | None:
    """The decimal of a decimal or integer type, or None."""
    from pyspark.sql.types import DecimalType

    if isinstance(kind, DecimalType):
        return kind.precision, kind.scale
    return spark_decimals.INTEGERS.get(kind.simpleString()) if kind is not None else None


def _operand(argument: proto.Expression, kind: Any) -> spark_decimals.Decimal | None:
    """The decimal Spark reads an operand of decimal arithmetic as: an integer literal as just its digits."""
    value = _integer(argument)
    if value is not None and kind.typeName() != "decimal":
        return spark_decimals.literal(value)
    return _decimal_of(kind)


def _integer(expression: proto.Expression) -> int | None:
    """The value of an integer literal, else None."""
    if expression.WhichOneof("expr_type") != "literal":
        return None
    kind = expression.literal.WhichOneof("literal_type")
    if kind not in ("short", "integer", "long"):
        return None
    value: int = getattr(expression.literal, kind)
    return value
