"""``sf.param(...)``: a value a run gives its stages, such as how many rows to keep.

A parameter is declared once, with a type and usually a default, and passed to stages like a source or a stage's
output; the stage function receives a plain Python value (an ``int`` for ``type=int``)::

    n = sf.param("n", default=3, type=int)

    @sf.stage
    def top(counts: DataFrame, n: int) -> DataFrame:
        return counts.orderBy(F.desc("count")).limit(n)

    @sf.pipeline
    def top_words():
        return top(counts(words(books)), n)

Each run chooses its values (``sparkflow run --param n=5``, ``{"params": {"n": 5}}`` in a deployed run's input);
a parameter left out takes its default, and one declared without a default must be given. The types are the
few a command line and a JSON execution input both carry without ambiguity: int, float, str and bool.
"""

from __future__ import annotations

import builtins
import math
import sys
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar, overload

from sparkflow.dsl.names import check_name
from sparkflow.errors import DefinitionError, Origin

T = TypeVar("T", int, float, str, bool)

#: The types a parameter may have, by the name the Plan records.
PARAM_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


class _Missing:
    """The default of a parameter declared without one (None is no marker: it is no value of the four types)."""

    def __repr__(self) -> str:
        return "<no default>"


NO_DEFAULT: Any = _Missing()


@dataclass(frozen=True)
class Param:
    """A declared parameter. Inside a pipeline it is passed to stages like a source; when a stage runs, its
    function receives the run's value instead.

    Attributes:
        name: the parameter's name (unique among the pipeline's sources, stages, sinks and parameters).
        type: ``int``, ``float``, ``str`` or ``bool`` (a key of :data:`PARAM_TYPES`).
        default: the value a run that does not give one uses; :data:`NO_DEFAULT` when a run must give it.
        origin: where ``sf.param`` was called.
    """

    name: str
    type: str
    default: Any
    origin: Origin

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT

    def _value_unknown(self, *_: Any) -> NoReturn:
        caller = sys._getframe(1)  # where the pipeline function computes with it
        raise DefinitionError(
            f"parameter {self.name!r} has no value while the pipeline is traced (each run gives its own): pass it to "
            "a stage and compute with it inside the stage function",
            Origin(caller.f_code.co_filename, caller.f_lineno),
        )

    # Computing with a parameter in the pipeline function would compute with this placeholder, not the run's value.
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _value_unknown
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __neg__ = _value_unknown
    __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __int__ = __float__ = __index__ = _value_unknown


@overload
def param(name: str, *, default: T, type: builtins.type[T] | None = None) -> T: ...


@overload
def param(name: str, *, type: builtins.type[T]) -> T: ...


def param(name: str, *, default: Any = NO_DEFAULT, type: Any = None) -> Any:
    """Declare a parameter of a pipeline: a plain value each run may set, passed to the stages that take it.

    Args:
        name: a short identifier (a letter, then letters, digits, ``_`` and ``-``).
        default: the value of a run that does not give one; without it, every run must give a value.
        type: ``int``, ``float``, ``str`` or ``bool``; the default's type when omitted.

    Returns:
        A :class:`Param`, typed as the parameter's type so that passing it to ``top(counts, n: int)`` type-checks.

    Example:
        >>> n = param("n", default=3, type=int)
    """
    caller = sys._getframe(1)
    origin = Origin(caller.f_code.co_filename, caller.f_lineno)
    check_name(name, what="parameter", origin=origin)
    allowed = ", ".join(PARAM_TYPES)
    if type is None:
        if default is NO_DEFAULT:
            raise DefinitionError(
                f"parameter {name!r} needs type= ({allowed}) or a default= to take the type from, "
                f"e.g. sf.param({name!r}, default=3, type=int)",
                origin,
            )
        type = builtins.type(default)
    chosen = next((key for key, kind in PARAM_TYPES.items() if kind is type), None)
    if chosen is None:
        shown = getattr(type, "__name__", repr(type))
        raise DefinitionError(
            f"parameter {name!r}: type={shown} is not supported; a parameter is one of {allowed} (pass a list or "
            "a mapping as a str and parse it in the stage)",
            origin,
        )
    if default is not NO_DEFAULT:
        default = _checked_default(name, chosen, default, origin)
    declared = Param(name, chosen, default, origin)
    from sparkflow.dsl import trace as _trace  # here: the trace module records Params, so it imports this one

    active = _trace.current()
    if active is not None:  # declared inside the pipeline function: known to the run even if no stage takes it
        active.declare(declared)
    return declared


def _checked_default(name: str, chosen: str, default: Any, origin: Origin) -> Any:
    """The default as a value of the declared type; a DefinitionError when it is not one."""
    # bool is an int in Python, but True is no count: a bool default only for type=bool, and the reverse.
    fits = isinstance(default, PARAM_TYPES[chosen]) and isinstance(default, bool) == (chosen == "bool")
    if chosen == "float" and isinstance(default, int) and not isinstance(default, bool):
        default, fits = float(default), True
    if not fits:
        raise DefinitionError(
            f"parameter {name!r}: default={default!r} is of type {builtins.type(default).__name__}, but type={chosen}: "
            f"give a default of type {chosen}, or change type=",
            origin,
        )
    if chosen == "float" and not math.isfinite(default):
        raise DefinitionError(f"parameter {name!r}: default={default!r} must be a finite number", origin)
    return default
