"""Moving datasets between storage and the engine: bytes move through fsspec to the function's local disk;
Spark reads and writes only local files (pyspark ships no cloud connectors)."""

from __future__ import annotations

import os
from typing import Any

from sparkflow.dsl.source import Source
from sparkflow.errors import InputError
from sparkflow.runtime import storage

_MALFORMED = ("MALFORMED_RECORD_IN_PARSING", "Malformed records are detected")


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


def source_files(source: Source, uri: str) -> list[str]:
    """The data files of a source location (one file, or the visible files of a folder, recursively)."""
    fs, path = storage.filesystem(uri)
    what = f"source {source.name!r}"
    try:
        if fs.isfile(path):
            return [uri]
        if not fs.isdir(path):
            raise InputError(f"{what}: nothing at {uri!r}: check the location or pass another one for this run")
        found = sorted(fs.find(path))
    except (PermissionError, OSError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{what}: cannot read {uri!r}: {error}") from error
    visible = [name for name in found if not any(part.startswith(("_", ".")) for part in name[len(path) :].split("/"))]
    if not visible:
        raise InputError(f"{what}: the folder {uri!r} holds no data files")
    base = uri.rstrip("/")
    return [f"{base}/{name[len(path) :].lstrip('/')}" if storage.is_remote(uri) else name for name in visible]


def read_source(spark: Any, source: Source, uri: str, folder: str) -> Any:
    """A DataFrame over the source at ``uri``; malformed CSV / JSON records fail the read (FAILFAST)."""
    paths = local_copy(source_files(source, uri), folder)
    reader = spark.read
    try:
        if source.format == "text":
            return reader.text(paths)
        if source.format == "parquet":
            return reader.parquet(*paths)
        schema = source.option("schema")
        if source.format == "csv":
            options: dict[str, Any] = {"header": source.option("header", True), "mode": "FAILFAST"}
            if source.option("sep"):
                options["sep"] = source.option("sep")
            if schema:
                return reader.csv(paths, schema=schema, **options)
            return reader.csv(paths, inferSchema=True, **options)
        if schema:
            return reader.json(paths, schema=schema, mode="FAILFAST")
        return reader.json(paths, mode="FAILFAST")
    except Exception as error:  # Spark reads the footer / infers the schema eagerly: a corrupt file fails here
        raise InputError(
            f"source {source.name!r}: cannot read {uri!r} as {source.format}: {_first_line(error)}"
        ) from error


def read_dataset(spark: Any, location: str, folder: str, what: str) -> Any:
    """The committed output of an upstream stage."""
    files = storage.committed_files(location, what)
    paths = local_copy(files, folder)
    if not paths:
        raise InputError(f"{what}: the committed output at {location!r} lists no files")
    return spark.read.parquet(*paths)


def write_dataset(frame: Any, folder: str) -> tuple[str, int]:
    """Write ``frame`` as Parquet into ``folder``; return the folder and the number of rows written."""
    frame.write.mode("overwrite").parquet(folder)
    rows = frame.sparkSession.read.parquet(folder).count()  # from the Parquet footers: no recomputation
    return folder, int(rows)


def is_malformed_record(error: BaseException) -> bool:
    text = str(error)
    return any(marker in text for marker in _MALFORMED)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
