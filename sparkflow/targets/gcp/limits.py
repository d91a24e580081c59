"""GCP limits that sparkflow checks, each with the page it comes from."""

from __future__ import annotations

from sparkflow.targets.base import ContainerLimits, FunctionLimits, Limit

_WORKFLOWS_LIMITS = "https://cloud.google.com/workflows/quotas#limits"
_HTTP_POST = "https://cloud.google.com/workflows/docs/reference/stdlib/http/post"
_RUN_MEMORY = "https://cloud.google.com/run/docs/configuring/services/memory-limits"
_RUN_TIMEOUT = "https://cloud.google.com/run/docs/configuring/request-timeout"

# Cloud Run services: "The maximum amount of memory you can configure is 32 GiB". Memory is counted in binary
# MB, as everywhere in sparkflow (32 GiB = 32,768 MB). A request may take "up to 60 minutes" (_RUN_TIMEOUT), but
# http.post: "The maximum allowed timeout is 1800 seconds": a Workflows HTTP call cannot wait longer for a Cloud
# Run request, so that is a function stage's limit here; longer stages run as Cloud Run jobs (CONTAINER).
HTTP_TIMEOUT_S = Limit(1_800, "s", "Workflows HTTP request timeout limit", _HTTP_POST)
FUNCTION = FunctionLimits(
    memory_mb=Limit(32_768, "MB", "Cloud Run memory limit", _RUN_MEMORY),
    timeout_s=HTTP_TIMEOUT_S,
)
# "Source code: 128 KB". Counted as 128,000 bytes of UTF-8, the stricter reading of "KB".
SOURCE_BYTES = Limit(128_000, "bytes", "workflow source size limit", _WORKFLOWS_LIMITS)
# "Steps per execution: 100,000"; every retry of a step is one more step.
STEPS_PER_EXECUTION = Limit(100_000, "steps", "steps per execution limit", _WORKFLOWS_LIMITS)
# "Memory for variables: 512 KB" for all variables, arguments and events of an execution. sparkflow keeps only
# the run object in variables; its params come from the execution argument, itself at most 32 KB.
VARIABLES_BYTES = Limit(512_000, "bytes", "variable memory limit", _WORKFLOWS_LIMITS)
# "Parallel branches: 10" per parallel step.
BRANCHES_PER_PARALLEL = Limit(10, "branches", "branches per parallel step limit", _WORKFLOWS_LIMITS)
# "Parallel nesting depth: 2": a parallel step may hold a parallel step, but not a third level.
PARALLEL_DEPTH = Limit(2, "levels", "parallel step nesting depth limit", _WORKFLOWS_LIMITS)
# "Expression length: 400 characters" (the text of one ${...}).
EXPRESSION_CHARS = Limit(400, "characters", "expression length limit", _WORKFLOWS_LIMITS)

_JOB_TIMEOUT = "https://cloud.google.com/run/docs/configuring/task-timeout"
# Cloud Run jobs: memory up to 32 GiB, which needs 8 vCPUs ("> 24 GiB: 8 CPUs", "> 16 GiB: at least 6",
# "> 8 GiB: at least 4"; https://cloud.google.com/run/docs/configuring/jobs/memory-limits); a task may run
# 24 hours (_JOB_TIMEOUT). Its file system is in memory, so scratch space is memory (no separate disk limit).
CONTAINER = ContainerLimits(
    service="Cloud Run jobs",
    sizes=((2, 8_192), (4, 16_384), (8, 32_768)),
    timeout_s=Limit(86_400, "s", "Cloud Run job task timeout limit", _JOB_TIMEOUT),
    scratch_bytes=None,
    source="https://cloud.google.com/run/docs/configuring/jobs/memory-limits",
)
SERVERLESS_SPARK = "Dataproc Serverless"
