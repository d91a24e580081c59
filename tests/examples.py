"""The examples every test iterates over."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(ROOT.glob("examples/*/pipeline.py"))
# Values of the examples' parameters (sf.param) other than their defaults, which the cloud runs use, so that a run
# shows the values reached the stages: top-words keeps the top 2 words, not 3, and only words of 2 letters or more
# (min_length runs fused into counts' map tasks).
PARAMS: dict[str, dict[str, Any]] = {"top-words": {"n": 2, "min_length": 2}}


def example_ids() -> list[str]:
    return [path.parent.name for path in EXAMPLES]


def long_but(*names: str) -> list[Any]:
    """Every example as a parameter, those not in ``names`` marked ``long`` (make long-checks, not make test)."""
    return [
        pytest.param(path, id=path.parent.name, marks=() if path.parent.name in names else pytest.mark.long)
        for path in EXAMPLES
    ]


def example(name: str) -> Path:
    return next(path for path in EXAMPLES if path.parent.name == name)
