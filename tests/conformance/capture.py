"""Running one entry's examples on this process's engine and capturing what they produce, as plain data.

The examples of an entry run in order in one namespace (see :func:`namespace`). Each top-level statement runs as
doctest runs it, except that what doctest would print is captured instead (:mod:`tests.conformance.results`):

* an expression's value (``df.count()``, ``df.collect()``, ``df.schema``) is captured; a DataFrame by its result as
  Arrow gives it (its rows and column types: :mod:`tests.conformance.arrow`), or as ``collect()`` and its schema
  give it where the engine's Arrow conversion refuses it;
* ``X.show(...)`` captures the DataFrame ``X`` (its rows and types, not the text ``show`` prints) and
  ``X.printSchema()`` captures ``X``'s schema;
* ``print(...)`` (the namespace's own) captures each of its arguments.

An example that raises where its documentation shows no error is a failure (``Outcome.failures``), and the examples
after it still run, as doctest runs them; one whose documentation shows a traceback and raises gives a ``raised``
result. The entry's time is bounded (SIGALRM, in a process's main thread; the runner also kills a worker that does
not answer). Session settings the examples change (``spark.conf.set``) are set back afterwards.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import decimal
import importlib
import math
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from tests.conformance import arrow
from tests.conformance.extract import Entry, Example, pyspark_root
from tests.conformance.results import Outcome, Result

# What an example displays instead of returning: the receiver is captured (a frame, or its schema).
_DISPLAYS = {"show": "frame", "printSchema": "schema"}
# An example that sorts (DataFrame.orderBy / sort): its rows are compared in order.
_SORTS = re.compile(r"\.(orderBy|sort)\(")
_SETTINGS = re.compile(r"conf\.(?:set|unset)\(\s*['\"]([^'\"]+)['\"]")
_MESSAGE = 200
_UNSTABLE = (
    (re.compile(r"0x[0-9a-fA-F]+"), "0x?"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\b[a-z]?[0-9a-f]{16,}\b"), "<id>"),
    (re.compile(r"#\d+L?\b"), "#?"),
)
_MONTHS = re.compile(r"interval( year| month|$)")
_PLAIN = (str, int, float, bool, decimal.Decimal, dt.date, dt.time, dt.timedelta, type(None))


class EntryTimeout(BaseException):
    """The entry ran past its time bound (not an Exception: no ``except Exception`` on the way may swallow it)."""


def namespace(session: Any) -> dict[str, Any]:
    """The globals an entry's examples start with, bound to this process's engine: what pyspark's own doctest run
    gives them (its ``_test()`` functions: the module's globals, ``spark``, ``sc``), as this process's
    ``pyspark.sql`` modules have them: every public name of ``pyspark.sql.types``, ``pyspark.sql`` and
    ``pyspark.sql.functions`` (sqlframe's, in a duckdb process), ``spark`` (the engine's session), ``sf`` and ``F``
    (its functions) and ``sc`` where the session has a SparkContext (classic Spark only)."""
    found: dict[str, Any] = {"__name__": "__conformance__", "sys": sys}
    for module in ("pyspark", "pyspark.sql.types", "pyspark.sql", "pyspark.sql.functions"):
        loaded = importlib.import_module(module)
        if not isinstance(loaded, ModuleType):  # sqlframe's stand-in for pyspark itself
            continue
        found.update(
            {
                name: value
                for name, value in vars(loaded).items()
                if not name.startswith("_") and not isinstance(value, ModuleType)  # sqlframe's own submodules
            }
        )
    functions = importlib.import_module("pyspark.sql.functions")
    found.update(spark=session, sf=functions, F=functions)
    with contextlib.suppress(Exception):  # a Spark Connect or a sqlframe session has no SparkContext
        found["sc"] = session.sparkContext
    return found


def run_entry(entry: Entry, session: Any, timeout: float) -> Outcome:
    """Run ``entry``'s examples on ``session`` (this process's engine), within ``timeout`` seconds. An example that
    raises where its documentation shows no error is a failure; the examples after it still run (as doctest runs
    them)."""
    started = time.monotonic()
    keys = sorted({key for example in entry.examples for key in _SETTINGS.findall(example.source)})
    saved = _settings(session, keys)
    results: list[Result] = []
    failures: list[tuple[int, str]] = []
    scope = {**namespace(session), "__file__": str(pyspark_root() / entry.path)}
    timed_out = False
    try:
        with _time_bound(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an example's deprecation warnings are not its results
            for example in entry.examples:
                try:
                    _run_example(example, scope, results)
                except Exception as raised:
                    if example.raises:
                        results.append(Result(example.line, _first(example.source), "raised", value=_name(raised)))
                    else:
                        failures.append((example.line, f"{_name(raised)}: {_message(raised)}"))
    except EntryTimeout:
        timed_out = True
    finally:
        _restore(session, saved)
    return Outcome(entry.name, tuple(results), tuple(failures), timed_out, time.monotonic() - started)


def _run_example(example: Example, scope: dict[str, Any], results: list[Result]) -> None:
    printed: list[Any] = []
    scope["print"] = lambda *args, **_: printed.extend(args)
    for statement in ast.parse(example.source, mode="exec").body:
        value, kind = _run_statement(statement, scope)
        results.extend(capture(item, example) for item in printed)
        printed.clear()
        if value is not None:
            results.append(capture(value, example, kind))


def _run_statement(statement: ast.stmt, scope: dict[str, Any]) -> tuple[Any, str | None]:
    """Run one top-level statement; an expression's value (a displayed DataFrame's receiver) and how it was shown."""
    if not isinstance(statement, ast.Expr):
        exec(compile(ast.Module([statement], []), "<example>", "exec"), scope)
        return None, None
    call, kind = statement.value, None
    if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in _DISPLAYS:
        kind = _DISPLAYS[call.func.attr]
        call = call.func.value
    return eval(compile(ast.Expression(call), "<example>", "eval"), scope), kind


def capture(value: Any, example: Example, kind: str | None = None) -> Result:
    """``value`` (an example's result) as a :class:`Result`; ``kind`` ``frame`` or ``schema`` when the example
    displayed it with ``show`` or ``printSchema``."""
    sql = importlib.import_module("pyspark.sql")
    line, source = example.line, _first(example.source)
    ordered = bool(_SORTS.search(example.source))
    if isinstance(value, sql.DataFrame):
        if kind == "schema" or _streaming(value):
            return _schema(line, source, value.schema)
        try:
            schema = value.schema
        except Exception:  # sqlframe cannot always tell a query's schema before running it; show() runs it anyway
            schema = None
        try:
            table = _collectable(value, schema).toArrow()
        except Exception:  # Spark's Arrow conversion refuses some nested values that collect() (and show()) read
            if schema is None:
                raise
            types, names = _types(schema)
            rows = tuple(plain(row) for row in _collectable(value, schema).collect())
            return Result(line, source, "frame", types, names, rows, ordered)
        names = tuple(str(field.name) for field in schema.fields) if schema else tuple(table.column_names)
        return Result(line, source, "frame", arrow.types(table), names, arrow.rows(table), ordered)
    if _is_schema(value):
        return _schema(line, source, value)
    if _is_row(value):
        return Result(line, source, "rows", rows=(plain(value),))
    if isinstance(value, list) and value and all(_is_row(item) for item in value):
        return Result(line, source, "rows", rows=tuple(plain(row) for row in value), ordered=ordered)
    if isinstance(value, sql.Column):
        return Result(line, source, "column")
    try:
        return Result(line, source, "value", value=plain(value))
    except TypeError:
        return Result(line, source, "object", value=_public(type(value).__name__))


def plain(value: Any) -> Any:
    """``value`` as plain Python data (tuples for Rows, bytes for binary); a TypeError for an object that is not
    data."""
    if _is_row(value):
        return tuple(plain(item) for item in value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, bytearray | bytes | memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        items = [plain(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if hasattr(value, "item") and type(value).__module__ == "numpy":  # a NumPy scalar
        return plain(value.item())
    if hasattr(value, "toJson") and type(value).__name__ == "VariantVal":
        return value.toJson()
    raise TypeError(f"{type(value).__name__} is not plain data")


def _collectable(frame: Any, schema: Any) -> Any:
    """``frame`` with its interval columns of months (``interval``, ``interval year to month``) as strings:
    PySpark's Arrow conversion has no form for them (``show()`` prints them from the string form too)."""
    types = [field.dataType.simpleString() for field in schema.fields] if schema is not None else []
    if not any(_MONTHS.match(kind) for kind in types):
        return frame
    functions = importlib.import_module("pyspark.sql.functions")
    names = [f"_{index}" for index in range(len(types))]
    renamed = frame.toDF(*names)
    return renamed.select(
        *(
            functions.col(name).cast("string") if _MONTHS.match(kind) else functions.col(name)
            for name, kind in zip(names, types, strict=True)
        )
    )


def _schema(line: int, source: str, schema: Any) -> Result:
    types, names = _types(schema)
    return Result(line, source, "schema", types, names)


def _types(schema: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    fields = schema.fields
    types = tuple(re.sub(r",\s+", ",", field.dataType.simpleString()) for field in fields)
    return types, tuple(str(field.name) for field in fields)


def _is_row(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(value, "asDict") and hasattr(value, "__fields__")


def _is_schema(value: Any) -> bool:
    return hasattr(value, "fields") and hasattr(value, "simpleString") and _type_name(value) == "struct"


def _type_name(datatype: Any) -> str | None:
    try:
        return str(datatype.typeName()) if datatype is not None else None
    except Exception:
        return None


def _streaming(frame: Any) -> bool:
    try:
        return frame.isStreaming is True
    except Exception:
        return False


def _public(name: str) -> str:
    """``DuckDBGroupedData`` -> ``GroupedData``: the name PySpark users know."""
    return re.sub(r"^(DuckDB|Connect|_Base|Base)", "", name)


def _name(error: BaseException) -> str:
    return _public(type(error).__name__)


def _message(error: BaseException) -> str:
    """The first line of ``error``'s message, without what changes from run to run (addresses, ids, the worker's
    folder), cut to :data:`_MESSAGE` characters: reasons in docs/engines.md must not change between runs."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[0].replace(os.getcwd(), ".") if lines else ""
    for pattern, replacement in _UNSTABLE:
        text = pattern.sub(replacement, text)
    return text if len(text) <= _MESSAGE else text[: _MESSAGE - 3] + "..."


def _first(source: str) -> str:
    return source.strip().splitlines()[0]


def _settings(session: Any, keys: list[str]) -> dict[str, str | None]:
    saved: dict[str, str | None] = {}
    for key in keys:
        try:
            saved[key] = session.conf.get(key)
        except Exception:  # not set
            saved[key] = None
    return saved


def _restore(session: Any, saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        try:
            if value is None:
                session.conf.unset(key)
            else:
                session.conf.set(key, value)
        except Exception:  # an engine that keeps no such setting
            pass


@contextmanager
def _time_bound(seconds: float) -> Iterator[None]:
    """Raise :class:`EntryTimeout` in the block after ``seconds`` (in the main thread; elsewhere, no bound)."""
    if threading.current_thread() is not threading.main_thread() or not math.isfinite(seconds):
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise EntryTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
