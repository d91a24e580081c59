"""The run's last task: publish the outputs the pipeline sends to sinks, then point ``_latest.json`` at the run.

It runs once every stage has committed (the state machines' ``Run-publish`` step, the local executor after the
last stage), so a failed run publishes nothing. Each sink is published idempotently, so that a retried, killed or
duplicated publish leaves a run's rows in the table exactly once:

* **Parquet** (a folder of Parquet files): the run's files are named after the run
  (``part-<run>-00000.parquet``; under ``key=value/`` folders with ``partition_cols=``), so publishing a run
  again writes the same names instead of adding files. ``mode="overwrite"`` then deletes every other Parquet
  file of the folder. A marker ``_sparkflow/<run>.json``, written last, records a finished publish. Files
  appear one by one, and an overwrite removes the old ones after the new ones are in, so a reader listing the
  folder while a run publishes may see both: use ``format="delta"`` where readers need atomic replacement.
* **Delta** (through ``deltalake``, no JVM): one commit per run, carrying a Delta application transaction
  (``txn``) with the app id ``sparkflow/<pipeline>/<sink>/<run>``. A publish looks the id up in the table as of
  some version and commits against that version: Delta's conflict check refuses the commit if a commit since
  then carries the same app id, so of two publishes racing to commit a run one commits and the other finds its
  commit when it looks again. A missing table is first created empty (a commit given a table's location instead
  loads it afresh, unchecked against the look that found no table). Readers see the table before or after the
  commit, never between.

``_latest.json`` (``<storage root>/<pipeline>/_latest.json``) names the newest run to publish: its id and where
its outputs and sinks are. ``sparkflow show PIPELINE NODE`` reads through it.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkflow.errors import InputError, StorageError
from sparkflow.layout import with_slash
from sparkflow.runtime import failures, storage

if TYPE_CHECKING:
    from sparkflow.plan import PlanSink

LATEST = "_latest.json"
MARKERS = "_sparkflow"
# How often a Delta commit that lost a race to a concurrent writer is tried again before giving up.
_DELTA_ATTEMPTS = 8


@dataclass(frozen=True)
class Published:
    """What publishing one sink did."""

    name: str
    uri: str
    format: str
    mode: str
    rows: int
    status: str  # published, or already-published (an earlier attempt of this run did it)
    version: int | None = None  # the Delta table's version holding the run's commit

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "uri": self.uri,
            "format": self.format,
            "mode": self.mode,
            "rows": self.rows,
            "status": self.status,
        }
        if self.version is not None:
            document["version"] = self.version
        return document


def latest_location(root: str, pipeline: str) -> str:
    return f"{with_slash(root)}{pipeline}/{LATEST}"


def publish_sink(sink: PlanSink, uri: str, files: list[str], rows: int, pipeline: str, run_id: str) -> Published:
    """Publish the committed files ``files`` (``rows`` rows) of a run to ``sink``, which lives at ``uri``."""
    publisher: Callable[[PlanSink, str, list[str], int, str, str], Published] = (
        _publish_delta if sink.format == "delta" else _publish_parquet
    )
    return publisher(sink, uri, files, rows, pipeline, run_id)


def run_tag(run_id: str) -> str:
    """The run id as a file-name part (run ids may hold ``=``, ``+``, ``@``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)


# --- Parquet folders -----------------------------------------------------------------------------------------


def _publish_parquet(sink: PlanSink, uri: str, files: list[str], rows: int, pipeline: str, run_id: str) -> Published:
    tag = run_tag(run_id)
    marker = storage.join(uri, MARKERS, f"{tag}.json")
    done = storage.read_json(marker)
    if done is not None:
        return Published(sink.name, uri, "parquet", sink.mode, int(done["rows"]), "already-published")
    with tempfile.TemporaryDirectory(prefix="sparkflow-publish-") as scratch:
        if sink.partition_cols:
            local, names = _partitioned(sink, files, scratch, tag)
            for path, name in zip(local, names, strict=True):
                storage.put_file(path, storage.join(uri, name))
        else:
            names = [f"part-{tag}-{index:05d}.parquet" for index in range(len(files))]
            storage.copy_files(files, uri, names)
    if sink.mode == "overwrite":
        _remove_others(uri, set(names))
    storage.write_file(storage.join(uri, storage.SUCCESS), b"")
    storage.write_file(marker, _json({"run_id": run_id, "pipeline": pipeline, "files": names, "rows": rows}))
    return Published(sink.name, uri, "parquet", sink.mode, rows, "published")


def _partitioned(sink: PlanSink, files: list[str], scratch: str, tag: str) -> tuple[list[str], list[str]]:
    """Write the rows of ``files`` as a Hive-partitioned dataset in ``scratch``; return its files' local paths and
    names relative to the dataset (``country=FR/part-<run>-0.parquet``)."""
    import pyarrow.dataset as ds

    from sparkflow.runtime.datasets import local_copy

    dataset = ds.dataset(local_copy(files, os.path.join(scratch, "in")), format="parquet")
    missing = [column for column in sink.partition_cols if column not in dataset.schema.names]
    if missing:
        raise InputError(
            f"sink {sink.name!r}: partition_cols {missing} are not columns of the output it publishes "
            f"(columns: {', '.join(dataset.schema.names)}); fix partition_cols= on sf.sink at {sink.origin}"
        )
    target = os.path.join(scratch, "out")
    # Without the engine's schema metadata: Spark's lists every column, the partition columns too, which the
    # files no longer hold (Spark would read the columns in the wrong order).
    ds.write_dataset(
        dataset.to_batches(),
        target,
        schema=dataset.schema.remove_metadata(),
        format="parquet",
        partitioning=list(sink.partition_cols),
        partitioning_flavor="hive",
        basename_template=f"part-{tag}-{{i}}.parquet",
        existing_data_behavior="overwrite_or_ignore",
    )
    local = sorted(os.path.join(root, name) for root, _, names in os.walk(target) for name in names)
    return local, [os.path.relpath(path, target).replace(os.sep, "/") for path in local]


def _remove_others(uri: str, keep: set[str]) -> None:
    """Delete every Parquet file under ``uri`` that is not one of ``keep`` (names relative to ``uri``)."""
    fs, path = storage.filesystem(uri)
    fs.invalidate_cache()
    root = path.rstrip("/")
    try:
        found = [name for name in fs.find(path) if name.endswith(".parquet")]
    except FileNotFoundError:
        return
    stale = [name for name in found if name[len(root) :].lstrip("/") not in keep]
    if stale:
        try:
            fs.rm(stale)
        except FileNotFoundError:  # a concurrent publish of the same run removed them first
            pass
        except OSError as error:
            raise StorageError(f"cannot remove the previous files of {uri!r}: {error}") from error
    if storage.is_local_fs(fs):  # object stores have no folders; local partition folders left empty go too
        for folder, _, names in sorted(os.walk(path), reverse=True):
            if folder != root and not names and not os.listdir(folder):
                os.rmdir(folder)


# --- Delta tables --------------------------------------------------------------------------------------------


def _publish_delta(sink: PlanSink, uri: str, files: list[str], rows: int, pipeline: str, run_id: str) -> Published:
    import pyarrow.dataset as ds
    from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
    from deltalake.exceptions import CommitFailedError, DeltaError, SchemaMismatchError, TableNotFoundError

    from sparkflow.runtime.datasets import local_copy

    app = f"sparkflow/{pipeline}/{sink.name}/{run_id}"
    options = delta_storage_options(uri)
    location = _delta_uri(uri)
    with tempfile.TemporaryDirectory(prefix="sparkflow-publish-") as scratch:
        paths = local_copy(files, scratch)
        for attempt in range(_DELTA_ATTEMPTS):
            try:
                table: Any = DeltaTable(location, storage_options=options)
            except TableNotFoundError:
                if not paths:  # nothing was written and there is no table to keep a schema in
                    return Published(sink.name, uri, "delta", sink.mode, 0, "published")
                _create_empty(sink, location, ds.dataset(paths, format="parquet").schema, options)
                continue
            if table.transaction_version(app) is not None:
                return Published(sink.name, uri, "delta", sink.mode, rows, "already-published", table.version())
            # Streamed: the output is read batch by batch from the local copies, never whole into memory.
            data: Any = (
                ds.dataset(paths, format="parquet").scanner().to_reader()
                if paths
                else table.schema().to_arrow().empty_table()  # nothing was written: the table keeps its schema
            )
            commit = CommitProperties(
                app_transactions=[Transaction(app_id=app, version=1)],
                custom_metadata={"sparkflow.pipeline": pipeline, "sparkflow.run_id": run_id},
            )
            writer: Any = write_deltalake  # its overloads type mode= as literals; the sink's mode is one of them
            try:
                writer(
                    table,
                    data,
                    mode=sink.mode,
                    partition_by=list(sink.partition_cols) or None,
                    # overwrite replaces the table, its schema included (as dbt's table materialization does)
                    schema_mode="overwrite" if sink.mode == "overwrite" else None,
                    commit_properties=commit,
                )
            except CommitFailedError:
                time.sleep(0.1 * (attempt + 1))
                continue  # a concurrent writer committed first: if it was this run, the next look finds it
            except SchemaMismatchError as error:
                raise InputError(
                    f"sink {sink.name!r}: the output's schema does not match the Delta table at {uri!r}: "
                    f"{failures.first_line(error)}; write to a new table, or overwrite it (mode='overwrite')"
                ) from error
            except (ValueError, DeltaError) as error:
                _raise_if_partitioning(sink, error)
                raise
            written = DeltaTable(location, storage_options=options)
            return Published(sink.name, uri, "delta", sink.mode, rows, "published", written.version())
    raise StorageError(
        f"sink {sink.name!r}: the Delta table at {uri!r} kept changing under {_DELTA_ATTEMPTS} commit attempts; "
        "another writer is busy with it: run the publish again"
    )


def _create_empty(sink: PlanSink, location: str, schema: Any, options: dict[str, str]) -> None:
    """Create the sink's table with no rows, unless a concurrent publish created it first."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    try:
        DeltaTable.create(
            location, schema, mode="ignore", partition_by=list(sink.partition_cols) or None, storage_options=options
        )
    except DeltaError as error:
        _raise_if_partitioning(sink, error)
        if not DeltaTable.is_deltatable(location, storage_options=options):
            raise
        # Another publish created the table between this one's look and its create: the next look finds it.


def _raise_if_partitioning(sink: PlanSink, error: Exception) -> None:
    """deltalake's refusal of the sink's partition_cols (a column the output lacks, or an appended table partitioned
    otherwise), said as the user's mistake it is."""
    if "partition" in str(error).lower():
        raise InputError(
            f"sink {sink.name!r}: {failures.first_line(error)}; fix partition_cols= on sf.sink at {sink.origin}"
        ) from error


def delta_storage_options(uri: str) -> dict[str, str]:
    """deltalake's storage options for ``uri``: S3 endpoints set for the runtime (moto, LocalStack, MinIO) are
    passed on, as fsspec takes them (see :func:`sparkflow.runtime.storage.filesystem`)."""
    if not uri.startswith("s3://"):
        return {}
    options: dict[str, str] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["AWS_REGION"] = region
    return options


def _delta_uri(uri: str) -> str:
    """deltalake takes URIs and absolute local paths; ``file://`` paths become plain ones."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    return uri.rstrip("/") if "://" in uri else os.path.abspath(uri)


def _json(document: dict[str, Any]) -> bytes:
    import json

    return json.dumps(document, indent=2, sort_keys=True).encode()
