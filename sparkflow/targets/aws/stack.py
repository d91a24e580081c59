"""What a pipeline's stack holds, derived from its Plan: one Lambda function per distinct stage memory, the KV
table, and the placeholders its definition leaves for deploy time."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sparkflow.errors import PackageError
from sparkflow.plan import Plan, PlanTask

#: The runtime's Lambda handler, in an image and in a zip.
HANDLER = "sparkflow.runtime.aws.handler"
#: Where Lambda puts a function's code (an image's working folder, a zip's contents), first on ``sys.path``.
TASK_ROOT = "/var/task"
#: The .zip deployment of the duckdb engine (:mod:`sparkflow.targets.aws.lambda_zip`).
ZIP_FILE = "function.zip"
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html); it costs little.
EPHEMERAL_STORAGE_MB = 10240
LOG_RETENTION_DAYS = 30
STORAGE_ROOT = "StorageRoot"
KV_TABLE_KEY = "key"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def stage_log_group(stack: str) -> str:
    """The log group every stage of the stack ``stack`` logs to (its functions and containers): what
    ``sparkflow logs`` reads."""
    return f"/aws/lambda/{stack}-stages"


def function_groups(plan: Plan) -> dict[int, list[PlanTask]]:
    """Stages on functions by memory size (one Lambda function each), smallest first; placeholder order of the
    definition. The run's publish task runs on one of them (or on a function of its own when every stage runs
    on a container). (Container and serverless Spark stages: :mod:`sparkflow.targets.aws.jobs`.)"""
    groups: dict[int, list[PlanTask]] = {}
    for task in plan.tasks:
        if task.placement == "function":
            groups.setdefault(task.memory_mb, []).append(task)
    groups.setdefault(plan.publish.memory_mb, [])
    return dict(sorted(groups.items()))


def function_key(memory_mb: int) -> str:
    """The placeholder name (and the template's logical id) of the function for ``memory_mb``."""
    return f"StageFunction{memory_mb}MB"


def function_timeout(plan: Plan, memory_mb: int) -> int:
    """The longest the function of ``memory_mb`` may run: the longest of what runs on it."""
    timeouts = [task.timeout_s for task in function_groups(plan)[memory_mb]]
    if plan.publish.memory_mb == memory_mb:
        timeouts.append(plan.publish.timeout_s)
    return max(timeouts)


def function_description(plan: Plan, memory_mb: int) -> str:
    """What the function of ``memory_mb`` runs, for the console."""
    runs = [task.id for task in function_groups(plan)[memory_mb]]
    if plan.publish.memory_mb == memory_mb:
        runs.append("publishing")
    return f"sparkflow pipeline {plan.pipeline}: {', '.join(runs)} ({memory_mb} MB)"


def has_values(plan: Plan) -> bool:
    return any(task.output == "value" for task in plan.tasks)


def declared_table(plan: Plan) -> str | None:
    """The DynamoDB table the pipeline declares with ``kv=``, None when it declares none.

    Raises:
        PackageError: the pipeline has value stages and a KV store Lambda functions cannot share.
    """
    if not has_values(plan) or plan.kv is None:
        return None
    scheme, _, table = plan.kv.partition("://")
    if scheme != "dynamodb" or not table:
        raise PackageError(
            f"pipeline {plan.pipeline!r} has value stages and kv={plan.kv!r}, which Lambda functions cannot share: "
            "declare kv='dynamodb://table-name' or leave kv unset to get a table with the stack"
        )
    return table


def check_placeholders(plan: Plan, definition_text: str, also: Iterable[str] = ()) -> None:
    """Every ``${Name}`` of the definition is one sparkflow fills (``also``: those of its job stages); else the
    definition is not this plan's."""
    known = {STORAGE_ROOT, *(function_key(memory) for memory in function_groups(plan)), *also}
    unknown = sorted(set(_PLACEHOLDER.findall(definition_text)) - known)
    if unknown:
        raise PackageError(
            f"the definition of {plan.pipeline!r} has placeholders sparkflow does not fill ({', '.join(unknown)}): "
            "it is stale or not this pipeline's; run `sparkflow compile` and package again"
        )
