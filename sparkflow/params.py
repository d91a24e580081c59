"""A run's parameter values, checked against the Plan's parameters (``sf.param``) in one place.

Three callers, one rule: ``sparkflow run`` / ``start`` convert ``--param NAME=VALUE`` text by the declared type
(:func:`from_command_line`), the local executor and ``start`` check the values and fill in defaults
(:func:`resolve`), and the runtime re-checks the JSON values a run's input carries (:func:`from_event`),
because an execution may be started by anything that can call Step Functions or Workflows. Both refuse an unknown
name, a value of the wrong type and a missing required value before anything runs; a parameter left out takes its
default. Light on purpose: the runtime imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sparkflow.errors import EventError, OptionError
from sparkflow.plan import Plan, PlanParam

#: Where a run's parameter values are in its input (``{"params": {"n": 5}}``), and so in every event's ``run``
#: (``run.params`` is the execution input): apart from the run's own settings (sources, sinks, chunk_bytes), so a
#: parameter may have any name.
INPUT_FIELD = "params"
EVENT_FIELD = f"run.params.{INPUT_FIELD}"

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
_EXAMPLES = {"int": "3", "float": "0.5", "str": "text", "bool": "true"}
_WHAT = {
    "int": "an int: give a whole number",
    "float": "a float: give a number",
    "str": "a str",
    "bool": "a bool: give true or false",
}


def from_command_line(plan: Plan, pairs: Sequence[str], option: str = "--param") -> dict[str, Any]:
    """The values ``NAME=VALUE`` texts give, converted by the declared types (only those given: see
    :func:`resolve` for the rest).

    Raises:
        OptionError: a pair that is not ``NAME=VALUE``, an unknown name, or a value that does not convert, naming
            the parameter's declaration (file:line) and its type.
    """
    given: dict[str, Any] = {}
    for pair in pairs:
        name, separator, text = pair.partition("=")
        if not separator or not name:
            raise OptionError(f"{option} {pair!r}: write NAME=VALUE, e.g. {option} n=5")
        declared = _declared(plan, name)
        if declared is None:
            raise OptionError(f"{option} {pair}: {_unknown(plan, name)}")
        try:
            given[name] = _converted(declared, text)
        except ValueError:
            raise OptionError(_wrong_type(option, f"{name}={text}", declared), declared.origin) from None
    return given


def resolve(plan: Plan, given: Mapping[str, Any], option: str = "--param") -> dict[str, Any]:
    """Every parameter's value for a run: ``given`` (Python values, e.g. from :func:`from_command_line`), checked
    against the declared types, and defaults for the others, in the Plan's order.

    Raises:
        OptionError: an unknown name, a value of another type, a required parameter left out; naming the
            parameter's declaration (file:line) and its type.
    """
    checked: dict[str, Any] = {}
    for name, value in given.items():
        declared = _declared(plan, name)
        if declared is None:
            raise OptionError(f"{option} {name}={value!r}: {_unknown(plan, name)}")
        fitting = _fitted(declared, value)
        if fitting is None:
            raise OptionError(_wrong_type(option, f"{name}={value!r}", declared), declared.origin)
        checked[name] = fitting[0]
    for declared in plan.params:
        if declared.required and declared.name not in checked:
            raise OptionError(
                f"parameter {declared.name!r} ({declared.type}) has no default: give its value with "
                f"{option} {declared.name}=VALUE; nothing ran",
                declared.origin,
            )
    return _with_defaults(plan, checked)


def from_event(plan: Plan, run: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value for the run an event belongs to: its input's ``params``, checked against the Plan,
    defaults for the others.

    Raises:
        EventError: naming the field (``run.params.params.n``): an unknown name, a value of the wrong JSON type, a
            required parameter without a value. Final: another attempt of the task gets the same input.
    """
    given = run.get("params", {}).get(INPUT_FIELD, {})
    if not isinstance(given, dict):
        raise EventError(f"event field {EVENT_FIELD!r} must be an object of parameter name -> value")
    checked: dict[str, Any] = {}
    for name, value in given.items():
        declared = _declared(plan, name)
        if declared is None:
            raise EventError(f"event field '{EVENT_FIELD}.{name}': {_unknown(plan, name)}")
        fitting = _fitted(declared, value)
        if fitting is None:
            raise EventError(
                f"event field '{EVENT_FIELD}.{name}' is {value!r}, but parameter {name!r} ({declared.origin}) is "
                f"{_WHAT[declared.type]} (JSON {_json_example(declared)}): start the run with a value of that type"
            )
        checked[name] = fitting[0]
    for declared in plan.params:
        if declared.required and declared.name not in checked:
            raise EventError(
                f"event field '{EVENT_FIELD}.{declared.name}' is missing: parameter {declared.name!r} "
                f"({declared.origin}) has no default; start the run with "
                f'{{"{INPUT_FIELD}": {{"{declared.name}": {_json_example(declared)}}}}} in its input'
            )
    return _with_defaults(plan, checked)


def _wrong_type(option: str, given: str, declared: PlanParam) -> str:
    return (
        f"{option} {given}: parameter {declared.name!r} is {_WHAT[declared.type]}, e.g. "
        f"{option} {declared.name}={_EXAMPLES[declared.type]}"
    )


def _declared(plan: Plan, name: str) -> PlanParam | None:
    return next((item for item in plan.params if item.name == name), None)


def _unknown(plan: Plan, name: str) -> str:
    import difflib

    names = [item.name for item in plan.params]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = f"its parameters: {', '.join(names)}" if names else "it declares none (sf.param)"
    return f"pipeline {plan.pipeline!r} has no parameter {name!r} ({listed}){hint}"


def _converted(declared: PlanParam, text: str) -> Any:
    """``text`` as a value of the declared type (ValueError when it is not one)."""
    if declared.type == "int":
        return int(text)
    if declared.type == "float":
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(text)
        return value
    if declared.type == "bool":
        lowered = text.strip().lower()
        if lowered not in _TRUE + _FALSE:
            raise ValueError(text)
        return lowered in _TRUE
    return text


def _fitted(declared: PlanParam, value: Any) -> tuple[Any] | None:
    """``(value,)`` as the declared type when a JSON value of that type was given, else None. JSON's true is no
    int, and a whole number is a fine float."""
    if isinstance(value, bool):
        return (value,) if declared.type == "bool" else None
    if declared.type == "int":
        return (value,) if isinstance(value, int) else None
    if declared.type == "float":
        return (float(value),) if isinstance(value, int | float) and math.isfinite(value) else None
    if declared.type == "str":
        return (value,) if isinstance(value, str) else None
    return None


def _json_example(declared: PlanParam) -> str:
    return f'"{_EXAMPLES["str"]}"' if declared.type == "str" else _EXAMPLES[declared.type]


def _with_defaults(plan: Plan, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of the Plan, in its order: its given value, else its default."""
    return {item.name: given.get(item.name, item.default) for item in plan.params}
