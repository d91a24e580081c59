"""The decorator DSL: ``source``, ``stage`` and ``pipeline``. Decorators only record; nothing compiles here."""

from sparkflow.dsl.pipeline import Pipeline, pipeline
from sparkflow.dsl.sink import Sink, sink
from sparkflow.dsl.source import Source, source
from sparkflow.dsl.stage import Stage, StageOptions, stage

__all__ = ["Pipeline", "Sink", "Source", "Stage", "StageOptions", "pipeline", "sink", "source", "stage"]
