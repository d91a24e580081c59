"""Reading results without knowing where sparkflow put them: a run's stage outputs and a pipeline's sinks.

A run's output folder holds exactly its committed Parquet files (see :mod:`sparkflow.runtime.storage`), so any
Parquet reader can read it; this module finds the folder for you and reads it through the commit manifest:
the newest run that published (the pipeline's ``_latest.json``) unless a run id is given, a stage by its node
id, a sink by its name (Parquet folder or Delta table).

>>> import sparkflow as sf
>>> table = sf.read_output("examples/wordcount/pipeline.py", "top")       # doctest: +SKIP
>>> frame = sf.read_output(wordcount, "top", storage=".sparkflow", pandas=True)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from sparkflow.errors import SparkflowError
from sparkflow.layout import node_location, run_location

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from sparkflow.dsl.pipeline import Pipeline

DEFAULT_STORAGE = ".sparkflow"  # where `sparkflow run` writes unless told otherwise


class ResultError(SparkflowError, LookupError):
    """The output asked for does not exist (yet): no such node, run or sink, or nothing committed."""


@dataclass(frozen=True)
class Result:
    """Where one result is and how to read it.

    Attributes:
        name: the node id or sink name.
        kind: ``output`` (a stage's output in a run), ``value`` (a value stage's result) or ``sink``.
        uri: the output folder, or the sink's table.
        format: ``parquet`` or ``delta``.
        run_id: the run it comes from (for sinks: the newest run that published, when known).
        files: an output's committed files (absolute URIs).
        rows: rows, when the manifest records them.
        value: a value stage's result.
    """

    name: str
    kind: str
    uri: str
    format: str = "parquet"
    run_id: str | None = None
    files: tuple[str, ...] = ()
    rows: int | None = None
    value: Any = None


def locate(
    pipeline: Pipeline | str,
    name: str,
    *,
    storage: str | None = None,
    run_id: str | None = None,
) -> Result:
    """Find ``name`` (a node id or sink name) of ``pipeline`` (a Pipeline, a pipeline file / module spec, or a run
    folder such as ``.sparkflow/wordcount/20261202T...``).

    Args:
        storage: the storage root (default: ``.sparkflow``, where ``sparkflow run`` writes).
        run_id: the run; default: the newest run that published (``_latest.json``).

    Raises:
        ResultError: no such node, sink or run, or the output is not committed.
    """
    from sparkflow.runtime import storage as store

    if isinstance(pipeline, str) and _is_run_folder(pipeline):
        if run_id is not None:
            raise ResultError(f"{pipeline!r} is a run folder: it names its run; drop --run-id")
        folder = pipeline.rstrip("/")
        return _output(name, store.join(folder, name), os.path.basename(folder), None)
    loaded = _load(pipeline)
    root = storage or DEFAULT_STORAGE
    if not store.is_remote(root):
        root = os.path.abspath(root)
    trace = loaded.trace()
    if name in trace.sinks:
        return _sink(loaded, name, root, trace)
    if name not in trace.calls:
        known = ", ".join([*trace.calls, *trace.sinks])
        raise ResultError(f"pipeline {loaded.name!r} has no stage or sink {name!r} (it has: {known})")
    chosen = run_id or _latest_run(loaded.name, root)
    if not _exists(run_location(root, loaded.name, chosen)):
        raise ResultError(f"there is no run {chosen!r} of pipeline {loaded.name!r} under {root}")
    return _output(name, node_location(root, loaded.name, chosen, name).rstrip("/"), chosen, trace)


@overload
def read_output(
    pipeline: Pipeline | str,
    name: str,
    *,
    storage: str | None = None,
    run_id: str | None = None,
    limit: int | None = None,
    pandas: Literal[False] = False,
) -> pyarrow.Table: ...


@overload
def read_output(
    pipeline: Pipeline | str,
    name: str,
    *,
    storage: str | None = None,
    run_id: str | None = None,
    limit: int | None = None,
    pandas: Literal[True],
) -> pandas.DataFrame: ...


def read_output(
    pipeline: Pipeline | str,
    name: str,
    *,
    storage: str | None = None,
    run_id: str | None = None,
    limit: int | None = None,
    pandas: bool = False,
) -> Any:
    """The rows of a stage's output or a sink as a pyarrow Table (a pandas DataFrame with ``pandas=True``).

    Args:
        pipeline: a Pipeline, a pipeline file or module (``module:attribute``), or a run folder.
        name: a node id (a stage's output) or a sink's name.
        storage: the storage root (default: ``.sparkflow``, where ``sparkflow run`` writes); ``s3://`` and
            ``gs://`` work too.
        run_id: the run (default: the newest run that published).
        limit: at most this many rows.
        pandas: return a pandas DataFrame.

    Raises:
        ResultError: no such node, sink or run; a value stage (its value is :func:`locate`'s ``value``).
    """
    found = locate(pipeline, name, storage=storage, run_id=run_id)
    if found.kind == "value":
        raise ResultError(
            f"{name!r} is a value stage: its result is {found.value!r}, not a table "
            "(sparkflow.results.locate(...).value holds it)"
        )
    table = read_table(found, limit)
    return table.to_pandas() if pandas else table


def read_table(found: Result, limit: int | None = None) -> pyarrow.Table:
    """The rows of a located output or sink, at most ``limit`` of them."""
    import pyarrow as pa

    if found.format == "delta":
        from deltalake import DeltaTable

        from sparkflow.runtime.publish import delta_storage_options

        table = DeltaTable(found.uri.rstrip("/"), storage_options=delta_storage_options(found.uri))
        read: pa.Table = table.to_pyarrow_table()
        return read if limit is None else read.slice(0, limit)
    if found.kind == "sink":
        return _read_folder(found, limit)
    batches = list(_batches(found.files, limit))
    if not batches:
        return pa.table({})
    table = pa.Table.from_batches(batches)
    return table if limit is None else table.slice(0, limit)


def _batches(files: tuple[str, ...], limit: int | None) -> Iterator[Any]:
    """Record batches of Parquet files, one file at a time until ``limit`` rows were read (remote files are
    fetched one by one into a temporary folder)."""
    import pyarrow.parquet as pq

    from sparkflow.runtime import storage as store

    seen = 0
    schema = None
    with tempfile.TemporaryDirectory(prefix="sparkflow-show-") as scratch:
        for index, uri in enumerate(files):
            fs, path = store.filesystem(uri)
            local = path
            if not store.is_local_fs(fs):
                local = os.path.join(scratch, f"{index:05d}.parquet")
                fs.get_file(path, local)
            table = pq.read_table(local)
            schema = schema or table.schema
            for batch in table.cast(schema).to_batches():
                yield batch
                seen += batch.num_rows
            if limit is not None and seen >= limit:
                return


def _read_folder(found: Result, limit: int | None) -> pyarrow.Table:
    """A Parquet sink as readers see it: every visible ``*.parquet`` under it, ``column=value/`` folders read as
    columns (Hive partitioning, as pyarrow and Spark read them)."""
    import pyarrow.dataset as ds

    from sparkflow.runtime import storage as store

    fs, path = store.filesystem(found.uri)
    fs.invalidate_cache()
    root = path.rstrip("/")
    try:
        names = sorted(name for name in fs.find(path) if name.endswith(".parquet"))
    except FileNotFoundError:
        names = []
    relative = [name[len(root) :].lstrip("/") for name in names]
    visible = [item for item in relative if not any(part.startswith(("_", ".")) for part in item.split("/"))]
    if not visible:
        raise ResultError(f"sink {found.name!r} has no data at {found.uri!r}: no run has published to it yet")
    with tempfile.TemporaryDirectory(prefix="sparkflow-show-") as scratch:
        folder = root
        if not store.is_local_fs(fs):
            folder = scratch
            for item in visible:
                os.makedirs(os.path.dirname(os.path.join(scratch, item)), exist_ok=True)
                fs.get_file(f"{root}/{item}", os.path.join(scratch, item))
        dataset = ds.dataset(
            [os.path.join(folder, item) for item in visible],
            format="parquet",
            partitioning="hive",
            partition_base_dir=folder,
        )
        table = dataset.to_table()
    return table if limit is None else table.slice(0, limit)


def _output(name: str, location: str, run_id: str, trace: Any) -> Result:
    from sparkflow.runtime import storage as store

    manifest = store.read_manifest(location)
    if manifest is None:
        raise ResultError(
            f"{name!r} has no committed output at {location!r}: the stage did not finish in run {run_id!r}"
        )
    if manifest.get("kind") == "value":
        return Result(name, "value", location, "value", run_id, value=manifest.get("value"))
    files = tuple(store.join(location, file) for file in manifest["files"])
    return Result(name, "output", location, "parquet", run_id, files, manifest.get("rows"))


def _sink(pipeline: Pipeline, name: str, root: str, trace: Any) -> Result:
    from sparkflow.dsl.sink import sink_uri
    from sparkflow.runtime import storage as store
    from sparkflow.runtime.publish import latest_location

    declared, _, _ = trace.sinks[name]
    uri = sink_uri(declared.uri, root)
    latest = store.read_json(latest_location(root, pipeline.name))
    run_id = latest.get("run_id") if isinstance(latest, dict) else None
    return Result(name, "sink", uri, declared.format, run_id)


def _latest_run(pipeline: str, root: str) -> str:
    from sparkflow.runtime import storage as store
    from sparkflow.runtime.publish import latest_location

    latest = store.read_json(latest_location(root, pipeline))
    if not isinstance(latest, dict) or "run_id" not in latest:
        raise ResultError(
            f"no run of pipeline {pipeline!r} has finished under {root}: run it (sparkflow run), point --storage "
            "at where it ran, or pass --run-id"
        )
    return str(latest["run_id"])


def _load(pipeline: Pipeline | str) -> Pipeline:
    if not isinstance(pipeline, str):
        return pipeline
    from sparkflow.loading import load_pipeline

    return load_pipeline(pipeline)


def _is_run_folder(spec: str) -> bool:
    """A run folder (holding ``_work`` or node outputs), not a pipeline file or module."""
    from sparkflow.runtime import storage as store

    if store.is_remote(spec):
        return True
    return os.path.isdir(spec) and not os.path.isfile(os.path.join(spec, "__init__.py"))


def _exists(location: str) -> bool:
    from sparkflow.runtime import storage as store

    fs, path = store.filesystem(location)
    return bool(fs.exists(path))
