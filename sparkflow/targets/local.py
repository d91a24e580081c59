"""The limits of `sparkflow run`: this machine, not a cloud function. Not a compile target (it emits nothing);
the local executor plans with it so that a stage declared for a container-sized machine still runs here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sparkflow.errors import SparkflowError
from sparkflow.plan import Plan
from sparkflow.targets.base import ContainerLimits, FunctionLimits, Limit, ShipOptions

if TYPE_CHECKING:
    from sparkflow.dsl.pipeline import Pipeline
    from sparkflow.targets.runlogs import LogQuery

DEFAULT_STORAGE = ".sparkflow"  # where `sparkflow run` writes unless --storage says otherwise


def _memory_mb() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024**2)
    except (ValueError, OSError, AttributeError):  # not POSIX: no ceiling worth checking
        return 1 << 30


_THIS_MACHINE = FunctionLimits(
    memory_mb=Limit(_memory_mb(), "MB", "memory of this machine", "os.sysconf"),
    timeout_s=Limit(7 * 24 * 3600, "s", "local run limit", "sparkflow"),
)


@dataclass(frozen=True)
class LocalTarget:
    name: str = "local"
    suffix: str = ""
    function_limits: FunctionLimits = _THIS_MACHINE
    # Every stage runs on this machine, whatever it would need in the cloud (a run here uses sample data).
    container_limits: ContainerLimits | None = None
    serverless_spark: str | None = None

    def emit(self, plan: Plan) -> str:
        raise SparkflowError("the local target runs plans (sparkflow run); it has no definition to emit")

    def check(self, plan: Plan, definition: str) -> list[SparkflowError]:
        return []

    def logs(self, pipeline: Pipeline, options: ShipOptions, query: LogQuery) -> Iterator[dict[str, Any]]:
        """A local run's records, from its folder under ``--storage`` (default: where ``sparkflow run`` writes)."""
        from sparkflow.targets.runlogs import local_records

        return local_records(options.storage_root or DEFAULT_STORAGE, pipeline.name, query)


LOCAL = LocalTarget()
TARGET = LOCAL  # the registry's name for it (see sparkflow.targets.get_run_target)
