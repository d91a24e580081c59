"""A pipeline's schedule (EventBridge Scheduler syntax, :mod:`sparkflow.schedules`) as Cloud Scheduler's unix-cron.

unix-cron has five fields (minute hour day-of-month month day-of-week), days of the week 0-6 from Sunday
(https://cloud.google.com/scheduler/docs/configuring/cron-job-schedules). So ``?`` becomes ``*``, weekdays shift
by one (EventBridge counts 1-7 from Sunday), names become numbers, ``a/n`` becomes ``a-<last>/n``. What unix-cron
cannot say is refused, naming the pipeline's line: a year other than ``*``, ``L``, ``W`` and ``#``, and a rate
that does not divide an hour or a day (``rate(7 minutes)``, ``rate(2 days)``: cron restarts its count each hour,
day or month, so no cron runs every 7 minutes or every other day).
"""

from __future__ import annotations

from sparkflow.errors import PackageError
from sparkflow.plan import StartSchedule
from sparkflow.schedules import CRON_FIELDS, Cron, Rate, number, parse_schedule

_LAST = {"minutes": 59, "hours": 23, "day-of-month": 31, "month": 12, "day-of-week": 7}


def unix_cron(schedule: StartSchedule) -> str:
    """The unix-cron of ``schedule``; raises :class:`PackageError` (at the pipeline's line) if there is none."""
    parsed = parse_schedule(schedule.expression)
    try:
        return _from_rate(parsed) if isinstance(parsed, Rate) else _from_cron(parsed)
    except _Inexpressible as problem:
        raise PackageError(
            f"schedule={schedule.expression!r} cannot run on GCP: {problem} in Cloud Scheduler's unix-cron "
            "(minute hour day-of-month month day-of-week); declare a schedule both clouds can run, e.g. "
            "'cron(0 3 * * ? *)' or 'rate(6 hours)'",
            schedule.origin,
        ) from None


class _Inexpressible(ValueError):
    """Part of a schedule unix-cron has no words for."""


def _from_rate(rate: Rate) -> str:
    minutes = rate.minutes
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and minutes < 1440 and 1440 % minutes == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if minutes == 1440:
        return "0 0 * * *"
    raise _Inexpressible(
        f"every {rate.value} {rate.unit} has no cron equivalent (a rate must divide an hour, or a day, or be one day)"
    )


def _from_cron(cron: Cron) -> str:
    fields = dict(zip(CRON_FIELDS, cron.fields, strict=True))
    if fields["year"] != "*":
        raise _Inexpressible(f"the year {fields['year']!r} cannot be said")
    return " ".join(_field(name, fields[name]) for name in CRON_FIELDS[:5])


def _field(name: str, value: str) -> str:
    if value == "?":
        return "*"
    for item in value.split(","):
        if _special(name, item):
            raise _Inexpressible(f"{name} {value!r} cannot be said (L, W and # have no equivalent)")
    return ",".join(_item(name, item) for item in value.split(","))


def _special(name: str, item: str) -> bool:
    """EventBridge's last-day, weekday and nth-weekday forms (no weekday name ends in L, none of the days in W)."""
    if name == "day-of-month":
        return item == "L" or item.endswith("W")
    return name == "day-of-week" and ("#" in item or item.endswith("L"))


def _item(name: str, item: str) -> str:
    values, _, step = item.partition("/")
    if values == "*":
        converted = "*"
    else:
        bounds = [_value(name, bound) for bound in values.split("-")]
        if step and len(bounds) == 1:  # EventBridge's `a/n` is `a-<last>/n` in unix-cron
            bounds.append(_value(name, str(_LAST[name])))
        converted = "-".join(bounds)
    return f"{converted}/{step}" if step else converted


def _value(name: str, text: str) -> str:
    value = number(name, text)
    return str(value - 1 if name == "day-of-week" else value)  # unix-cron counts weekdays 0-6 from Sunday
