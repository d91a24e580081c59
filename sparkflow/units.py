"""Size and duration strings as users write them: ``"2GB"``, ``"512MB"``, ``"15m"``, ``"900s"``.

Sizes are binary (1 GB = 1024 MB = 1024**3 bytes), the way AWS Lambda and Cloud Run count memory, so
``memory="10GB"`` is exactly Lambda's 10,240 MB ceiling.
"""

from __future__ import annotations

import re
from fractions import Fraction

from sparkflow.errors import DefinitionError, Origin

_SIZE_UNITS = {
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_DURATION_UNITS: dict[str, Fraction] = {
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "sec": Fraction(1),
    "m": Fraction(60),
    "min": Fraction(60),
    "h": Fraction(3600),
    "d": Fraction(86400),
}
# Beyond these a value is a typo, not a plan (and floats would overflow): an exbibyte, ten years.
MAX_BYTES = 1024**6
MAX_SECONDS = 10 * 365 * 86400
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)")
_DURATION = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*[a-zA-Z]+\s*)+$")


def parse_size(value: object, *, field: str, origin: Origin | None = None) -> int:
    """Return ``value`` in bytes; ints are bytes already.

    >>> parse_size("512MB", field="memory")
    536870912
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DefinitionError(
            f"{field}={_short(value)} is not a size: write a string such as '512MB' or '2GB', or a number of bytes",
            origin,
        )
    if isinstance(value, int):
        if value <= 0:
            raise DefinitionError(f"{field}={value} must be a positive number of bytes", origin)
        if value > MAX_BYTES:
            raise DefinitionError(f"{field}={_short(value)} is larger than 1 EB: check the number", origin)
        return value
    match = _SIZE.match(value)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS or (unit == "" and "." in match.group(1)):
        raise DefinitionError(
            f"{field}={_short(value)} is not a size: "
            "write a number and a unit (B, KB, MB, GB, TB), e.g. '512MB' or '2GB'",
            origin,
        )
    number = Fraction(match.group(1)) * _SIZE_UNITS[unit]
    if number < 1:
        raise DefinitionError(f"{field}={_short(value)} must be at least one byte", origin)
    if number > MAX_BYTES:
        raise DefinitionError(f"{field}={_short(value)} is larger than 1 EB: check the number and the unit", origin)
    return int(number)


def parse_duration(value: object, *, field: str, origin: Origin | None = None) -> int:
    """Return ``value`` in whole seconds (rounded up); ints are seconds already.

    >>> parse_duration("1h30m", field="timeout")
    5400
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DefinitionError(
            f"{field}={_short(value)} is not a duration: write a string such as '900s', '15m' or '1h', or seconds",
            origin,
        )
    if isinstance(value, int):
        if value <= 0:
            raise DefinitionError(f"{field}={value} must be a positive number of seconds", origin)
        if value > MAX_SECONDS:
            raise DefinitionError(f"{field}={_short(value)} is longer than ten years: check the number", origin)
        return value
    if not _DURATION.match(value):
        raise DefinitionError(
            f"{field}={_short(value)} is not a duration: write a number and a unit (s, m, h), e.g. '900s' or '15m'",
            origin,
        )
    seconds = Fraction(0)
    for number, unit in _DURATION_PART.findall(value):
        factor = _DURATION_UNITS.get(unit.lower())
        if factor is None:
            raise DefinitionError(
                f"{field}={_short(value)} has an unknown unit {unit!r}: use ms, s, m, h or d, e.g. '15m'", origin
            )
        seconds += Fraction(number) * factor
        if seconds > MAX_SECONDS:
            raise DefinitionError(f"{field}={_short(value)} is longer than ten years: check the number", origin)
    whole = int(-(-seconds // 1))
    if whole <= 0:
        raise DefinitionError(f"{field}={_short(value)} must be at least one second", origin)
    return whole


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."
