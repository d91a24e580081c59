"""What every pass receives besides the graph."""

from __future__ import annotations

from dataclasses import dataclass

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.targets.base import Target


@dataclass(frozen=True)
class Context:
    """The pipeline being compiled and the target it is compiled for."""

    pipeline: Pipeline
    target: Target
