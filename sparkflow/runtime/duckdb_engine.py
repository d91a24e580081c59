"""The ``duckdb`` engine: the user's unchanged PySpark DataFrame code, run by sqlframe on DuckDB (no JVM).

Why: a Spark stage pays seconds of JVM and SparkSession start-up and ships ~490 MB of pyspark; the same code on
sqlframe's DuckDB session starts in well under a second in ~120 MiB, and DuckDB + sqlframe fit a plain Lambda zip.

**Activation, and why it is per process.** A pipeline module says ``from pyspark.sql import DataFrame, functions
as F``; ``F.col(...)`` must build sqlframe columns when the stage runs on DuckDB. sqlframe's ``activate("duckdb")``
points ``pyspark.sql`` (and its submodules) at sqlframe in ``sys.modules``, so modules imported *afterwards* bind
sqlframe's classes and functions, while modules imported before keep real PySpark. One module object cannot be
both, and swapping ``sys.modules`` back and forth while Spark runs in other threads would race with PySpark's own
lazy imports. So a process is either a PySpark process or a DuckDB process, decided before the pipeline module
(and the user's helper modules) are imported:

* **deployed** (:mod:`sparkflow.runtime.deployed`): a function serving duckdb stages has ``SPARKFLOW_ENGINE=duckdb``
  in its environment; :func:`activate` runs before the pipeline is loaded, and every stage it serves runs on DuckDB.
* **local** (``sparkflow run``, :func:`sparkflow.runtime.local.run_plan`): the CLI process loads the pipeline with
  real PySpark (Spark stages run there, in threads sharing one SparkSession). Each duckdb stage — declared with
  ``@sf.stage(engine="duckdb")`` or forced by ``--engine duckdb`` — is sent to a
  :class:`~sparkflow.runtime.duckdb_workers.WorkerPool` of worker
  processes started with ``SPARKFLOW_ENGINE=duckdb``: each activates sqlframe, loads the same pipeline, and runs
  events through the very same :func:`~sparkflow.runtime.execute.handle_event`, one at a time, keeping its
  DuckDB session warm for the next event. Spark and DuckDB stages of one pipeline thus mix freely, and
  storage, commit and the KV store are shared as between cloud functions.

A process that was not activated refuses to run a duckdb stage with an :class:`EnvironmentProblem` saying so,
instead of failing somewhere inside sqlframe. Operations DuckDB (through sqlframe) cannot run raise
:class:`EngineUnsupported`, naming the API and the user's line, and suggesting ``engine="spark"``.

Storage formats are the Spark engine's: text (one ``value`` row per line; sqlframe has no ``read.text``, so lines
are split by Arrow into a Parquet copy, :func:`_text_lines`), CSV with header / sep / schema, JSON lines, Parquet;
outputs are written as one Parquet file in the output folder, which the runtime uploads and commits as it does Spark's
part files. Compressed inputs are read as Spark reads them (:mod:`sparkflow.compression`): text is decompressed as it
is split into lines; DuckDB's CSV and JSON readers decompress ``.gz`` and ``.zst`` themselves, and files of the other
compressions (bzip2, zlib) are decompressed into the task's scratch folder first.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sparkflow import compression
from sparkflow.engines import ENGINES
from sparkflow.errors import EnvironmentProblem, InputError, SparkflowError
from sparkflow.runtime import failures
from sparkflow.runtime.engines import LocalFiles, cannot_run, corrupt_record
from sparkflow.runtime.protocol import ENGINE_VARIABLE

if TYPE_CHECKING:  # execute imports the engines: at run time this module imports it lazily
    from sparkflow.plan import PlanSource

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"active": False, "session": None, "close_at_exit": False}
# DuckDB errors that mean the generated SQL uses something DuckDB lacks (not bad data). A BinderException is the
# user's mistake instead (see _USER_MISTAKES): a column that does not exist, a function given the wrong types.
_UNSUPPORTED_DUCKDB = ("CatalogException", "BinderException", "ParserException", "NotImplementedException")
_USER_MISTAKES = ("BinderException",)
# DuckDB errors of its file readers: a corrupt CSV / JSON record or a value that does not fit the schema.
# A cast DuckDB does not implement (its error and message), which Spark does: TIMESTAMP WITH TIME ZONE to BIGINT.
_CAST_MISSING = ("ConversionException", "Unimplemented type for cast")
_MALFORMED = ("CSV Error", "Error when sniffing file", "Malformed JSON", "JSON transform error", "Could not convert")
# Text is split into lines in blocks of this many bytes (the memory a text read holds at once).
_TEXT_BLOCK = 32 * 1024 * 1024
# The compressions DuckDB's CSV and JSON readers decompress themselves (under .gz and .zst); files of the others are
# decompressed into the task's scratch folder first. Text is read through _text_lines, which decompresses them all.
_READS = ("gzip", "zstd")


def activate() -> None:
    """Make ``pyspark.sql`` imports resolve to sqlframe's DuckDB modules from now on, in this whole process.

    Call it before the pipeline module is imported (see the module docs); calling it again does nothing.
    """
    with _LOCK:
        if _STATE["active"]:
            return
        from sqlframe import activate as sqlframe_activate

        sqlframe_activate("duckdb")
        _STATE["active"] = True


def is_active() -> bool:
    """Whether this process runs PySpark DataFrame code on DuckDB."""
    return bool(_STATE["active"])


def session(memory_mb: int) -> Any:
    """The process's sqlframe DuckDB session, created on first use (which decides its memory) and kept warm."""
    with _LOCK:
        if _STATE["session"] is not None:
            return _STATE["session"]
        from sqlframe.duckdb import DuckDBSession

        from sparkflow.runtime import duckdb_semantics

        duckdb_semantics.install()
        created = DuckDBSession.builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
        spill = os.path.join(tempfile.gettempdir(), f"sparkflow-duckdb-{os.getpid()}")
        connection = created._conn
        connection.execute(f"SET memory_limit = '{max(256, int(memory_mb * ENGINES['duckdb'].memory_share))}MB'")
        connection.execute("SET temp_directory = ?", [spill])  # not the working directory: read-only on Lambda
        connection.execute("SET preserve_insertion_order = true")
        _STATE["session"] = created
        if not _STATE["close_at_exit"]:
            atexit.register(close)
            _STATE["close_at_exit"] = True
        return created


def close() -> None:
    """Close the process's DuckDB session and drop every reference to it; the next :func:`session` makes a new one.

    Registered with :mod:`atexit` when the session is made: atexit runs before the interpreter tears its modules
    down, and a DuckDB connection still alive then makes duckdb's nanobind bindings print ``nanobind: leaked N
    instances`` (and types, functions) on stderr when the process ends — after pytest, or a script that ran a
    pipeline through :func:`sparkflow.runtime.local.run_plan`. (Processes that leave through
    :func:`sparkflow.runtime.shutdown.exit_now` skip finalization and never print it.)
    """
    with _LOCK:
        created, _STATE["session"] = _STATE["session"], None
        if created is None:
            return
        udfs = getattr(created, "_udf_conn", None)  # sqlframe's cursor for its SOUNDEX function
        if udfs is not None:
            udfs.close()
        created.stop()  # closes the connection and forgets sqlframe's singleton session


class DuckDBEngine(LocalFiles):
    """Reading, writing and errors of the duckdb engine (the :class:`~sparkflow.runtime.engines.Engine` interface)."""

    name = "duckdb"

    def __init__(self, memory_mb: int, module: ModuleType | None = None) -> None:
        if not is_active():
            raise EnvironmentProblem(
                "a stage with engine 'duckdb' needs a process whose PySpark imports resolve to sqlframe: set "
                f"{ENGINE_VARIABLE}=duckdb where the function is deployed (the pipeline must be loaded after "
                "activation), or run it with `sparkflow run`, which starts DuckDB workers itself"
            )
        self.session = session(memory_mb)

    def read_source(self, source: PlanSource, uri: str, folder: str) -> Any:
        """A DataFrame over a source, read as Spark's engine reads it (see :func:`datasets.read_source`)."""
        from sparkflow.runtime import datasets

        paths = datasets.local_copy(datasets.source_files(source, uri), folder)
        reader = self.session.read
        try:
            if source.format == "text":
                return self._text(paths, folder)
            if source.format == "parquet":
                return self._parquet(paths, folder)
            paths = compression.readable(paths, folder, _READS)
            # The schema as DuckDB's column types: sqlframe splits a DDL string at every comma, 'DECIMAL(10,2)' too.
            declared = source.option("schema")
            columns = _duckdb_columns(declared) if declared else None
            if source.format == "csv":
                options = _csv_options(source)
                reader = reader.options(**_EACH_FILE_SNIFFED)
                return reader.csv(paths, schema=columns, **options) if columns else reader.csv(paths, **options)
            if columns:
                # DuckDB's JSON reader converts to the declared types itself and fails on a value that does not
                # convert, as Spark's does (sqlframe alone reads the inferred types and TRY_CASTs them to NULL).
                return reader.load(paths, format="json", schema=columns, columns=columns)
            frame = reader.json(paths)  # DuckDB detects JSON lines (Spark's default layout) by itself
            # Spark's JSON schema inference orders fields by name; DuckDB keeps the order of first appearance.
            return frame.select(*sorted(frame.columns))
        except Exception as error:  # DuckDB sniffs the schema eagerly: a corrupt file fails here
            raise InputError(
                f"source {source.name!r}: cannot read {uri!r} as {source.format}: {failures.first_line(error)}"
            ) from error

    def bad_records(self, source: PlanSource, paths: list[str]) -> list[tuple[str, str]]:
        """Records DuckDB cannot read: the rows its CSV reader rejects (``store_rejects``), or JSON lines that are
        not valid JSON, not an object, or hold a value that does not convert to the declared type."""
        if source.format == "csv":
            return self._bad_csv(source, paths)
        return self._bad_json(source, paths)

    def _bad_csv(self, source: PlanSource, paths: list[str]) -> list[tuple[str, str]]:
        """The rows DuckDB's CSV reader rejects, file by file: each file sniffed on its own, as reads do
        (:data:`_EACH_FILE_SNIFFED`, which DuckDB's rejects tables do not support)."""
        options = _csv_options(source)
        schema = source.option("schema")
        if schema:
            options["columns"] = _duckdb_columns(schema)
        found: list[tuple[str, str]] = []
        connection = self.session._conn.cursor()  # its own: the session's connection may hold an open result
        scratch = tempfile.TemporaryDirectory(prefix="sparkflow-duckdb-csv-")  # files DuckDB cannot decompress
        try:
            for original, path in zip(paths, compression.readable(paths, scratch.name, _READS), strict=True):
                suffix = uuid.uuid4().hex
                errors, scans = f"sparkflow_rejects_{suffix}", f"sparkflow_scans_{suffix}"
                rejects = {**options, "store_rejects": True, "rejects_table": errors, "rejects_scan": scans}
                arguments = ", ".join(f"{key} = {_literal(value)}" for key, value in rejects.items())
                # hash(row) reads every column: a count alone would let DuckDB skip converting the values.
                scan = f"SELECT count(hash(row)) FROM read_csv({_literal(path)}, {arguments}) AS row"
                connection.execute(scan).fetchall()
                lines = connection.execute(
                    f"SELECT error.csv_line FROM {errors} AS error JOIN {scans} AS scan "
                    "USING (scan_id, file_id) ORDER BY ALL"
                ).fetchall()
                found += [(original, str(line)) for (line,) in lines]
        finally:
            connection.close()  # and with it the rejects tables, temporary tables of this cursor
            scratch.cleanup()
        return found

    def _bad_json(self, source: PlanSource, paths: list[str]) -> list[tuple[str, str]]:
        import pyarrow as pa

        checks = ["NOT json_valid(line)", "TRY(json_type(line)) IS DISTINCT FROM 'OBJECT'"]
        schema = source.option("schema")
        for column, kind in (_duckdb_columns(schema) if schema else {}).items():
            value = f"TRY(json_extract(line, {_literal('$.' + json.dumps(column))}))"
            checks.append(
                f"({value} IS NOT NULL AND json_type({value}) <> 'NULL' AND TRY_CAST({value} AS {kind}) IS NULL)"
            )
        arrow = pa.schema([("path", pa.string()), ("line", pa.string())])
        lines = pa.RecordBatchReader.from_batches(arrow, _line_batches(paths, arrow))
        name = f"sparkflow_lines_{uuid.uuid4().hex}"
        connection = self.session._conn.cursor()  # its own: the session's connection may hold an open result
        try:
            connection.register(name, lines)
            found = connection.execute(
                f"SELECT path, line FROM {name} WHERE trim(line) <> '' AND ({' OR '.join(checks)})"
            ).fetchall()
        finally:
            connection.close()
        return [(str(path), str(line)) for path, line in found]

    def read_dataset(self, location: str, folder: str, what: str) -> Any:
        from sparkflow.runtime import datasets

        return self._parquet(datasets.dataset_paths(location, folder, what), folder)

    def write(self, frame: Any, folder: str) -> tuple[str, int]:
        """Write ``frame`` as one Parquet file into ``folder``; rows are counted from its footer."""
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "part-00000.parquet")
        frame.write.mode("overwrite").parquet(path)
        # fetchall, not fetchone: a result not fetched to its end keeps the connection busy for the next query
        ((rows,),) = self.session._conn.execute("SELECT count(*) FROM read_parquet(?)", [path]).fetchall()
        return folder, int(rows)

    def write_partitioned(self, frame: Any, column: str, folder: str) -> int:
        """One DuckDB COPY with PARTITION_BY: Hive-style ``column=value/`` folders, as Spark writes them.

        The chunk's rows go through Arrow (a chunk fits memory by construction) because the SQL sqlframe
        generates for file reads cannot always be embedded in a COPY statement.
        """
        os.makedirs(folder, exist_ok=True)
        rows = frame.toArrow()
        name = f"sparkflow_bucketed_{uuid.uuid4().hex}"
        target = folder.replace("'", "''")
        connection = self.session._conn
        connection.register(name, rows)
        try:
            connection.execute(
                f"COPY {name} TO '{target}' (FORMAT PARQUET, PARTITION_BY ({column}), OVERWRITE_OR_IGNORE)"
            )
        finally:
            connection.unregister(name)
        return int(rows.num_rows)

    def functions(self) -> Any:
        from sqlframe.duckdb import functions

        return functions

    def is_dataframe(self, value: Any) -> bool:
        from sqlframe.base.dataframe import BaseDataFrame

        return isinstance(value, BaseDataFrame)

    @staticmethod
    def unsupported(error: BaseException) -> str | None:
        return unsupported_api(error)

    def explain(self, error: BaseException, stage: Any, sources: str) -> SparkflowError | None:
        if isinstance(error, SparkflowError):
            return None
        if type(error).__name__ in ("InvalidInputException", "ConversionException") and any(
            marker in str(error) for marker in _MALFORMED
        ):
            return corrupt_record(stage, sources, error)
        if type(error).__name__ in _USER_MISTAKES:
            return None  # the stage's own failure, with DuckDB's message (it names the column and suggests others)
        api = unsupported_api(error)
        return None if api is None else cannot_run(self.name, api, stage, error)

    def _text(self, paths: list[str], folder: str) -> Any:
        """One ``value`` row per line, as Spark's text reader gives them, through a Parquet copy of the lines.

        DuckDB's READ_TEXT holds a file as one string, and splitting that string takes time that grows much
        faster than its size (8 MiB: 0.2 s, 32 MiB: 7.6 s); blocks split by Arrow stay linear.
        """
        os.makedirs(folder, exist_ok=True)
        lines = [
            _text_lines(path, os.path.join(folder, f"lines-{index:05d}.parquet")) for index, path in enumerate(paths)
        ]
        return self._parquet(lines, folder)

    def _parquet(self, paths: list[str], folder: str) -> Any:
        """One DataFrame over Parquet ``paths``: a single ``read_parquet([...])``.

        Not ``read.parquet(*paths)``: sqlframe makes that a union of one read per file, and the plan it copies
        for each union grows with it (50 files: 4.9 s before the query starts; one read of all 50: 0.04 s). A
        reduce task reads one file per map task. sqlframe puts the paths into its SQL as they are, where a quote
        ends the string (and doubling it makes two strings), so a path with one is read through a link.
        """
        import hashlib

        named = []
        for path in paths:
            if "'" in path:
                os.makedirs(folder, exist_ok=True)
                digest = hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:24]
                link = os.path.join(folder, f"quoted-{digest}.parquet")  # one name per path: reused safely
                if not os.path.lexists(link):
                    os.symlink(os.path.abspath(path), link)
                path = link
            named.append(path)
        return self.session.read.load(named, format="parquet")


def _text_lines(path: str, target: str) -> str:
    """Write the lines of the text file ``path`` to the Parquet file ``target`` (column ``value``); return it.

    A compressed file (``.gz``, ``.bz2``, ...: :mod:`sparkflow.compression`) is decompressed as it is read, block by
    block, as Spark's text reader decompresses it: DuckDB's READ_TEXT would give its compressed bytes.

    Lines end at ``\n``, ``\r\n`` or ``\r``, as in Spark; the end of the file ends the last line without adding
    an empty one; undecodable bytes become U+FFFD, as Spark's UTF-8 decoding does. A block that is valid UTF-8 is
    split as it is, without a copy, and on ``\n`` alone when it holds no ``\r`` (a regular-expression split takes
    several times longer); the copy is written uncompressed, since it lives only as long as the task.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pa.schema([("value", pa.string())])

    def split(data: bytes) -> Any:
        if data.endswith(b"\r"):  # the end of the part ends its last line (a \r\n split by the cut, or the file's end)
            data = data[:-1]
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", "replace").encode("utf-8")
        offsets = pa.array([0, len(data)], pa.int32()).buffers()[1]
        text = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])
        parts = pc.split_pattern_regex(text, "\r\n|\r|\n") if b"\r" in data else pc.split_pattern(text, "\n")
        return pa.table({"value": pc.list_flatten(parts)}, schema=schema)

    with (
        compression.open_decompressed(path) as handle,
        pq.ParquetWriter(target, schema, compression="none", use_dictionary=False) as writer,
    ):
        rest = b""
        while block := handle.read(_TEXT_BLOCK):
            data = rest + block
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            writer.write_table(split(data[:cut]))
            rest = data[cut + 1 :]
        if rest:
            writer.write_table(split(rest))
    return target


# Each file of a read sniffed on its own (line ends, quoting). Without it DuckDB reads every file with what it found
# in the first: of a folder whose files end lines with '\n' in one and '\r\n' in the next, the later files' rows
# were silently lost.
_EACH_FILE_SNIFFED = {"union_by_name": True}


def _csv_options(source: PlanSource) -> dict[str, Any]:
    options: dict[str, Any] = {"header": bool(source.option("header", True))}
    if source.option("sep"):
        options["sep"] = source.option("sep")
    return options


def _duckdb_columns(ddl: str) -> dict[str, str]:
    """A Spark DDL schema (``"id INT, tags ARRAY<STRING>"``) as DuckDB column types, for DuckDB's readers."""
    from sqlglot import exp

    struct = exp.DataType.build(f"STRUCT<{ddl}>", dialect="spark")
    columns = {column.name: column.args["kind"].sql("duckdb") for column in struct.expressions}
    if not columns:
        raise InputError(f"schema {ddl!r} is not a schema DuckDB can read: write it as 'name TYPE, ...'")
    return columns


def _literal(value: Any) -> str:
    """``value`` as a DuckDB literal: a string, a boolean, or a struct of strings (read_csv's ``columns``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(key)}: {_literal(item)}" for key, item in value.items()) + "}"
    return "'" + str(value).replace("'", "''") + "'"


def _line_batches(paths: list[str], schema: Any, size: int = 65536) -> Iterator[Any]:
    """The lines of ``paths`` as Arrow batches of (path, line), decompressed by extension, without terminators."""
    import pyarrow as pa

    for path in paths:
        with compression.open_decompressed(path) as handle:
            batch: list[str] = []
            for raw in handle:
                batch.append(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
                if len(batch) == size:
                    yield pa.record_batch([[path] * len(batch), batch], schema=schema)
                    batch = []
            if batch:
                yield pa.record_batch([[path] * len(batch), batch], schema=schema)


def unsupported_api(error: BaseException) -> str | None:
    """The DataFrame API that ``error`` says the engine lacks (e.g. ``functions.udf``), or None."""
    from sqlframe.base.exceptions import UnsupportedOperationError

    if isinstance(error, AttributeError) and error.name:
        owner = error.obj
        module = getattr(owner, "__name__", None) if isinstance(owner, type(sys)) else type(owner).__module__
        if module and module.split(".", 1)[0] in ("sqlframe", "pyspark"):
            label = module.rsplit(".", 1)[-1] if isinstance(owner, type(sys)) else _public(type(owner).__name__)
            return f"{label}.{error.name}"
        return None
    if isinstance(error, NotImplementedError | UnsupportedOperationError):
        frames = failures.tracebacks(error.__traceback__)
        inside = [frame for frame in frames if "sqlframe" in frame.tb_frame.f_code.co_filename.split(os.sep)]
        if not inside:
            return type(error).__name__
        innermost = inside[-1].tb_frame
        if innermost.f_code.co_qualname.endswith("Column.__call__"):
            # sqlframe reads an unknown DataFrame attribute as a column: df.mapInPandas(...) calls that column.
            column = getattr(innermost.f_locals.get("self"), "expression", None)
            return f"DataFrame.{getattr(column, 'alias_or_name', '?')}"
        return _public(innermost.f_code.co_qualname)
    from_duckdb = type(error).__module__.startswith(("duckdb", "_duckdb"))
    if from_duckdb and type(error).__name__ == _CAST_MISSING[0] and _CAST_MISSING[1] in str(error):
        return "Column.cast"  # a cast Spark has and DuckDB lacks: a timestamp to a number (Spark: epoch seconds)
    if type(error).__name__ in _UNSUPPORTED_DUCKDB and from_duckdb:
        return "this DataFrame code as DuckDB SQL"
    return None


def _public(name: str) -> str:
    """``_BaseDataFrame.rdd`` / ``DuckDBDataFrame.rdd`` -> ``DataFrame.rdd``: the name PySpark users know."""
    for prefix in ("_Base", "DuckDB", "Base"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name
