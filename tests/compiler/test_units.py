"""Sizes and durations as users write them."""

from __future__ import annotations

import pytest

from sparkflow.errors import DefinitionError, Origin
from sparkflow.units import parse_duration, parse_size

MB, GB = 1024**2, 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512MB", 512 * MB),
        ("2GB", 2 * GB),
        ("2 GB", 2 * GB),
        ("10gb", 10 * GB),
        ("1.5GiB", 3 * GB // 2),
        ("40G", 40 * GB),
        ("1TB", 1024 * GB),
        ("64KB", 64 * 1024),
        (4096, 4096),
    ],
)
def test_sizes(text: str | int, expected: int) -> None:
    assert parse_size(text, field="memory") == expected


def test_ten_gigabytes_is_exactly_the_lambda_ceiling() -> None:
    assert parse_size("10GB", field="memory") == 10_240 * MB


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("lots", r"memory='lots' is not a size: write a number and a unit"),
        ("2 PB", r"is not a size"),
        ("", r"is not a size"),
        ("-1GB", r"is not a size"),
        ("1.5", r"is not a size"),
        ("2048", r"memory='2048' is not a size: write a number and a unit"),  # bytes or MB? say it
        (0, r"memory=0 must be a positive number of bytes"),
        (-5, r"must be a positive number of bytes"),
        (True, r"memory=True is not a size"),
        (2.5, r"memory=2.5 is not a size"),
        ("0.1B", r"must be at least one byte"),
    ],
)
def test_bad_sizes(value: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        parse_size(value, field="memory")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("900s", 900),
        ("15m", 900),
        ("15min", 900),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1d", 86_400),
        ("1500ms", 2),  # rounded up to whole seconds
        ("0.5s", 1),
        (60, 60),
    ],
)
def test_durations(text: str | int, expected: int) -> None:
    assert parse_duration(text, field="timeout") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("15 minutes", r"timeout='15 minutes' has an unknown unit 'minutes': use ms, s, m, h or d"),
        ("15", r"timeout='15' is not a duration: write a number and a unit"),
        ("soon", r"is not a duration"),
        ("m15", r"is not a duration"),
        ("", r"is not a duration"),
        ("0s", r"must be at least one second"),
        (0, r"timeout=0 must be a positive number of seconds"),
        (False, r"timeout=False is not a duration"),
        (None, r"timeout=None is not a duration"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        parse_duration(value, field="timeout")


def test_errors_carry_the_origin() -> None:
    with pytest.raises(DefinitionError, match=r"^pipeline\.py:7: size='x' is not a size") as raised:
        parse_size("x", field="size", origin=Origin("pipeline.py", 7))
    assert (raised.value.file, raised.value.line) == ("pipeline.py", 7)
