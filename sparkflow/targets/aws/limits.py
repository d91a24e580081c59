"""AWS limits that sparkflow checks, each with the page it comes from."""

from __future__ import annotations

from sparkflow.targets.base import ContainerLimits, FunctionLimits, Limit

_SFN_QUOTAS = "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html"
_LAMBDA_QUOTAS = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"

# Lambda: "Function memory allocation: 128 MB to 10,240 MB", "Function timeout: 900 seconds (15 minutes)" and
# "Ephemeral storage (/tmp): 512 MB to 10,240 MB".
FUNCTION = FunctionLimits(
    memory_mb=Limit(10_240, "MB", "Lambda memory limit", _LAMBDA_QUOTAS),
    timeout_s=Limit(900, "s", "Lambda timeout limit", _LAMBDA_QUOTAS),
    scratch_bytes=Limit(10_240 * 1024**2, "bytes", "Lambda /tmp limit", _LAMBDA_QUOTAS),
)
# Distributed Map: "MaxConcurrency ... up to 10,000" parallel child workflow executions
# (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html).
MAP_CONCURRENCY = Limit(
    10_000,
    "executions",
    "Distributed Map concurrency limit",
    "https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html",
)
# Step Functions: "Maximum size of state machine definition: 1 MB" (hard quota). Counted on the minified
# definition, which is what `sparkflow deploy` submits.
DEFINITION_BYTES = Limit(1_048_576, "bytes", "state machine definition limit", _SFN_QUOTAS)
# "Maximum input or output size for a task, state, or execution: 256 KiB of data as a UTF-8 encoded string".
PAYLOAD_BYTES = Limit(262_144, "bytes", "state payload limit", _SFN_QUOTAS)
# "Maximum execution history size: 25,000 events" (hard quota, Standard workflows).
HISTORY_EVENTS = Limit(25_000, "events", "execution history limit", _SFN_QUOTAS)
# State names: "Length Constraints: Minimum length of 1. Maximum length of 80", and must not contain white space,
# brackets, wildcards, special characters or control characters; CloudWatch logging wants only 0-9A-Za-z-_.
# https://docs.aws.amazon.com/step-functions/latest/apireference/API_StateExitedEventDetails.html
STATE_NAME_CHARS = Limit(
    80,
    "characters",
    "state name limit",
    "https://docs.aws.amazon.com/step-functions/latest/apireference/API_StateExitedEventDetails.html",
)

_FARGATE_SIZES = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html"
# Fargate task sizes: 2 vCPU with 4-16 GB, 4 vCPU with 8-30 GB, 8 vCPU with 16-60 GB, 16 vCPU with 32-120 GB;
# sparkflow uses the largest memory of each. "Amazon ECS tasks on Fargate ... can have up to 200 GiB of ephemeral
# storage" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-storage.html). A task has
# no run-time limit of its own; the state's TimeoutSeconds (the stage's timeout=) bounds it, a year at most.
CONTAINER = ContainerLimits(
    service="ECS Fargate",
    sizes=((2, 16_384), (4, 30_720), (8, 61_440), (16, 122_880)),
    timeout_s=Limit(31_536_000, "s", "Step Functions task timeout limit", _SFN_QUOTAS),
    scratch_bytes=Limit(200 * 1024**3, "bytes", "Fargate ephemeral storage limit", _FARGATE_SIZES),
    source=_FARGATE_SIZES,
)
SERVERLESS_SPARK = "EMR Serverless"
