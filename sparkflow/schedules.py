"""Schedule expressions: when a deployed pipeline starts a run by itself (``@sf.pipeline(schedule=...)``).

The syntax is EventBridge Scheduler's recurring one, so the AWS template takes the expression as it is declared
and the GCP target translates it to Cloud Scheduler's unix-cron (:mod:`sparkflow.targets.gcp.cron`):

* ``cron(minutes hours day-of-month month day-of-week year)``: six fields, UTC. Each field takes ``*``, a
  value, a range ``a-b``, a step ``*/n`` or ``a/n`` or ``a-b/n``, or a list of those (``1,15``); months
  ``1-12`` or ``JAN``-``DEC``, days of the week ``1-7`` (1 is Sunday) or ``SUN``-``SAT``, years ``1970-2199``.
  One of day-of-month and day-of-week must be ``?`` (the other one picks the days). Day-of-month also takes ``L``
  (last day) and ``W`` (nearest weekday, ``15W``, ``LW``); day-of-week ``L`` (``6L``: the last Friday) and ``#``
  (``2#1``: the first Monday).
* ``rate(N unit)``: every N minutes, hours or days; the unit is singular for 1 (``rate(1 day)``) and plural
  otherwise (``rate(6 hours)``).

(https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html)

This module is light (no cloud client, no compiler): the DSL checks a declaration with it, the targets read the
parsed form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACCEPTED_FORMS = (
    "use 'cron(minutes hours day-of-month month day-of-week year)' with six fields and '?' in day-of-month or "
    "day-of-week, e.g. 'cron(0 3 * * ? *)' (03:00 UTC every day), or 'rate(N minutes|hours|days)', e.g. "
    "'rate(1 day)', 'rate(6 hours)'"
)

CRON_FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
RATE_UNITS = {"minute": 1, "hour": 60, "day": 1440}  # in minutes

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

# Ranges of each cron field (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#cron-based).
_RANGES = {
    "minutes": (0, 59),
    "hours": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (1, 7),
    "year": (1970, 2199),
}
_NAMES = {"month": MONTHS, "day-of-week": WEEKDAYS}
_EXPRESSION = re.compile(r"^(cron|rate)\((.*)\)$")
_RATE = re.compile(r"^([0-9]+) ([a-z]+)$")
# A value, a range and an optional step, each value a number or a name: `5`, `MON-FRI`, `0/15`, `*/10`, `1-10/2`.
_ITEM = re.compile(r"^(\*|[A-Z0-9]+(?:-[A-Z0-9]+)?)(?:/([0-9]+))?$")
# The special forms of the two day fields.
_DAY_OF_MONTH_SPECIAL = re.compile(r"^(?:L|LW|([0-9]+)W)$")
_DAY_OF_WEEK_SPECIAL = re.compile(r"^([0-9]+|[A-Z]{3})(?:L|#[1-5])$")


class ScheduleSyntaxError(ValueError):
    """An expression that is not EventBridge Scheduler's cron or rate syntax; the message says what is wrong."""


@dataclass(frozen=True)
class Cron:
    """A parsed ``cron(...)``: its six fields as written (upper case), in :data:`CRON_FIELDS` order."""

    fields: tuple[str, str, str, str, str, str]


@dataclass(frozen=True)
class Rate:
    """A parsed ``rate(N unit)``: its period in minutes, and as written."""

    minutes: int
    value: int
    unit: str


def parse_schedule(expression: str) -> Cron | Rate:
    """Parse ``expression``; raise :class:`ScheduleSyntaxError` naming the first problem found."""
    if not isinstance(expression, str):
        raise ScheduleSyntaxError(f"a schedule is a string, not {type(expression).__name__}")
    matched = _EXPRESSION.match(expression)
    if not matched:
        if expression.startswith("at("):
            raise ScheduleSyntaxError("a one-time at(...) schedule is not a recurring schedule")
        raise ScheduleSyntaxError("it is neither cron(...) nor rate(...)")
    kind, inner = matched.groups()
    return _parse_cron(inner) if kind == "cron" else _parse_rate(inner)


def _parse_rate(inner: str) -> Rate:
    matched = _RATE.match(inner)
    if not matched:
        raise ScheduleSyntaxError(f"rate({inner}) must be a whole number and a unit, e.g. rate(6 hours)")
    value, unit = int(matched.group(1)), matched.group(2)
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in RATE_UNITS:
        raise ScheduleSyntaxError(f"rate unit {unit!r} is not minute(s), hour(s) or day(s)")
    if value < 1:
        raise ScheduleSyntaxError(f"rate({inner}) must be at least 1")
    expected = singular if value == 1 else singular + "s"
    if unit != expected:
        # EventBridge refuses rate(1 hours) and rate(5 hour).
        raise ScheduleSyntaxError(f"rate({inner}) must say rate({value} {expected}): singular for 1, plural above")
    return Rate(value * RATE_UNITS[singular], value, unit)


def _parse_cron(inner: str) -> Cron:
    parts = inner.split()
    if len(parts) != len(CRON_FIELDS):
        raise ScheduleSyntaxError(
            f"cron({inner}) has {len(parts)} fields; EventBridge cron has 6: {' '.join(CRON_FIELDS)}"
        )
    fields = tuple(part.upper() for part in parts)
    for name, value in zip(CRON_FIELDS, fields, strict=True):
        _check_field(name, value)
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleSyntaxError(
            f"cron({inner}) must have '?' in exactly one of day-of-month ({day_of_month}) and day-of-week "
            f"({day_of_week}): e.g. 'cron(0 3 * * ? *)' every day, 'cron(0 3 ? * MON-FRI *)' on weekdays"
        )
    return Cron(fields)  # type: ignore[arg-type]  # six, checked above


def _check_field(name: str, value: str) -> None:
    if value == "?":
        if name not in ("day-of-month", "day-of-week"):
            raise ScheduleSyntaxError(f"'?' is allowed only in day-of-month and day-of-week, not in {name}")
        return
    for item in value.split(","):
        special = {"day-of-month": _DAY_OF_MONTH_SPECIAL, "day-of-week": _DAY_OF_WEEK_SPECIAL}.get(name)
        found = special.match(item) if special else None
        if found:
            if found.group(1) is not None:
                number(name, found.group(1))
            continue
        matched = _ITEM.match(item)
        if not matched:
            raise ScheduleSyntaxError(f"{name} field {value!r}: {item!r} is not a value, range or step")
        values, step = matched.groups()
        if values != "*":
            for bound in values.split("-"):
                number(name, bound)
        if step is not None and int(step) < 1:
            raise ScheduleSyntaxError(f"{name} field {value!r}: the step must be at least 1")


def number(field: str, text: str) -> int:
    """A cron field's value as a number (names of months and weekdays as their numbers); raises when out of range."""
    low, high = _RANGES[field]
    names = _NAMES.get(field, ())
    if text in names:
        return names.index(text) + low
    if not text.isdigit():
        known = f" or {names[0]}-{names[-1]}" if names else ""
        raise ScheduleSyntaxError(f"{field} value {text!r} is not a number {low}-{high}{known}")
    value = int(text)
    if not low <= value <= high:
        raise ScheduleSyntaxError(f"{field} value {value} is outside {low}-{high}")
    return value
