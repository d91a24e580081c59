"""The examples every test iterates over."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(ROOT.glob("examples/*/pipeline.py"))


def example_ids() -> list[str]:
    return [path.parent.name for path in EXAMPLES]


def example(name: str) -> Path:
    return next(path for path in EXAMPLES if path.parent.name == name)
