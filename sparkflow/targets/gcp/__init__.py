"""The GCP target: Workflows driving a Cloud Run service that runs the sparkflow runtime.

Shipping (:mod:`sparkflow.targets.gcp.ship`) is imported when a command needs it: it needs the official clients,
which compiling does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sparkflow.errors import SparkflowError
from sparkflow.plan import Plan
from sparkflow.targets.base import ContainerLimits, FunctionLimits, ShipsThrough
from sparkflow.targets.gcp import check, emit, limits


@dataclass(frozen=True)
class GcpTarget(ShipsThrough):
    ship_module: ClassVar[str] = "sparkflow.targets.gcp.ship"

    name: str = "gcp"
    suffix: str = ".workflows.yaml"
    function_limits: FunctionLimits = limits.FUNCTION
    container_limits: ContainerLimits | None = limits.CONTAINER
    serverless_spark: str | None = limits.SERVERLESS_SPARK

    def emit(self, plan: Plan) -> str:
        return emit.emit(plan)

    def check(self, plan: Plan, definition: str) -> list[SparkflowError]:
        return check.check(plan, definition)


TARGET = GcpTarget()
