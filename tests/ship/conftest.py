"""Shared helpers of the shipping tests: compiled examples and a packaged build context."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.loading import load_pipeline
from sparkflow.plan import Plan
from tests.examples import example


@dataclass(frozen=True)
class Compiled:
    path: Path
    pipeline: Pipeline
    plan: Plan
    definition: str


RESOURCES = Path(__file__).resolve().parent / "resources"


def compiled(name: str) -> Compiled:
    """An example by name, or a pipeline of tests/ship/resources (``shouting``: whole stages only)."""
    path = RESOURCES / name / "pipeline.py" if (RESOURCES / name).is_dir() else example(name)
    pipeline = load_pipeline(str(path))
    return Compiled(path, pipeline, plan_pipeline(pipeline, "aws"), compile_pipeline(pipeline, "aws"))


@pytest.fixture
def wordcount() -> Compiled:
    return compiled("wordcount")
