"""Spark on a cluster (EMR Serverless, Dataproc Serverless): whole stages too big for any one machine.

The runtime elsewhere copies inputs to the task's local disk and uploads what the engine wrote there (pyspark
in local mode has no cloud connectors). On a cluster that would funnel the whole input through the driver, so
this engine lets Spark read and write storage itself with the platform's connectors (EMRFS for ``s3://``, the
GCS connector for ``gs://``): sources and upstream outputs are read by URI, and the output is written straight
into the attempt folder, then published like every other output (see :mod:`sparkflow.runtime.storage`).

Entry: ``spark-submit <entry.py> '<event JSON>'`` where the entry calls :func:`main` (the job run's
``EntryPointArguments`` / the batch's ``args``); configuration comes from the same environment variables as
every deployed function (:mod:`sparkflow.runtime.deployed`), set as the driver's environment.
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sparkflow.errors import EventError
from sparkflow.runtime import storage
from sparkflow.runtime.engines import SparkEngine

if TYPE_CHECKING:
    from sparkflow.plan import PlanSource

NAME = "spark-cluster"


class ClusterSparkEngine(SparkEngine):
    """The platform's SparkSession, reading and writing storage by URI."""

    name = NAME

    def __init__(self, memory_mb: int, module: ModuleType | None) -> None:
        from pyspark.sql import SparkSession

        from sparkflow.runtime import spark

        # spark-submit configured the session (executors, memory, connectors): take it as it is.
        self._session = SparkSession.builder.getOrCreate()
        if module is not None:
            spark.ship_module(module)

    def read_source(self, source: PlanSource, uri: str, folder: str) -> Any:
        from sparkflow.runtime import datasets

        return datasets.read_files(self.session, source, datasets.source_files(source, uri), uri)

    def read_dataset(self, location: str, folder: str, what: str) -> Any:
        return self.session.read.parquet(*storage.committed_files(location, what))

    def write_attempt(self, frame: Any, work: str, scratch: str, attempt: str) -> tuple[list[tuple[str, int]], int]:
        """Write ``frame`` as Parquet straight into the attempt folder under the node's work folder ``work`` (the
        cluster writes to storage itself; ``scratch`` is not used); return its files (relative to ``work``, with
        sizes) and the number of rows."""
        target = storage.join(work, storage.ATTEMPTS, attempt)
        frame.write.mode("overwrite").parquet(target)
        fs, path = storage.filesystem(target)
        fs.invalidate_cache(path)
        found = fs.find(path, detail=True)
        files = sorted(
            (posixpath.join(storage.ATTEMPTS, attempt, os.path.relpath(name, path).replace(os.sep, "/")), info["size"])
            for name, info in found.items()
            if not os.path.basename(name).startswith(("_", ".")) and not name.endswith(".crc")
        )
        rows = int(self.session.read.parquet(target).count())  # from the Parquet footers: no recomputation
        return [(name, int(size)) for name, size in files], rows


def main(argv: list[str]) -> int:
    """Run the stage the event (``argv[0]``) names on this cluster; print the result; exit code as the container
    entry's (0 done, 2 retrying cannot help, 1 it may)."""
    from sparkflow.runtime.__main__ import answer

    def run() -> dict[str, Any]:
        from sparkflow.runtime.deployed import deployed_config
        from sparkflow.runtime.execute import handle_event

        if not argv:
            raise EventError("pass the event as the job's one argument")
        try:
            event = json.loads(argv[0])
        except json.JSONDecodeError as error:
            raise EventError(f"the event is not JSON: {error}") from error
        return handle_event(event, replace(deployed_config(), engine=NAME))

    return answer(run)


if __name__ == "__main__":
    from sparkflow.runtime.shutdown import exit_now

    exit_now(main(sys.argv[1:]))  # no interpreter finalization: an abort there would fail a committed stage
