"""Which PySpark APIs a stage's code uses, read from its source without running it.

What the engine choice (:mod:`sparkflow.compiler.passes.engine_choice`) holds against each engine's measured
differences from Spark. The reading is deliberately wide: every attribute the code reads (``F.round``, ``df.rdd``,
``col.cast``) counts as a use of each API of that name, whatever the object, and so does a name it calls that the
module imported from PySpark (``from pyspark.sql.functions import round``); the module-level functions the stage
calls by name (its UDFs, its helpers) are read too, one call deep. Reading too much only sends a stage to Spark.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Uses:
    """What a function's code names: attributes it reads, PySpark functions it calls by their bare name, and whether
    its source could be read at all (if not, nothing is known about it)."""

    attributes: frozenset[str]
    functions: frozenset[str]
    known: bool

    def touches(self, api: str) -> bool:
        """Whether the code may use ``api``: ``functions.round``, ``DataFrame.rdd``, ``Column.cast`` (the owner's
        name is not checked)."""
        name = api.rsplit(".", 1)[-1]
        return name in self.attributes or (api.startswith("functions.") and name in self.functions)


def uses(function: Callable[..., Any]) -> Uses:
    """What ``function``'s code names, and that of the module-level functions it calls by name."""
    found = _read(function)
    if found is None:
        return Uses(frozenset(), frozenset(), False)
    attributes, called = found
    module = sys.modules.get(getattr(function, "__module__", ""), None)
    names = vars(module) if module is not None else {}
    pyspark_functions = {name for name in called if _from_pyspark(names.get(name))}
    for name in sorted(called):
        helper = names.get(name)
        if helper is function or not callable(helper) or _from_pyspark(helper):
            continue
        inner = _read(getattr(helper, "func", helper))  # a UDF keeps the user's function as .func
        if inner is not None:
            attributes |= inner[0]
            pyspark_functions |= {item for item in inner[1] if _from_pyspark(names.get(item))}
    return Uses(frozenset(attributes), frozenset(pyspark_functions), True)


def _read(function: Any) -> tuple[set[str], set[str]] | None:
    """(attribute names read, names called) in ``function``'s source, or None when it cannot be read."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    attributes = {item.attr for item in ast.walk(tree) if isinstance(item, ast.Attribute)}
    called = {item.func.id for item in ast.walk(tree) if isinstance(item, ast.Call) and isinstance(item.func, ast.Name)}
    return attributes, called


def _from_pyspark(value: Any) -> bool:
    return str(getattr(value, "__module__", "") or "").startswith("pyspark")
