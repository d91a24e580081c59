"""Moving datasets between storage and the engine: bytes move through fsspec to the function's local disk;
Spark reads and writes only local files (pyspark ships no cloud connectors)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sparkflow import compression
from sparkflow.errors import InputError, StorageError
from sparkflow.runtime import failures, storage

if TYPE_CHECKING:
    from sparkflow.plan import PlanSource

_MALFORMED = ("MALFORMED_RECORD_IN_PARSING", "Malformed records are detected")
_CORRUPT = "_sparkflow_corrupt_record"  # the column a PERMISSIVE read puts a record it cannot parse in


def local_copy(uris: list[str], folder: str) -> list[str]:
    """Local paths of ``uris``: local files as they are; remote ones downloaded into ``folder``."""
    paths: list[str] = []
    for index, uri in enumerate(uris):
        fs, path = storage.filesystem(uri)
        if storage.is_local_fs(fs):
            paths.append(path)
            continue
        os.makedirs(folder, exist_ok=True)
        local = os.path.join(folder, f"{index:05d}-{os.path.basename(path.rstrip('/'))}")
        fs.get_file(path, local)
        paths.append(local)
    return paths


def source_files(source: PlanSource, uri: str) -> list[str]:
    """The data files of a source location (one file, or the visible files of a folder, recursively).

    Raises:
        InputError: nothing is there, or a file is of a compression sparkflow does not read (see
            :mod:`sparkflow.compression`): refused before any engine reads a byte.
    """
    what = f"source {source.name!r}"
    found = _listed(uri, what)
    compression.refuse(found, source.format, what, source.origin)
    return found


def _listed(uri: str, what: str) -> list[str]:
    fs, path = storage.filesystem(uri)
    try:
        if fs.isfile(path):
            return [uri]
        if not fs.isdir(path):
            raise InputError(f"{what}: nothing at {uri!r}: check the location or pass another one for this run")
        found = sorted(fs.find(path))
    except PermissionError as error:
        raise InputError(f"{what}: cannot read {uri!r}: {error}") from error
    except OSError as error:
        if isinstance(error, StorageError):
            raise
        raise StorageError(f"{what}: cannot read {uri!r}: {error}") from error
    visible = [name for name in found if not any(part.startswith(("_", ".")) for part in name[len(path) :].split("/"))]
    if not visible:
        raise InputError(f"{what}: the folder {uri!r} holds no data files")
    base = uri.rstrip("/")
    return [f"{base}/{name[len(path) :].lstrip('/')}" if storage.is_remote(uri) else name for name in visible]


def csv_options(source: PlanSource) -> dict[str, Any]:
    """Spark's CSV reader options for ``source``: its header and separator, and RFC 4180 quoting (a quote inside a
    quoted field is written as two quotes, as Python's csv module, pandas, Excel and DuckDB write and read it;
    Spark's own default escape character is a backslash, which misreads such a field)."""
    options: dict[str, Any] = {"header": source.option("header", True), "escape": '"'}
    if source.option("sep"):
        options["sep"] = source.option("sep")
    return options


def read_files(spark: Any, source: PlanSource, paths: list[str], uri: str) -> Any:
    """A DataFrame over ``paths`` (files Spark can open: local ones, or any its connectors read) of ``source``."""
    reader = spark.read
    try:
        if source.format == "text":
            return reader.text(paths)
        if source.format == "parquet":
            return reader.parquet(*paths)
        schema = source.option("schema")
        if source.format == "csv":
            options: dict[str, Any] = {**csv_options(source), "mode": "FAILFAST"}
            if schema:
                return reader.csv(paths, schema=schema, **options)
            return reader.csv(paths, inferSchema=True, **options)
        if schema:
            return reader.json(paths, schema=schema, mode="FAILFAST")
        return reader.json(paths, mode="FAILFAST")
    except Exception as error:  # Spark reads the footer / infers the schema eagerly: a corrupt file fails here
        raise InputError(
            f"source {source.name!r}: cannot read {uri!r} as {source.format}: {failures.first_line(error)}"
        ) from error


def bad_records(spark: Any, source: PlanSource, paths: list[str]) -> list[tuple[str, str]]:
    """(local file, raw record) of every record of CSV / JSON-lines ``paths`` that Spark cannot read into the
    source's schema (the declared one, else the one Spark infers), found by reading them PERMISSIVE with a
    corrupt-record column."""
    from pyspark.sql import functions
    from pyspark.sql.types import StringType, StructField, StructType

    reader = spark.read
    dialect = csv_options(source)
    declared = source.option("schema")
    schema: Any
    if declared:
        schema = StructType.fromDDL(declared)
    elif source.format == "csv":
        schema = reader.csv(paths, inferSchema=True, **dialect).schema
    else:
        schema = reader.json(paths, columnNameOfCorruptRecord=_CORRUPT).schema
    fields = [field for field in schema.fields if field.name != _CORRUPT]
    if not fields:
        if source.format == "csv":
            return []  # no columns (empty files): no record can be bad
        fields = [StructField("_sparkflow_probe", StringType())]  # every line is bad: keep a column beside it
    full = StructType([*fields, StructField(_CORRUPT, StringType())])
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}
    if source.format == "csv":
        frame = reader.csv(paths, schema=full, **dialect, **options)
    else:
        frame = reader.json(paths, schema=full, **options)
    # Every column is computed (hashed): CSV column pruning would otherwise leave a value that does not convert
    # unparsed, and Spark refuses queries of the corrupt-record column alone.
    columns = [functions.col("`" + field.name.replace("`", "``") + "`") for field in fields]
    bad = frame.where(functions.col(_CORRUPT).isNotNull()).select(
        functions.col("_metadata.file_path"), functions.col(_CORRUPT), functions.hash(*columns)
    )
    return [(_local_path(row[0]), row[1]) for row in bad.toLocalIterator()]


def _local_path(uri: str) -> str:
    """``file:/tmp/a%20b.csv`` (how Spark names a file it read) -> ``/tmp/a b.csv``."""
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def dataset_paths(location: str, folder: str, what: str) -> list[str]:
    """Local paths of the committed output of an upstream stage (remote files downloaded into ``folder``)."""
    paths = local_copy(storage.committed_files(location, what), folder)
    if not paths:
        raise InputError(f"{what}: the committed output at {location!r} lists no files")
    return paths


def total_bytes(paths: list[str]) -> int:
    """The bytes of the local files ``paths``: how much a task reads (it picks the Spark JVM's options)."""
    return sum(os.path.getsize(path) for path in paths if os.path.isfile(path))


def write_dataset(frame: Any, folder: str) -> tuple[str, int]:
    """Write ``frame`` as Parquet into ``folder``; return the folder and the number of rows written."""
    frame.write.mode("overwrite").parquet(folder)
    return folder, parquet_rows(folder)


def parquet_rows(folder: str) -> int:
    """The rows of the Parquet files under the local ``folder``, from their footers: no recomputation, and no
    Spark job (reading the folder back with Spark to count it took a third of a small map task)."""
    import pyarrow.parquet as pq

    return sum(
        pq.read_metadata(os.path.join(root, name)).num_rows
        for root, _, names in os.walk(folder)
        for name in names
        if name.endswith(".parquet") and not name.startswith(("_", "."))
    )


def is_malformed_record(error: BaseException) -> bool:
    text = str(error)
    return any(marker in text for marker in _MALFORMED)
