"""The ``sail`` engine: the user's unchanged PySpark code, run through PySpark's own Spark Connect client by Sail, a
Spark Connect server written in Rust (pysail) that starts inside this process. No JVM.

Why: a Spark stage pays seconds of JVM and SparkSession start-up; Sail starts in about a second and runs PySpark's
own DataFrame, SQL and UDF API (Python UDFs, pandas UDFs, windows), so nothing is translated on our side.

**Preparation, and why it is per process.** PySpark's functions decide between their classic and their Connect
implementation when they are called, from the environment (``SPARK_CONNECT_MODE_ENABLED``): a module-level
``@F.udf`` in the user's module builds a classic UDF, which a Connect session cannot run, unless the variable is set
before the module is imported. So a process is a Sail process from :func:`prepare` on (see
:attr:`sparkflow.engines.EngineSpec.prepare`): deployed functions prepare it from ``SPARKFLOW_ENGINE=sail`` before
loading the pipeline, and ``sparkflow run`` sends sail stages to worker processes (:mod:`sparkflow.runtime.workers`).

One server and one session per process, started on first use on 127.0.0.1 with an ephemeral port, and kept for warm
invocations. Its spill files and checkpoints go under the system temporary folder (``/tmp`` on Lambda); its own log
lines are off unless ``RUST_LOG`` asks for them.

Where Sail reads differently from Spark, reads are made to agree (docs/engines.md lists each rule with its test):
JSON lines without a schema are read with Spark's inferred schema (fields sorted by name, no ``void`` columns), folders
mixing compressions (and plain files) are read one compression at a time (Sail refuses a read that mixes them; a CSV
or JSON read that infers its schema reads them decompressed instead, so that one schema comes from all the files),
zlib's ``.deflate`` files (which Sail does not decompress) are decompressed first, CSV integer columns that fit 32
bits are ``int``, as Spark infers them, and Parquet's legacy INT96 timestamps are ``timestamp``, as Spark reads them.
An empty result is written as one Parquet file with its columns, as Spark writes it. What Sail cannot run raises
:class:`~sparkflow.errors.EngineUnsupported`, naming the API and the user's line, and suggesting Spark.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sparkflow import compression
from sparkflow.engines import ENGINES
from sparkflow.errors import EngineUnsupported, EnvironmentProblem, InputError, SparkflowError
from sparkflow.runtime import failures, sail_semantics
from sparkflow.runtime.engines import ON_SPARK, LocalFiles, cannot_run, corrupt_record
from sparkflow.runtime.protocol import ENGINE_VARIABLE

if TYPE_CHECKING:
    from sparkflow.plan import PlanSource

#: What makes PySpark's functions build Spark Connect objects (pyspark.sql.utils.is_remote).
CONNECT_MODE_VARIABLE = "SPARK_CONNECT_MODE_ENABLED"
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"prepared": False, "server": None, "session": None}
# Errors of Sail's readers on a record they cannot parse (Spark's FAILFAST reads fail the same way).
_MALFORMED = ("Json error", "Csv error", "Cast error", "Parser error", "Failed to parse")
# The compressions Sail's readers decompress themselves (under .gz, .bz2 and .zst; files of one read must share one);
# files of the others (zlib's .deflate) are decompressed into the task's scratch folder first.
_READS = ("gzip", "bzip2", "zstd")


def prepare() -> None:
    """Make this process a Spark Connect one: PySpark's functions, UDF decorators included, build Connect objects
    from now on. Call it before the pipeline module is imported (see the module docs); again, it does nothing."""
    with _LOCK:
        if _STATE["prepared"]:
            return
        os.environ[CONNECT_MODE_VARIABLE] = "1"
        _STATE["prepared"] = True


def is_prepared() -> bool:
    return bool(_STATE["prepared"])


def session(memory_mb: int) -> Any:
    """The process's Spark Connect session on its Sail server, started on first use (which decides its memory) and
    kept warm; started again if the server stopped."""
    with _LOCK:
        server = _STATE["server"]
        if _STATE["session"] is not None and server is not None and server.running:
            return _STATE["session"]
        scratch = os.path.join(tempfile.gettempdir(), f"sparkflow-sail-{os.getpid()}")
        os.makedirs(os.path.join(scratch, "spill"), exist_ok=True)  # Sail refuses to start a session without it
        budget = max(256, int(memory_mb * ENGINES["sail"].memory_share)) * 1024**2
        os.environ.setdefault("RUST_LOG", "error")  # Sail's server logs its start and stop at INFO
        # Sail reads its configuration from SAIL_* variables when the server starts.
        os.environ.update(
            {
                "SAIL_RUNTIME__MEMORY_POOL__TYPE": "fair",
                "SAIL_RUNTIME__MEMORY_POOL__FAIR__MAX_SIZE": str(budget),
                "SAIL_RUNTIME__TEMPORARY_FILES__PATHS": f'["{scratch}/spill"]',
                "SAIL_EXECUTION__CHECKPOINT__PATH": f"file://{scratch}/checkpoints/",
            }
        )
        from pysail.spark import SparkConnectServer
        from pyspark.sql.connect.client.retries import DefaultPolicy

        # PySpark's Connect session itself: the generic builder refuses one in a process that also runs a classic
        # session (tests compare the two side by side).
        from pyspark.sql.connect.session import SparkSession

        server = SparkConnectServer(ip="127.0.0.1", port=0)
        server.start(background=True)
        host, port = server.listening_address
        created = (
            SparkSession.builder.remote(f"sc://{host}:{port}").config("spark.sql.session.timeZone", "UTC").getOrCreate()
        )
        # The server is in this process: a refused connection means it is gone, and waiting (PySpark's default
        # policy waits up to ten minutes for a remote server) cannot bring it back.
        created.client.set_retry_policies([DefaultPolicy(max_retries=2, initial_backoff=50, max_backoff=200)])
        sail_semantics.install(created)  # Spark's values and types where Sail's differ (see that module)
        _STATE["server"] = server  # the server stops when this object is collected
        _STATE["session"] = created
        return created


class SailEngine(LocalFiles):
    """Reading, writing and errors of the sail engine (the :class:`~sparkflow.runtime.engines.Engine` interface)."""

    name = "sail"

    def __init__(self, memory_mb: int, module: ModuleType | None = None) -> None:
        if not is_prepared():
            raise EnvironmentProblem(
                "a stage with engine 'sail' needs a process prepared for Spark Connect before the pipeline is "
                f"loaded: set {ENGINE_VARIABLE}=sail where the function is deployed, or run it with `sparkflow run`, "
                "which starts Sail workers itself"
            )
        self.session = session(memory_mb)
        if module is not None:
            from sparkflow.runtime import spark

            spark.ship_module(module)  # UDFs of a module loaded from a file are pickled by value

    def read_source(self, source: PlanSource, uri: str, folder: str) -> Any:
        """A DataFrame over the source at ``uri``, read as the Spark engine reads it (see the module docs)."""
        from sparkflow.runtime import datasets

        paths = datasets.local_copy(datasets.source_files(source, uri), folder)
        try:
            if source.format == "parquet":
                return _spark_int96(datasets.read_files(self.session, source, paths, uri), paths)
            infers = source.format != "text" and not source.option("schema")
            groups = _by_compression(compression.readable(paths, folder, _decompressing(paths, infers)))
            if source.format == "text":
                return _union([self.session.read.text(group) for group in groups])
            if source.format == "json" and not source.option("schema"):
                (files,) = groups  # one read infers the schema (see _decompressing)
                schema = _spark_json_schema(self.session.read.json(files).schema)
                if not schema.fields:
                    return self.session.read.json(files)
                return self.session.read.json(files, schema=schema, mode="FAILFAST")
            frame = _union([datasets.read_files(self.session, source, group, uri) for group in groups])
            if source.format == "csv" and not source.option("schema"):
                frame = _spark_csv_integers(frame)
            return frame
        except InputError:
            raise
        except Exception as error:  # Sail infers schemas eagerly: a corrupt file fails here
            raise InputError(
                f"source {source.name!r}: cannot read {uri!r} as {source.format}: {failures.first_line(error)}"
            ) from error

    def bad_records(self, source: PlanSource, paths: list[str]) -> list[tuple[str, str]]:
        """JSON lines Sail cannot read into the source's schema: not valid JSON, not an object, or holding a value
        that does not convert to its column's type (Sail has no PERMISSIVE reader: each line is parsed with
        ``from_json`` against the schema). CSV sources are refused: Sail has no reader that keeps bad rows."""
        if source.format != "json":
            raise EngineUnsupported(
                f"source {source.name!r}: the sail engine cannot find bad CSV records (on_bad_record="
                f"{source.on_bad_record!r} needs a reader that keeps them); {ON_SPARK}",
                source.origin,
            )
        from pyspark.sql import functions as F
        from pyspark.sql.types import StructType

        declared = source.option("schema")
        with tempfile.TemporaryDirectory(prefix="sparkflow-sail-json-") as scratch:
            readable = compression.readable(paths, scratch, _decompressing(paths, not declared))
            schema: Any = (
                StructType.fromDDL(declared)
                if declared
                else _spark_json_schema(self.session.read.json(readable).schema)
            )
            parsed = F.from_json("value", schema)
            checks = [F.get_json_object("value", "$").isNull(), ~F.trim("value").startswith("{")]
            for field in schema.fields:
                raw = F.get_json_object("value", "$." + field.name)
                checks.append(raw.isNotNull() & (raw != "null") & parsed[field.name].isNull())
            bad = checks[0]
            for check in checks[1:]:
                bad = bad | check
            found: list[tuple[str, str]] = []
            for path, local in zip(paths, readable, strict=True):  # one read per file: Sail has no _metadata.file_path
                lines = self.session.read.text(local).where(F.trim("value") != "")
                found += [(path, row[0]) for row in lines.where(bad).select("value").collect()]
            return found

    def read_dataset(self, location: str, folder: str, what: str) -> Any:
        from sparkflow.runtime import datasets

        paths = datasets.dataset_paths(location, folder, what)
        return _spark_int96(self.session.read.parquet(*paths), paths)

    def write(self, frame: Any, folder: str) -> tuple[str, int]:
        """Write ``frame`` as Parquet into ``folder``; an empty result is one file with its columns and no rows, as
        Spark writes it (Sail writes no file, and readers would see no columns)."""
        import pyarrow.parquet as pq

        from sparkflow.runtime import datasets

        written, rows = datasets.write_dataset(frame, folder)
        os.makedirs(folder, exist_ok=True)
        if rows == 0 and not any(name.endswith(".parquet") for name in os.listdir(folder)):
            pq.write_table(frame.limit(0).toArrow(), os.path.join(folder, "part-00000.parquet"))
        return written, rows

    def write_partitioned(self, frame: Any, column: str, folder: str) -> int:
        from sparkflow.runtime import datasets

        frame.write.mode("overwrite").partitionBy(column).parquet(folder)
        return datasets.parquet_rows(folder)

    def functions(self) -> Any:
        from pyspark.sql import functions

        return functions

    def is_dataframe(self, value: Any) -> bool:
        from pyspark.sql.connect.dataframe import DataFrame

        return isinstance(value, DataFrame)

    @staticmethod
    def unsupported(error: BaseException) -> str | None:
        return unsupported_api(error)

    def explain(self, error: BaseException, stage: Any, sources: str) -> SparkflowError | None:
        if isinstance(error, SparkflowError):
            return None
        if type(error).__name__ == "SparkRuntimeException" and any(marker in str(error) for marker in _MALFORMED):
            return corrupt_record(stage, sources, error)
        api = unsupported_api(error)
        return None if api is None else cannot_run(self.name, api, stage, error)


_NOT_IMPLEMENTED = re.compile(r"\[NOT_IMPLEMENTED\] (\w+) is not implemented")
_JVM_ATTRIBUTE = re.compile(r"\[JVM_ATTRIBUTE_NOT_SUPPORTED\] Attribute `(\w+)`")
_UNKNOWN_FUNCTION = re.compile(r"unknown function: (\w+)")
# DataFusion (under Sail 0.7.2) names an aggregate of a cast like the aggregate of the column itself (apache/datafusion
# issue 18975): sum(x) beside sum(x.cast("int")) in one agg() collide on an internal name (with a "#" id).
_SAME_NAMED_AGGREGATES = re.compile(r'duplicate unqualified field name "[^"]*#')


def unsupported_api(error: BaseException) -> str | None:
    """The PySpark API that ``error`` says Sail (or PySpark's Connect client) lacks, or None.

    PySpark's Connect client refuses what needs a JVM (``DataFrame.rdd``, ``SparkSession.sparkContext``); Sail's
    server answers ``UnsupportedOperationException`` for a function or plan it does not implement. A function
    Sail does not know that PySpark does not have either is the user's mistake, not the engine's.
    """
    kind, text = type(error).__name__, str(error)
    if kind in ("PySparkNotImplementedError", "PySparkAttributeError"):
        found = _NOT_IMPLEMENTED.search(text) or _JVM_ATTRIBUTE.search(text)
        name = found.group(1) if found else "?"
        return f"{_owner(error) or 'DataFrame'}.{name}"
    if kind == "AnalysisException" and _SAME_NAMED_AGGREGATES.search(text):
        return "two aggregates of one column in one agg(), one of them over a cast of it (sum(x) and sum(x.cast(...)))"
    if kind == "UnsupportedOperationException":
        unknown = _UNKNOWN_FUNCTION.search(text)
        if unknown:
            from pyspark.sql import functions

            return f"functions.{unknown.group(1)}" if hasattr(functions, unknown.group(1)) else None
        return text.strip().splitlines()[0] if text.strip() else kind
    return None


def _owner(error: BaseException) -> str | None:
    """The PySpark class whose method refused: the innermost frame of PySpark's Connect client on the way."""
    owners = [
        tb.tb_frame.f_code.co_qualname.split(".")[0]
        for tb in failures.tracebacks(error.__traceback__)
        if f"{os.sep}pyspark{os.sep}sql{os.sep}connect{os.sep}" in tb.tb_frame.f_code.co_filename
    ]
    return owners[-1] if owners else None


def _decompressing(paths: list[str], infers: bool) -> tuple[str, ...]:
    """The compressions Sail decompresses itself in a read of ``paths``: none when the read infers its schema and the
    files mix compressions (Spark infers one schema from all the files; Sail reads one compression per read, so such
    files are read decompressed, in one read), else those it reads."""
    return () if infers and len(_by_compression(paths)) > 1 else _READS


def _by_compression(paths: list[str]) -> list[list[str]]:
    """``paths`` grouped by compression (Sail reads one compression per read), in their order of first appearance."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        found = compression.of(path)
        groups.setdefault(found.name if found else "", []).append(path)
    return list(groups.values())


def _union(frames: list[Any]) -> Any:
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def _spark_json_schema(inferred: Any) -> Any:
    """The schema Spark infers for JSON lines, from the one Sail infers: fields sorted by name at every level, and a
    column whose values are all null a string (Sail: ``void``)."""
    from pyspark.sql.types import ArrayType, MapType, NullType, StringType, StructField, StructType

    def spark(kind: Any) -> Any:
        if isinstance(kind, StructType):
            fields = sorted(kind.fields, key=lambda field: field.name)
            return StructType([StructField(field.name, spark(field.dataType), True) for field in fields])
        if isinstance(kind, ArrayType):
            return ArrayType(spark(kind.elementType), True)
        if isinstance(kind, MapType):
            return MapType(kind.keyType, spark(kind.valueType), True)
        return StringType() if isinstance(kind, NullType) else kind

    return spark(inferred)


def _spark_int96(frame: Any, paths: list[str]) -> Any:
    """``frame`` (Parquet ``paths``) with its INT96 columns as Spark reads them: Spark's legacy timestamps are UTC
    instants (``timestamp``), which Sail reads as local date-times (``timestamp_ntz``) of the same digits."""
    import pyarrow.parquet as pq

    legacy = {
        column.path for path in paths for column in pq.ParquetFile(path).schema if column.physical_type == "INT96"
    }
    if not legacy:
        return frame
    from pyspark.sql import functions as F

    return frame.select(
        *[
            F.col(f"`{name}`").cast("timestamp").alias(name) if name in legacy else F.col(f"`{name}`")
            for name in frame.columns
        ]
    )


def _spark_csv_integers(frame: Any) -> Any:
    """``frame`` (a CSV read with an inferred schema) with each ``bigint`` column whose values all fit 32 bits as
    ``int``: Spark infers the narrowest integer type, Sail always 64 bits."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType

    longs = [field.name for field in frame.schema.fields if isinstance(field.dataType, LongType)]
    if not longs:
        return frame
    limits = frame.select(
        *[F.min(F.col(f"`{name}`")).alias(f"min{index}") for index, name in enumerate(longs)],
        *[F.max(F.col(f"`{name}`")).alias(f"max{index}") for index, name in enumerate(longs)],
    ).first()
    narrow = {
        name
        for index, name in enumerate(longs)
        if all(value is None or -(2**31) <= value < 2**31 for value in (limits[f"min{index}"], limits[f"max{index}"]))
    }
    if not narrow:
        return frame
    return frame.select(
        *[
            F.col(f"`{name}`").cast("int").alias(name) if name in narrow else F.col(f"`{name}`")
            for name in frame.columns
        ]
    )
