"""GCP limits that sparkflow checks, each with the page it comes from."""

from __future__ import annotations

from sparkflow.targets.base import FunctionLimits, Limit

_WORKFLOWS_LIMITS = "https://cloud.google.com/workflows/quotas#limits"
_HTTP_POST = "https://cloud.google.com/workflows/docs/reference/stdlib/http/post"
_RUN_MEMORY = "https://cloud.google.com/run/docs/configuring/services/memory-limits"
_RUN_TIMEOUT = "https://cloud.google.com/run/docs/configuring/request-timeout"

# Cloud Run services: "The maximum amount of memory you can configure is 32 GiB" and a request timeout of
# "up to 60 minutes". Memory is counted in binary MB, as everywhere in sparkflow (32 GiB = 32,768 MB).
FUNCTION = FunctionLimits(
    memory_mb=Limit(32_768, "MB", "Cloud Run memory limit", _RUN_MEMORY),
    timeout_s=Limit(3_600, "s", "Cloud Run request timeout limit", _RUN_TIMEOUT),
)
# http.post: "The maximum allowed timeout is 1800 seconds". A Workflows HTTP call cannot wait for a Cloud Run
# request longer than this, so stages with a longer timeout= are refused (they will run as Cloud Run jobs).
HTTP_TIMEOUT_S = Limit(1_800, "s", "Workflows HTTP request timeout limit", _HTTP_POST)
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
