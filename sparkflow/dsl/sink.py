"""``sf.sink(...)``: a table at a stable location that a pipeline publishes an output to when a run succeeds.

Run folders hold every stage's output under the run's id; a sink is where other tools find the result, run after
run, as dbt's models materialize tables and Dagster's assets keep their storage: a Parquet folder (Hive-style
``key=value/`` folders with ``partition_cols=``) or a Delta table, ``mode="overwrite"`` (the table holds the
latest run's rows) or ``"append"`` (every run adds its rows once). Inside a pipeline, calling the sink with a
stage's output publishes it, and returns that output, so ``return revenue_table(by_country)`` both publishes and
returns it::

    revenue_table = sf.sink("revenue_table", "s3://lake/tables/revenue/", format="delta", mode="append")

    @sf.pipeline(storage="s3://my-bucket/sparkflow/")
    def revenue():
        return revenue_table(revenue_by_country(enrich(orders, customers)))

Publishing runs once every stage of a run has committed (see :mod:`sparkflow.runtime.publish`), so a failed run
publishes nothing, and a retried, killed or duplicated publish adds a run's rows exactly once.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from sparkflow.dsl import trace as _trace
from sparkflow.dsl.names import check_name
from sparkflow.errors import DefinitionError, Origin

SINK_FORMATS = ("parquet", "delta")
SINK_MODES = ("overwrite", "append")

T = TypeVar("T")


@dataclass(frozen=True)
class Sink:
    """A declared table a pipeline publishes to.

    Attributes:
        name: the sink's name (unique among the pipeline's sources, stages and sinks).
        uri: where the table lives: ``s3://...``, ``gs://...``, an absolute local path, or a path relative to the
            pipeline's storage root (``tables/revenue/``).
        format: ``parquet`` (a folder of Parquet files) or ``delta`` (a Delta Lake table).
        mode: ``overwrite`` (the table holds the newest run's rows) or ``append`` (each run adds its rows once).
        partition_cols: columns written as Hive-style ``column=value/`` folders (Delta: the table's partitions).
        origin: where ``sf.sink`` was called.
    """

    name: str
    uri: str
    format: str
    mode: str
    partition_cols: tuple[str, ...]
    origin: Origin

    def __call__(self, output: T) -> T:
        """Inside a pipeline: publish ``output`` (a stage's output) to this sink when the run succeeds, and return
        it unchanged. Outside a pipeline there is nothing to publish: an error says so."""
        active = _trace.current()
        caller = sys._getframe(1)
        origin = Origin(caller.f_code.co_filename, caller.f_lineno)
        if active is None:
            raise DefinitionError(
                f"sink {self.name!r} publishes a stage's output when a pipeline runs: call it inside an "
                "@sf.pipeline function, e.g. `return revenue_table(by_country)`",
                origin,
            )
        active.publish(self, output, origin)
        return output


def sink(
    name: str,
    uri: str,
    *,
    format: str = "parquet",
    mode: str = "overwrite",
    partition_cols: str | Sequence[str] | None = None,
) -> Sink:
    """Declare a table that a pipeline publishes a stage's output to.

    Args:
        name: a short identifier (letters, digits and ``_``).
        uri: ``s3://bucket/prefix/``, ``gs://bucket/prefix/``, an absolute local path, or a path relative to the
            pipeline's storage root.
        format: ``"parquet"`` (default) or ``"delta"`` (through the ``deltalake`` package: atomic commits that
            deltalake, Polars, DuckDB and Spark with Delta read).
        mode: ``"overwrite"`` (default: after each run the table holds that run's rows) or ``"append"``.
        partition_cols: column(s) to write as Hive-style ``column=value/`` folders.

    Example:
        >>> revenue_table = sink("revenue_table", "s3://lake/tables/revenue/", format="delta", mode="append")
    """
    caller = sys._getframe(1)
    origin = Origin(caller.f_code.co_filename, caller.f_lineno)
    check_name(name, what="sink", origin=origin)
    if not isinstance(uri, str) or not uri.strip():
        raise DefinitionError(f"sink {name!r}: uri must be a non-empty string such as 's3://lake/tables/x/'", origin)
    if any(ch in uri for ch in "\n\r\0"):
        raise DefinitionError(f"sink {name!r}: uri {uri!r} contains a control character", origin)
    if format not in SINK_FORMATS:
        raise DefinitionError(
            f"sink {name!r}: format={format!r} is not a sink format: use one of {', '.join(SINK_FORMATS)}", origin
        )
    if mode not in SINK_MODES:
        raise DefinitionError(
            f"sink {name!r}: mode={mode!r} is not known: use 'overwrite' (the table holds the newest run's rows) "
            "or 'append' (each run adds its rows)",
            origin,
        )
    columns: tuple[str, ...] = ()
    if partition_cols is not None:
        columns = (partition_cols,) if isinstance(partition_cols, str) else tuple(partition_cols)
        if not columns or not all(isinstance(column, str) and column for column in columns):
            raise DefinitionError(
                f"sink {name!r}: partition_cols={partition_cols!r} must be a column name or a list of them", origin
            )
    return Sink(name, uri, format, mode, columns, origin)


def sink_uri(uri: str, storage_root: str) -> str:
    """Where a sink declared at ``uri`` lives: a relative path is relative to the storage root."""
    if "://" in uri or uri.startswith("/"):
        return uri
    return storage_root.rstrip("/") + "/" + uri.strip("/") + "/"
