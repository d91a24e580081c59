"""``@sf.pipeline``: a function that composes stages; tracing it gives the graph."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from sparkflow import engines
from sparkflow.dsl import trace as _trace
from sparkflow.dsl.names import check_name
from sparkflow.dsl.trigger import OnNewObjects
from sparkflow.errors import DefinitionError, Origin
from sparkflow.schedules import ACCEPTED_FORMS, ScheduleSyntaxError, parse_schedule

KV_SCHEMES = ("sqlite", "dynamodb", "firestore")


@dataclass(frozen=True)
class Pipeline:
    """A declared pipeline: the function and its options. Decorating records; :meth:`trace` runs it.

    Attributes:
        fn: the user's function; it calls stages and returns the output(s) to keep.
        name: the pipeline's name (state machine and workflow name, storage prefix).
        storage: the storage root URI every run writes under (``s3://``, ``gs://`` or a local folder);
            None until deploy time.
        kv: the KV store URI for small values (``sqlite:///path``, ``dynamodb://table``,
            ``firestore://collection``); None for the default.
        origin: where the pipeline was declared.
        engine: the engine of every stage that does not declare its own ``engine=``; None: each stage's own
            (``spark`` by default).
        schedule: when the deployed pipeline starts a run by itself (``cron(...)`` / ``rate(...)``, checked);
            None: only when started.
        trigger: the deployed pipeline also starts a run for each new object under a source's folder
            (:func:`sparkflow.dsl.trigger.on_new_objects`); None: no such run.
    """

    fn: Callable[[], Any]
    name: str
    storage: str | None
    kv: str | None
    origin: Origin
    engine: str | None = None
    schedule: str | None = None
    trigger: OnNewObjects | None = None

    def trace(self) -> _trace.Trace:
        """Run the pipeline function with a fresh trace and return what it recorded (stage calls carry their
        engine resolved against the pipeline's ``engine=``)."""
        recorded = _trace.Trace(engine=self.engine)
        with _trace.tracing(recorded):
            result = self.fn()
        recorded.finish(result, self.origin, self.name)
        return recorded


@overload
def pipeline(fn: Callable[[], Any], /) -> Pipeline: ...


@overload
def pipeline(
    *,
    name: str | None = None,
    storage: str | None = None,
    kv: str | None = None,
    engine: str | None = None,
    schedule: str | None = None,
    trigger: OnNewObjects | None = None,
) -> Callable[[Callable[[], Any]], Pipeline]: ...


def pipeline(
    fn: Callable[[], Any] | None = None,
    /,
    *,
    name: str | None = None,
    storage: str | None = None,
    kv: str | None = None,
    engine: str | None = None,
    schedule: str | None = None,
    trigger: OnNewObjects | None = None,
) -> Pipeline | Callable[[Callable[[], Any]], Pipeline]:
    """Declare a pipeline. Usable bare (``@sf.pipeline``) or with options.

    Args:
        name: the pipeline's name; the function's name by default.
        storage: where runs write their data, e.g. ``"s3://my-bucket/sparkflow/"``.
        kv: where small values go: ``"sqlite:///path/kv.db"``, ``"dynamodb://table"`` or
            ``"firestore://collection"``; a SQLite file under the run when local, by default.
        engine: ``"spark"``, ``"sail"``, ``"duckdb"`` or ``"auto"``: the engine of every stage that does not declare
            its own ``engine=`` (a stage's own ``engine=`` wins); by default each stage's own (``spark`` unless it
            says otherwise).
        schedule: start a run of the deployed pipeline on a schedule, in UTC, in EventBridge Scheduler's syntax:
            ``"cron(0 3 * * ? *)"`` (six fields) or ``"rate(1 day)"`` (see :mod:`sparkflow.schedules`). ``deploy``
            creates the schedule (AWS: an EventBridge Scheduler schedule; GCP: a Cloud Scheduler job).
        trigger: ``sf.on_new_objects("books")``: each object created under the folder of source ``books`` starts a
            run that reads that object as ``books`` (see :mod:`sparkflow.triggers`). ``deploy`` creates the trigger
            (AWS: an EventBridge rule on S3's events; GCP: an Eventarc trigger).

    Example:
        >>> @pipeline(storage="s3://my-bucket/sparkflow/")
        ... def wordcount():
        ...     return top(counts(words(books)))  # doctest: +SKIP
    """

    def decorate(function: Callable[[], Any]) -> Pipeline:
        code = getattr(function, "__code__", None)
        origin = Origin(code.co_filename, code.co_firstlineno) if code else Origin("<unknown>", 0)
        pipeline_name = check_name(name if name is not None else function.__name__, what="pipeline", origin=origin)
        if storage is not None and (not isinstance(storage, str) or not storage.strip()):
            raise DefinitionError(f"storage={storage!r} must be a URI such as 's3://bucket/prefix/'", origin)
        if kv is not None:
            scheme = kv.split("://", 1)[0] if isinstance(kv, str) and "://" in kv else None
            if scheme not in KV_SCHEMES:
                raise DefinitionError(
                    f"kv={kv!r} is not a KV store URI: use sqlite:///path, dynamodb://table or firestore://collection",
                    origin,
                )
        if engine is not None:
            engines.choice(engine, origin=origin)
        if schedule is not None:
            try:
                parse_schedule(schedule)
            except ScheduleSyntaxError as problem:
                message = f"schedule={schedule!r} is not a schedule: {problem}; {ACCEPTED_FORMS}"
                raise DefinitionError(message, origin) from None
        if trigger is not None and not isinstance(trigger, OnNewObjects):
            raise DefinitionError(
                f"trigger={trigger!r} is not a trigger: use trigger=sf.on_new_objects(source), e.g. "
                "sf.on_new_objects('books') to start a run for each new object under source books' folder",
                origin,
            )
        return Pipeline(function, pipeline_name, storage, kv, origin, engine, schedule, trigger)

    if fn is not None:
        return decorate(fn)
    return decorate
