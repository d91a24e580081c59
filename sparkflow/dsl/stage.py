"""``@sf.stage``: a plain PySpark function that the compiler may run on its own function or on chunks."""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from sparkflow import engines
from sparkflow.dsl import trace as _trace
from sparkflow.dsl.names import check_name
from sparkflow.errors import DefinitionError, Origin
from sparkflow.units import parse_duration, parse_size

P = ParamSpec("P")
R = TypeVar("R")

OUTPUTS = ("dataset", "value")
# Where a stage may run: ``auto`` lets the compiler choose (a function when it fits one); ``function`` is a
# Lambda / Cloud Run request, ``container`` an ECS Fargate task / Cloud Run job, ``serverless-spark`` an EMR
# Serverless job run / Dataproc Serverless batch (Spark on a cluster, for inputs no single machine holds).
PLACEMENTS = ("auto", "function", "container", "serverless-spark")
DEFAULT_MEMORY_MB = 2048
DEFAULT_TIMEOUT_S = 900
DEFAULT_RETRIES = 2
_VALUE_ANNOTATIONS = {"int", "float", "str", "bool", "dict", "list"}


@dataclass(frozen=True)
class StageOptions:
    """Everything a stage declares, parsed and checked once.

    Attributes:
        partition: ``whole`` (runs on its entire input), ``rows`` (any split of the input is fine) or ``key``
            (rows with equal ``partition_by`` values must meet in one task).
        partition_by: the key columns when ``partition == "key"``.
        memory_mb: memory of the function that runs it.
        timeout_s: how long one run may take.
        retries: how often a failed run is retried (besides the provider's own retries of throttling).
        engine: what runs the DataFrame code.
        output: ``dataset`` (a DataFrame, stored as Parquet) or ``value`` (a small JSON value, stored in the KV store).
        chunk_size: bytes per chunk when the input is split, or None to derive it.
        placement: where it runs (one of ``PLACEMENTS``); ``auto`` lets the compiler's place pass decide.
        engine_declared: whether the stage itself says ``engine=``; if not, its pipeline's ``engine=`` (when it
            has one) replaces ``engine`` when the pipeline is traced (see :meth:`Stage.in_pipeline`).
        retry_on: exception types of the stage's own code worth another attempt (up to ``retries``); any other
            exception it raises fails the stage at once (see :mod:`sparkflow.runtime.failures`).
        combine: for a ``key`` stage, how its map tasks' partial results merge: a function DataFrame -> DataFrame
            (the merge), True (the stage's own function again), or False (no combining: map tasks shuffle rows).
    """

    partition: str = "whole"
    partition_by: tuple[str, ...] = ()
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: int = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    engine: str = engines.DEFAULT
    output: str = "dataset"
    chunk_size: int | None = None
    placement: str = "auto"
    engine_declared: bool = False
    retry_on: tuple[type[BaseException], ...] = ()
    combine: Callable[[Any], Any] | bool = False


class Stage(Generic[P, R]):
    """A decorated stage: still the user's function, plus what the decorator recorded.

    Outside a pipeline, calling it runs the function (so stage logic is unit-testable on a small DataFrame).
    While a pipeline is being traced, calling it records a node and returns a placeholder for its output.
    """

    def __init__(self, fn: Callable[P, R], name: str, options: StageOptions, origin: Origin) -> None:
        self.fn = fn
        self.name = name
        self.options = options
        self.origin = origin
        self.signature = inspect.signature(fn)
        self.__wrapped__ = fn
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)
        self.__qualname__ = getattr(fn, "__qualname__", name)
        self.__module__ = getattr(fn, "__module__", __name__)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        active = _trace.current()
        if active is None:
            return self.fn(*args, **kwargs)
        # A placeholder, typed as R so that user code type-checks exactly like a plain call.
        return cast(R, active.record(self, args, kwargs, depth=2))

    def __repr__(self) -> str:
        return f"<sparkflow stage {self.name!r} at {self.origin}>"

    def merge_function(self) -> Callable[..., Any] | None:
        """What merges the partial results of this stage's map tasks: its ``combine=`` function, its own function
        (``combine=True``), or None (it declares no combining)."""
        combine = self.options.combine
        if combine is True:
            return self.fn
        return combine if callable(combine) else None

    def merge_origin(self) -> Origin:
        """Where the merge is declared: its function's first line, or the stage's (``combine=True``)."""
        merge = self.merge_function()
        if merge is None or merge is self.fn:
            return self.origin
        return _function_origin(merge, self.origin)

    def merging(self) -> Stage[..., Any]:
        """This stage as its merge runs: same name and options, the merge's function and origin, so that a failure
        inside ``combine=`` is reported at the merge's lines (see :mod:`sparkflow.runtime.failures`)."""
        merge = self.merge_function()
        if merge is None or merge is self.fn:
            return self
        view: Stage[..., Any] = copy.copy(self)
        view.fn, view.origin = merge, self.merge_origin()
        with contextlib.suppress(TypeError, ValueError):  # a builtin without a signature keeps the stage's
            view.signature = inspect.signature(merge)
        return view

    def in_pipeline(self, engine: str | None) -> Stage[P, R]:
        """This stage as a pipeline whose default engine is ``engine`` runs it: the stage's own ``engine=`` wins;
        otherwise a copy (same function, same name) with ``engine`` as its engine. Resolved once, when the
        pipeline is traced, so the compiler and the runtime see the same engine."""
        options = self.options
        # A serverless-spark stage runs Spark on a cluster, whatever engine its pipeline prefers.
        kept = options.engine_declared or options.placement == "serverless-spark"
        if engine is None or kept or options.engine == engine:
            return self
        resolved = copy.copy(self)
        resolved.options = replace(options, engine=engine)
        return resolved


@overload
def stage(fn: Callable[P, R], /) -> Stage[P, R]: ...


@overload
def stage(
    *,
    name: str | None = None,
    partition: str | None = None,
    partition_by: str | Sequence[str] | None = None,
    memory: str | int | None = None,
    timeout: str | int | None = None,
    retries: int | None = None,
    engine: str | None = None,
    output: str | None = None,
    chunk_size: str | int | None = None,
    placement: str | None = None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    combine: Callable[[Any], Any] | bool | None = None,
) -> Callable[[Callable[P, R]], Stage[P, R]]: ...


def stage(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    partition: str | None = None,
    partition_by: str | Sequence[str] | None = None,
    memory: str | int | None = None,
    timeout: str | int | None = None,
    retries: int | None = None,
    engine: str | None = None,
    output: str | None = None,
    chunk_size: str | int | None = None,
    placement: str | None = None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    combine: Callable[[Any], Any] | bool | None = None,
) -> Stage[P, R] | Callable[[Callable[P, R]], Stage[P, R]]:
    """Declare a stage. Usable bare (``@sf.stage``) or with options (``@sf.stage(memory="4GB")``).

    Args:
        name: the stage's name; the function's name by default.
        partition: ``"rows"`` if any split of the input rows gives the same result, ``"whole"`` (default)
            if the stage needs its entire input in one task.
        partition_by: column(s) whose equal values must meet in one task (a group-by or join key).
        memory: memory of the function that runs the stage, e.g. ``"2GB"`` (default 2 GB).
        timeout: how long one run may take, e.g. ``"15m"`` (default 15 minutes).
        retries: how often a failed run is retried (default 2) after a failure another attempt may cure (storage,
            throttling, a lost worker, a timeout). The stage's own exceptions fail it at once: retrying the same
            code on the same input fails the same way.
        engine: ``"spark"`` (default), ``"sail"`` (the same PySpark code on Sail, a Spark Connect server in Rust: no
            JVM, fast cold start), ``"duckdb"`` (the same code translated by sqlframe to DuckDB SQL) or ``"auto"``
            (the compiler runs it on Sail unless its code uses an API where Sail's answer differs from Spark's, on
            Spark then); see docs/engines.md for what each runs and where they differ.
        output: ``"dataset"`` or ``"value"``; by default read from the return annotation
            (``-> DataFrame`` is a dataset; ``-> int``, ``float``, ``str``, ``bool``, ``dict``, ``list`` a value).
        chunk_size: bytes per chunk when the input is split, e.g. ``"256MB"`` (derived when omitted).
        placement: ``"auto"`` (default: a function when the stage fits one, else a container, else serverless
            Spark), or force ``"function"``, ``"container"`` (ECS Fargate / Cloud Run job) or
            ``"serverless-spark"`` (EMR Serverless / Dataproc Serverless; the whole stage runs on a Spark
            cluster, even a partitioned one).
        retry_on: exception type(s) of the stage's own code that another attempt may cure (e.g. a flaky service it
            calls: ``retry_on=ConnectionError``); retried up to ``retries``.
        combine: with ``partition_by=``, combine before the shuffle (as Spark's partial aggregation does): each map
            task runs the stage on its chunk and shuffles only those partial results by key, and each reduce task
            runs ``combine`` -- a function DataFrame -> DataFrame -- on the union of its bucket's partial results.
            ``combine=True`` re-applies the stage's own function (right for ``groupBy(k).agg(F.max("x").alias("x"))``,
            whose output has its input's columns). It must hold that ``stage(A ∪ B) == combine(stage(A) ∪ stage(B))``
            for any split of the rows, and the stage's output must keep its ``partition_by`` columns;
            ``sparkflow verify`` checks both on sample data. A stage run whole is unchanged: only the stage runs.
            One input only (a join has nothing to combine).

    Example:
        >>> @stage(partition_by="word", memory="1GB")
        ... def counts(words):
        ...     return words.groupBy("word").count()

        Counting before the shuffle: the partial counts of each chunk are summed.

        >>> @stage(partition_by="word", combine=lambda partials: partials.groupBy("word").agg(
        ...     F.sum("count").alias("count")))
        ... def counts(words):
        ...     return words.groupBy("word").count()
    """

    def decorate(function: Callable[P, R]) -> Stage[P, R]:
        code = getattr(function, "__code__", None)
        origin = Origin(code.co_filename, code.co_firstlineno) if code else Origin("<unknown>", 0)
        if not callable(function) or isinstance(function, Stage):
            raise DefinitionError("@sf.stage must decorate a plain function", origin)
        stage_name = check_name(name if name is not None else function.__name__, what="stage", origin=origin)
        options = _parse_options(
            function,
            origin,
            partition=partition,
            partition_by=partition_by,
            memory=memory,
            timeout=timeout,
            retries=retries,
            engine=engine,
            output=output,
            chunk_size=chunk_size,
            placement=placement,
            retry_on=retry_on,
            combine=combine,
        )
        return Stage(function, stage_name, options, origin)

    if fn is not None:
        return decorate(fn)
    return decorate


def _parse_options(
    function: Callable[..., Any],
    origin: Origin,
    *,
    partition: str | None,
    partition_by: str | Sequence[str] | None,
    memory: str | int | None,
    timeout: str | int | None,
    retries: int | None,
    engine: str | None,
    output: str | None,
    chunk_size: str | int | None,
    placement: str | None,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    combine: Callable[[Any], Any] | bool | None = None,
) -> StageOptions:
    if partition is not None and partition_by is not None:
        raise DefinitionError("give either partition= or partition_by=, not both", origin)
    if partition is not None and partition not in ("rows", "whole"):
        raise DefinitionError(
            f"partition={partition!r} is not known: use 'rows' (any split is fine) or 'whole'; "
            "for key-local stages use partition_by='column'",
            origin,
        )
    keys: tuple[str, ...] = ()
    if partition_by is not None:
        keys = (partition_by,) if isinstance(partition_by, str) else tuple(partition_by)
        if not keys or not all(isinstance(key, str) and key for key in keys):
            raise DefinitionError(
                f"partition_by={partition_by!r} must be a column name or a list of column names", origin
            )
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10):
        raise DefinitionError(f"retries={retries!r} must be a whole number from 0 to 10", origin)
    chosen = engines.choice(engine, origin=origin) if engine is not None else None
    spec = engines.ENGINES.get(chosen) if chosen is not None else None  # auto: Spark on a cluster
    if placement is not None and placement not in PLACEMENTS:
        raise DefinitionError(f"placement={placement!r} is not known; use one of: {', '.join(PLACEMENTS)}", origin)
    if placement == "serverless-spark" and spec is not None and not spec.runs_on_clusters:
        raise DefinitionError(
            f"placement='serverless-spark' runs Spark on a cluster: drop engine={engine!r} or choose another placement",
            origin,
        )
    if output is not None and output not in OUTPUTS:
        raise DefinitionError(f"output={output!r} is not known; use 'dataset' or 'value'", origin)
    retried = () if retry_on is None else retry_on if isinstance(retry_on, tuple) else (retry_on,)
    if not all(isinstance(kind, type) and issubclass(kind, BaseException) for kind in retried):
        raise DefinitionError(
            f"retry_on={retry_on!r} must be an exception class or a tuple of them, e.g. retry_on=ConnectionError",
            origin,
        )
    _check_combine(combine, keys, origin)
    return StageOptions(
        partition="key" if keys else (partition or "whole"),
        partition_by=keys,
        memory_mb=DEFAULT_MEMORY_MB
        if memory is None
        else -(-parse_size(memory, field="memory", origin=origin) // 1024**2),
        timeout_s=DEFAULT_TIMEOUT_S if timeout is None else parse_duration(timeout, field="timeout", origin=origin),
        retries=DEFAULT_RETRIES if retries is None else retries,
        engine=engine or engines.DEFAULT,
        output=output or _output_from_annotation(function),
        chunk_size=None if chunk_size is None else parse_size(chunk_size, field="chunk_size", origin=origin),
        placement=placement or "auto",
        engine_declared=engine is not None,
        retry_on=retried,
        combine=combine if combine is not None else False,
    )


def _check_combine(combine: Callable[[Any], Any] | bool | None, keys: tuple[str, ...], origin: Origin) -> None:
    """``combine=`` is a function of one DataFrame or True, on a stage declared ``partition_by=``."""
    if combine is None or combine is False:
        return
    if combine is not True and not callable(combine):
        raise DefinitionError(
            f"combine={combine!r} must be a function DataFrame -> DataFrame that merges partial results (e.g. "
            'combine=lambda partials: partials.groupBy("word").agg(F.sum("count").alias("count"))), or True to '
            "apply the stage's own function again",
            origin,
        )
    if not keys:
        raise DefinitionError(
            "combine= merges the partial results of a stage's map tasks by key, so it needs partition_by=: declare "
            "partition_by='<column>' (the column it groups by), or remove combine=",
            origin,
        )
    if combine is not True:
        try:
            inspect.signature(combine).bind(object())
        except TypeError:
            raise DefinitionError(
                f"combine= function ({_function_origin(combine, origin)}) must take one argument, the DataFrame of "
                "partial results, and return the merged DataFrame",
                origin,
            ) from None
        except ValueError:  # a builtin without a signature: it is called with one DataFrame anyway
            pass


def _function_origin(function: Callable[..., Any], fallback: Origin) -> Origin:
    """Where ``function`` is defined (a lambda: the line it is written on), else ``fallback``."""
    code = getattr(function, "__code__", None)
    return Origin(code.co_filename, code.co_firstlineno) if code else fallback


def _output_from_annotation(function: Callable[..., Any]) -> str:
    """``value`` when the return annotation names a small JSON type, else ``dataset``."""
    annotation = inspect.signature(function).return_annotation
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    base = text.split("[", 1)[0].strip()
    return "value" if base in _VALUE_ANNOTATIONS else "dataset"
