"""The decorator DSL: ``source``, ``param``, ``stage``, ``sink`` and ``pipeline``. Decorators only record; nothing
compiles here."""

from sparkflow.dsl.param import Param, param
from sparkflow.dsl.pipeline import Pipeline, pipeline
from sparkflow.dsl.sink import Sink, sink
from sparkflow.dsl.source import Source, source
from sparkflow.dsl.stage import Stage, StageOptions, stage

__all__ = [
    "Param",
    "Pipeline",
    "Sink",
    "Source",
    "Stage",
    "StageOptions",
    "param",
    "pipeline",
    "sink",
    "source",
    "stage",
]
