"""The decorator DSL: ``source``, ``param``, ``stage``, ``sink``, ``pipeline`` and its trigger ``on_new_objects``.
Decorators only record; nothing compiles here."""

from sparkflow.dsl.param import Param, param
from sparkflow.dsl.pipeline import Pipeline, pipeline
from sparkflow.dsl.sink import Sink, sink
from sparkflow.dsl.source import Source, source
from sparkflow.dsl.stage import Stage, StageOptions, stage
from sparkflow.dsl.trigger import OnNewObjects, on_new_objects

__all__ = [
    "OnNewObjects",
    "Param",
    "Pipeline",
    "Sink",
    "Source",
    "Stage",
    "StageOptions",
    "on_new_objects",
    "param",
    "pipeline",
    "sink",
    "source",
    "stage",
]
