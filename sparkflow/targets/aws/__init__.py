"""The AWS target: Step Functions (ASL) driving Lambda functions that run the sparkflow runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sparkflow.errors import SparkflowError
from sparkflow.plan import Plan
from sparkflow.targets.aws import check, emit, limits
from sparkflow.targets.base import ContainerLimits, FunctionLimits, ShipsThrough


@dataclass(frozen=True)
class AwsTarget(ShipsThrough):
    ship_module: ClassVar[str] = "sparkflow.targets.aws.ship"

    name: str = "aws"
    suffix: str = ".asl.json"
    function_limits: FunctionLimits = limits.FUNCTION
    container_limits: ContainerLimits | None = limits.CONTAINER
    serverless_spark: str | None = limits.SERVERLESS_SPARK

    def emit(self, plan: Plan) -> str:
        return emit.emit(plan)

    def check(self, plan: Plan, definition: str) -> list[SparkflowError]:
        return check.check(plan, definition)


TARGET = AwsTarget()
