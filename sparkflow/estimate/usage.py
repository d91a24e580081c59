"""What a run uses of each billed service, per stage, from the modelled work: the quantities the price tables
price (their keys are the same).

* Functions: AWS Lambda bills memory x duration and requests (every function has 10,240 MB of /tmp, of which
  512 MB are free); a Cloud Run service bills the vCPUs and memory of the one service every function stage
  runs on (the largest stage memory, and the fewest vCPUs Cloud Run allows with it) while a request runs, and
  requests. Fan-outs of more than 20 tasks run as a Cloud Run job of the same size, billed as jobs.
* Containers: Fargate bills vCPUs, memory and ephemeral storage beyond 20 GB (sparkflow asks for 200 GiB) for at
  least a minute; a Cloud Run job bills vCPUs and memory.
* Serverless Spark: a driver and two executors of 4 vCPUs and 16 GB each (Dataproc Serverless's documented
  default, taken for EMR Serverless too) for at least a minute; Dataproc counts 12 DCUs for them.
* Object storage, as the runtime reads and writes it: a run's working files under ``_work/`` (attempts, split files,
  shuffle objects) are deleted right after the run publishes, and a key stage's map task writes ONE shuffle object
  (plus its commit manifest), which reduce tasks read by byte ranges. So, per task: one listing per input; a whole
  task reads each object of its inputs (an upstream output has one part per chunk or bucket) and writes its output in
  ``_work/`` then copies it into place; a split task writes its manifests, item lists and plan; a map task reads its
  chunk and writes one object (a key stage's: plus its commit manifest); a partition task reads each map task's commit
  manifest (its index) once and writes a file per reducer; a reduce task reads its file and makes one ranged GET of
  each map object, then writes its part; a commit task copies the parts into place and writes a manifest and a
  marker. Storage is priced for the time it is held: what ``_work/`` holds
  (attempts, shuffle objects) for the run's estimated seconds (the ``*_gb_months`` keys); the stage outputs the run
  keeps under its folder (nothing deletes them) for a month (``*_kept_gb_months``); the tables published to sinks for
  a month (``*_sink_gb_months``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from sparkflow.compiler.chunking import MODEL_VCPUS
from sparkflow.estimate.model import StageWork
from sparkflow.plan import Plan, PlanTask

GiB = 1024**3
Usage = defaultdict[str, float]  # quantity name (a price table key) -> how much
BILLED_MINIMUM_S = 60  # Fargate, EMR Serverless and Dataproc Serverless bill at least a minute
LAMBDA_TMP_MB, LAMBDA_FREE_TMP_MB = 10_240, 512
FARGATE_EPHEMERAL_GB, FARGATE_FREE_EPHEMERAL_GB = 200, 20
SPARK_WORKERS, SPARK_WORKER_VCPUS, SPARK_WORKER_GB, SPARK_EXECUTORS = 3, 4, 16, 2
SERVERLESS_SPARK_VCPUS = SPARK_EXECUTORS * SPARK_WORKER_VCPUS  # what reads the input: the executors
SPARK_WORKER_DCUS = 4  # 4 vCPUs x 0.6 + 16 GB x 0.1 (at most 8 GB per vCPU)
FAN_JOB_OVER = 20  # Workflows runs a fan-out of more tasks as a Cloud Run job (see targets/gcp/emit.py)
COMMIT_FILES = 2  # a manifest and the _SUCCESS marker
SHUFFLE_COMMIT_FILES = 1  # a key stage's map task: the commit manifest beside its one shuffle object
SPLIT_FILES = 4  # a split task: manifests, item lists and the split plan
PARTITION_FILES = 2  # a partition task, besides a file per reducer: the reduce item list and the reducers' list
#: A month of storage, in seconds (730 hours: the month AWS's and Google's storage prices are per).
MONTH_S = 730 * 3600
STORAGE = {"aws": "s3", "gcp": "gcs"}


def speedups(plan: Plan, target: str) -> dict[str, float]:
    """Per task id, how much faster than the model's 2 cores its machine reads: containers and serverless Spark
    have more vCPUs; a function is the model's machine."""
    faster: dict[str, float] = {}
    for task in plan.tasks:
        if task.placement == "container":
            faster[task.id] = _container(task, target)[0] / MODEL_VCPUS
        elif task.placement == "serverless-spark":
            faster[task.id] = SERVERLESS_SPARK_VCPUS / MODEL_VCPUS
    return faster


def stage_usage(plan: Plan, work: Mapping[str, StageWork], target: str, run_seconds: float) -> dict[str, Usage]:
    """Per task id: usage of each priced quantity (orchestration steps are counted separately); ``run_seconds``: how
    long the run holds its working files."""
    parts = {task_id: _parts(done) for task_id, done in work.items()}
    used: dict[str, Usage] = {}
    for task in plan.tasks:
        done = work[task.id]
        usage: Usage = defaultdict(float)
        _compute(plan, task, done, target, usage)
        _storage(task, done, parts, target, run_seconds, usage)
        used[task.id] = usage
    return used


def publish_usage(plan: Plan, work: Mapping[str, StageWork], seconds: float, target: str) -> Usage:
    """The run's publish task: one function call that copies each sink's output into its table, kept a month."""
    usage: Usage = defaultdict(float)
    if target == "aws":
        _lambda(plan.publish.memory_mb, 1, seconds, usage)
    else:
        _cloud_run(_service_memory(plan), 1, seconds, usage, job=False)
    storage = STORAGE[target]
    for sink in plan.sinks:
        done = work.get(sink.node)
        if done is None:
            continue
        usage[_writes(target)] += _parts(done) + COMMIT_FILES
        usage[_reads(target)] += _parts(done)
        usage[f"{storage}_sink_gb_months"] += done.output_bytes / GiB
    return usage


def _compute(plan: Plan, task: PlanTask, done: StageWork, target: str, usage: Usage) -> None:
    if task.placement == "container":
        vcpus, memory = _container(task, target)
        billed = max(BILLED_MINIMUM_S, done.task_seconds)
        if target == "aws":
            usage["fargate_vcpu_hours"] += vcpus * billed / 3600
            usage["fargate_gb_hours"] += memory / 1024 * billed / 3600
            extra = FARGATE_EPHEMERAL_GB - FARGATE_FREE_EPHEMERAL_GB
            usage["fargate_ephemeral_gb_hours"] += extra * billed / 3600
        else:
            usage["run_job_vcpu_seconds"] += vcpus * billed
            usage["run_job_gib_seconds"] += memory / 1024 * billed
        return
    if task.placement == "serverless-spark":
        hours = max(BILLED_MINIMUM_S, done.task_seconds) / 3600
        if target == "aws":
            usage["emr_vcpu_hours"] += SPARK_WORKERS * SPARK_WORKER_VCPUS * hours
            usage["emr_gb_hours"] += SPARK_WORKERS * SPARK_WORKER_GB * hours
        else:
            usage["dataproc_dcu_hours"] += SPARK_WORKERS * SPARK_WORKER_DCUS * hours
        return
    for phase in done.phases:
        if target == "aws":
            _lambda(task.memory_mb, phase.count, phase.count * phase.seconds_each, usage)
        else:
            job = phase.name in ("map", "reduce") and phase.count > FAN_JOB_OVER
            _cloud_run(_service_memory(plan), phase.count, phase.count * phase.seconds_each, usage, job=job)


def _lambda(memory_mb: int, calls: int, seconds: float, usage: Usage) -> None:
    usage["lambda_requests"] += calls
    usage["lambda_gb_seconds"] += memory_mb / 1024 * seconds
    usage["lambda_ephemeral_gb_seconds"] += (LAMBDA_TMP_MB - LAMBDA_FREE_TMP_MB) / 1024 * seconds


def _cloud_run(memory_mb: int, calls: int, seconds: float, usage: Usage, *, job: bool) -> None:
    from sparkflow.targets.gcp.package import cpu_for

    prefix = "run_job" if job else "run"
    usage[f"{prefix}_vcpu_seconds"] += cpu_for(memory_mb) * seconds
    usage[f"{prefix}_gib_seconds"] += memory_mb / 1024 * seconds
    if not job:
        usage["run_requests"] += calls


def _service_memory(plan: Plan) -> int:
    """The Cloud Run service's memory: its largest function stage's (see targets/gcp/package.py)."""
    memories = [task.memory_mb for task in plan.tasks if task.placement == "function"]
    return max(memories or [task.memory_mb for task in plan.tasks] or [plan.publish.memory_mb])


def _container(task: PlanTask, target: str) -> tuple[int, int]:
    if target == "aws":
        from sparkflow.targets.aws.limits import CONTAINER
    else:
        from sparkflow.targets.gcp.limits import CONTAINER
    return CONTAINER.size_for(task.memory_mb)


def _parts(done: StageWork) -> int:
    """Objects a stage's output holds: one part per chunk or bucket of a split stage, else one."""
    return done.buckets or done.chunks or 1


def _storage(
    task: PlanTask, done: StageWork, parts: Mapping[str, int], target: str, run_seconds: float, usage: Usage
) -> None:
    fused = {inner.id for inner in task.fused}
    reads = [item for inner in (*task.fused, task) for item in inner.inputs if item.node not in fused]
    objects = sum(1 if item.kind == "source" else parts.get(item.node, 1) for item in reads if item.carries_rows)
    inputs = len([item for item in reads if item.carries_rows])
    lists = gets = writes = 0
    # Attempts: a task writes its output in _work/ and copies it into place (the shuffle is in _work/ only).
    held = done.output_bytes + done.shuffle_bytes
    for phase in done.phases:
        if phase.name == "whole":
            lists, gets, writes = lists + inputs, gets + objects, writes + 2 + COMMIT_FILES  # its file and its copy
        elif phase.name == "split":
            lists, writes = lists + inputs, writes + SPLIT_FILES
        elif phase.name == "map":
            per_task = 1 + (SHUFFLE_COMMIT_FILES if done.buckets else 0)
            gets, writes = gets + phase.count, writes + phase.count * per_task
        elif phase.name == "partition":
            # every map task's commit manifest (its index) once; a file per reducer, the reduce item list and the
            # reducers' list
            gets, writes = gets + (done.chunks or 1), writes + (done.buckets or 1) + PARTITION_FILES
        elif phase.name == "reduce":
            # its reducer file, and one ranged GET of each map task's shuffle object (taken as never empty; map tasks
            # span every split input's chunks)
            gets, writes = gets + phase.count * (1 + (done.chunks or 1)), writes + phase.count
        elif phase.name == "commit":
            lists, writes = lists + 1, writes + _parts(done) + COMMIT_FILES  # a copy per part
    storage = STORAGE[target]
    usage[_writes(target)] += writes + lists  # S3 prices LIST and COPY with PUT; GCS counts both as Class A
    usage[_reads(target)] += gets
    usage[f"{storage}_gb_months"] += held / GiB * run_seconds / MONTH_S
    usage[f"{storage}_kept_gb_months"] += done.output_bytes / GiB


def _writes(target: str) -> str:
    return "s3_put_requests" if target == "aws" else "gcs_class_a_operations"


def _reads(target: str) -> str:
    return "s3_get_requests" if target == "aws" else "gcs_class_b_operations"
