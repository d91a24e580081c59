"""What runs a stage's DataFrame code: the one small interface every engine implements, and how the runtime
starts the engine a task names.

The runtime (:func:`sparkflow.runtime.execute.handle_event`) moves bytes, binds inputs and commits; everything
that depends on the engine — starting it, reading a source or an upstream dataset from local files, writing a
DataFrame as Parquet into a local folder, telling a DataFrame from a value, turning an engine error into one the
user can act on — sits behind :class:`Engine`. Which engines exist, and which class runs each, is the table in
:mod:`sparkflow.engines`: ``spark`` is PySpark in local mode (:mod:`sparkflow.runtime.spark`), ``sail`` the same
code through PySpark's Connect client on Sail (:mod:`sparkflow.runtime.sail_engine`), ``duckdb`` the same code
translated by sqlframe to DuckDB (:mod:`sparkflow.runtime.duckdb_engine`).
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import AbstractContextManager, nullcontext
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from sparkflow import engines as registry
from sparkflow.errors import EngineUnsupported, EnvironmentProblem, InputError, SparkflowError
from sparkflow.runtime import failures, storage

if TYPE_CHECKING:
    from sparkflow.plan import PlanSource


class Engine(Protocol):
    """One engine's reading, writing and error handling, bound to its (process-wide, reused) session."""

    name: str

    def read_source(self, source: PlanSource, uri: str, folder: str) -> Any:
        """A DataFrame over the source at ``uri`` (copied to ``folder`` first when remote)."""

    def bad_records(self, source: PlanSource, paths: list[str]) -> list[tuple[str, str]]:
        """(file, raw record) of every record of the local CSV / JSON-lines files ``paths`` that this engine cannot
        read into the source's schema (see :mod:`sparkflow.runtime.records`); a record may appear more than once."""

    def read_dataset(self, location: str, folder: str, what: str) -> Any:
        """A DataFrame over the committed output of an upstream stage."""

    def write(self, frame: Any, folder: str) -> tuple[str, int]:
        """Write ``frame`` as Parquet files into ``folder``; return the folder and the number of rows."""

    def write_partitioned(self, frame: Any, column: str, folder: str) -> int:
        """Write ``frame`` into ``folder/<column>=<value>/`` Parquet files (a shuffle); return the rows written."""

    def write_attempt(self, frame: Any, work: str, scratch: str, attempt: str) -> tuple[list[tuple[str, int]], int]:
        """Write a stage's output as the attempt ``attempt`` under the node's work folder ``work`` (``scratch``: a
        local folder it may use); return the attempt's files (relative to ``work``, with sizes) and its rows."""

    def functions(self) -> Any:
        """The engine's ``pyspark.sql.functions`` module (for the shuffle's key hash)."""

    def is_dataframe(self, value: Any) -> bool:
        """Whether a stage returned one of this engine's DataFrames."""

    def explain(self, error: BaseException, stage: Any, sources: str) -> SparkflowError | None:
        """The error to show instead of ``error`` (a corrupt input, an API the engine lacks), or None."""

    @staticmethod
    def unsupported(error: BaseException) -> str | None:
        """The API that ``error`` says this engine lacks (``functions.udf``), or None: also for errors raised while
        the pipeline module is imported, before any session exists."""


class LocalFiles:
    """How an engine that writes local files writes an attempt: into the task's scratch folder, then uploaded."""

    def write(self, frame: Any, folder: str) -> tuple[str, int]:
        raise NotImplementedError

    def write_attempt(self, frame: Any, work: str, scratch: str, attempt: str) -> tuple[list[tuple[str, int]], int]:
        folder, rows = self.write(frame, os.path.join(scratch, "out"))
        return storage.upload_attempt(folder, work, attempt), rows


class SparkEngine(LocalFiles):
    """PySpark in local mode: one SparkSession per process (see :mod:`sparkflow.runtime.spark`)."""

    name = "spark"

    def __init__(self, memory_mb: int, module: ModuleType | None) -> None:
        self.memory_mb, self.module = memory_mb, module
        self._session: Any = None

    @property
    def session(self) -> Any:
        return self._start(0)

    def _start(self, input_bytes: int) -> Any:
        """The SparkSession, started on first use: a process's first read starts it knowing how much the task
        reads, which picks the JVM's compiler (see :data:`sparkflow.runtime.spark.LARGE_INPUT_BYTES`)."""
        if self._session is None:
            from sparkflow.runtime import spark

            self._session = spark.session(self.memory_mb, input_bytes)
            if self.module is not None:
                spark.ship_module(self.module)
        return self._session

    def read_source(self, source: PlanSource, uri: str, folder: str) -> Any:
        """A DataFrame over the source at ``uri``; malformed CSV / JSON records fail the read (FAILFAST)."""
        from sparkflow.runtime import datasets

        paths = datasets.local_copy(datasets.source_files(source, uri), folder)
        return datasets.read_files(self._start(datasets.total_bytes(paths)), source, paths, uri)

    def bad_records(self, source: PlanSource, paths: list[str]) -> list[tuple[str, str]]:
        from sparkflow.runtime import datasets

        return datasets.bad_records(self.session, source, paths)

    def read_dataset(self, location: str, folder: str, what: str) -> Any:
        from sparkflow.runtime import datasets

        paths = datasets.dataset_paths(location, folder, what)
        return self._start(datasets.total_bytes(paths)).read.parquet(*paths)

    def write(self, frame: Any, folder: str) -> tuple[str, int]:
        from sparkflow.runtime import datasets

        return datasets.write_dataset(frame, folder)

    def write_partitioned(self, frame: Any, column: str, folder: str) -> int:
        from sparkflow.runtime import datasets

        frame.write.mode("overwrite").partitionBy(column).parquet(folder)
        return datasets.parquet_rows(folder)  # no files, no rows: a chunk of bad records only, or in a long record

    def functions(self) -> Any:
        from pyspark.sql import functions

        return functions

    def is_dataframe(self, value: Any) -> bool:
        from pyspark.sql import DataFrame

        return isinstance(value, DataFrame)

    def explain(self, error: BaseException, stage: Any, sources: str) -> SparkflowError | None:
        from sparkflow.runtime import datasets

        return corrupt_record(stage, sources, error) if datasets.is_malformed_record(error) else None

    @staticmethod
    def unsupported(error: BaseException) -> str | None:
        return None  # Spark is the reference: what it cannot run, no engine runs


#: What a stage that an engine cannot run should do instead.
ON_SPARK = 'run this stage on Spark: @sf.stage(engine="spark"), or `sparkflow run --engine spark`'


def corrupt_record(stage: Any, sources: str, error: BaseException) -> InputError:
    """The error for a record of a stage's input that the engine could not parse (``error``)."""
    return InputError(
        f"stage {stage.name!r}: a corrupt record in its input ({sources}): {failures.first_line(error)}; "
        "fix or remove the record"
    )


def cannot_run(engine: str, api: str, stage: Any, error: BaseException) -> EngineUnsupported:
    """The error for ``api``, which ``engine`` cannot run, met while ``stage`` ran: at the user's line that made the
    call (else the stage's), suggesting Spark."""
    origin = failures.line_in(error, stage.origin.file) or stage.origin
    message = f"stage {stage.name!r}: the {engine} engine cannot run {api} ({failures.first_line(error)}); {ON_SPARK}"
    return EngineUnsupported(message, origin)


# The process-wide turn of each engine whose tasks take turns (see EngineSpec.one_task_at_a_time).
_TURNS = {name: threading.RLock() for name, spec in registry.ENGINES.items() if spec.one_task_at_a_time}
_PREPARED: list[str] = []  # the engine this process was prepared for, once it is
_LOCK = threading.Lock()


def one_task_at_a_time(name: str) -> AbstractContextManager[Any]:
    """What a task on engine ``name`` holds for as long as it runs (read, the stage's code, write): the engine's
    process-wide turn when its tasks take turns, nothing for an engine whose session runs the tasks of several
    threads at once (Spark, Sail). DuckDB takes turns: the process has one sqlframe session on one connection, which
    refuses a second call while one runs ("connection is busy"), and sqlframe binds its DataFrames to that session.
    Threads serving tasks at once (a Cloud Run service with concurrency above 1) then take turns; tasks in parallel
    take several processes (instances, or `sparkflow run`'s workers)."""
    return _TURNS.get(name) or nullcontext()


def prepare(name: str) -> None:
    """Make this process engine ``name``'s, before the pipeline module is imported (see
    :attr:`~sparkflow.engines.EngineSpec.prepare`); nothing for an engine that shares the process. Preparing it
    again does nothing; preparing a process for a second engine is refused."""
    spec = registry.runtime_engine(name)
    if spec.prepare is None:
        return
    with _LOCK:
        if _PREPARED and _PREPARED[0] != name:
            raise EnvironmentProblem(
                f"this process runs engine {_PREPARED[0]!r}; it cannot also run engine {name!r} (a process runs one "
                "engine whose PySpark imports it changes)"
            )
        _load(spec.prepare)()
        _PREPARED[:] = [name]


def prepared() -> str | None:
    """The engine this process was prepared for (:func:`prepare`), or None: a process of engines that share it."""
    return _PREPARED[0] if _PREPARED else None


def runs_here(name: str) -> bool:
    """Whether a task on engine ``name`` can run in this process: an engine that needs a process of its own only in
    the process prepared for it; the others only in a process prepared for none."""
    return prepared() == (name if registry.runtime_engine(name).own_process else None)


def unsupported_api(name: str, error: BaseException) -> str | None:
    """The API that ``error`` says engine ``name`` lacks (e.g. ``functions.udf``), or None: the engine's own reading
    of its errors (its runtime class's ``unsupported``)."""
    reader: Any = _load(registry.runtime_engine(name).runtime)
    found: str | None = reader.unsupported(error)
    return found


def session_for_import() -> None:
    """Start this process's engine session now: the pipeline module's own code needs one while it is imported (a
    module-level ``@F.udf("string")``: PySpark parses a DDL return type with a live session). The engine is the one
    the process was prepared for, else Spark; the session keeps the default stage memory for the process's life."""
    from sparkflow.dsl.stage import DEFAULT_MEMORY_MB

    started: Any = start(prepared() or registry.DEFAULT, DEFAULT_MEMORY_MB, "")
    _ = started.session


def start(name: str, memory_mb: int, pipeline_module: str) -> Engine:
    """The engine ``name``, started (or reused warm) for a stage of ``memory_mb`` from ``pipeline_module``; an
    engine this runtime does not have is an error, not Spark."""
    spec = registry.runtime_engine(name)
    engine: Engine = _load(spec.runtime)(memory_mb, sys.modules.get(pipeline_module))
    return engine


def _load(target: str) -> Any:
    """The object ``module:attribute`` names, its module imported now."""
    import importlib

    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
