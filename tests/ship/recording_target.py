"""A target that is neither aws nor gcp, registered by a test: the commands reach it through the registry alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sparkflow.errors import SparkflowError
from sparkflow.plan import Plan
from sparkflow.targets.aws import limits
from sparkflow.targets.base import ContainerLimits, FunctionLimits, ShipOptions
from sparkflow.targets.runlogs import LogQuery
from sparkflow.targets.runs import DONE, RunStatus, StageStatus


@dataclass
class RecordingTarget:
    name: str = "recorder"
    suffix: str = ".recorded.json"
    function_limits: FunctionLimits = limits.FUNCTION
    container_limits: ContainerLimits | None = limits.CONTAINER
    serverless_spark: str | None = limits.SERVERLESS_SPARK
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def emit(self, plan: Plan) -> str:
        return f'{{"pipeline": "{plan.pipeline}"}}\n'

    def check(self, plan: Plan, definition: str) -> list[SparkflowError]:
        return []

    def package(self, pipeline: Any, plan: Plan, definition: str, options: ShipOptions) -> list[str]:
        self.calls.append(("package", options))
        return [f"packaged {plan.pipeline} into {options.out}"]

    def deploy(self, pipeline: Any, plan: Plan, definition: str, options: ShipOptions) -> str:
        self.calls.append(("deploy", options))
        return f"deployed:{plan.pipeline}"

    def delete(self, pipeline: Any, options: ShipOptions) -> str:
        self.calls.append(("delete", options))
        return f"deleted:{pipeline.name}"

    def start(self, pipeline: Any, options: ShipOptions, run_id: str | None) -> str:
        self.calls.append(("start", options))
        return f"execution:{pipeline.name}"

    def resume(self, pipeline: Any, options: ShipOptions, run_id: str) -> str:
        self.calls.append(("resume", run_id))
        return f"execution:{run_id}-resume-1"

    def logs(self, pipeline: Any, options: ShipOptions, query: LogQuery) -> Iterator[dict[str, Any]]:
        self.calls.append(("logs", query))
        record = {"time": 0.25, "severity": "INFO", "message": "stage start", "run_id": query.run_id, "node": "shout"}
        return iter([record] if query.keeps(record) else [])

    def status(self, execution: str, options: ShipOptions) -> RunStatus:
        self.calls.append(("status", execution))
        return RunStatus(execution, "run-1", "SUCCEEDED", (StageStatus("shout", DONE, 1, 1),), {"shout": "s3://x/"})

    def follow(
        self, execution: str, options: ShipOptions, on_update: Callable[[RunStatus], None] | None = None
    ) -> RunStatus:
        return self.status(execution, options)


TARGET = RecordingTarget()
