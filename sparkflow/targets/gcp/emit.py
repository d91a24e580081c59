"""Plan -> GCP Workflows YAML.

Shape of every definition:

* ``main`` takes one parameter, ``args`` (the execution argument, e.g. ``{"sources": {"books": "gs://..."}}``
  to override a source's location, ``{"params": {"n": 5}}`` for the pipeline's parameters, which the runtime
  checks against the Plan; null when the execution is started without one).
* ``run-start`` assigns the one variable the workflow keeps, ``run`` = ``{id, storage, params}``: the id is the
  execution id, the storage root comes from the ``SPARKFLOW_STORAGE_ROOT`` environment variable set at deploy
  time, params is ``args`` (or ``{}``).
* A pipeline with ``trigger=`` adds ``run-event`` after it: when ``args`` is the CloudEvent of a new Cloud Storage
  object (what Eventarc passes a workflow), params becomes ``{"sources": ...}`` with the object as the watched
  source (the other sources as ``SPARKFLOW_TRIGGER_SOURCES`` says); an object outside ``SPARKFLOW_TRIGGER_FOLDER``
  (Eventarc filters on the bucket only) or a folder marker ends the execution at once, with no run.
* One step per stage: ``http.post`` of the runtime event to the Cloud Run service at ``SPARKFLOW_SERVICE_URL``
  with an OIDC token, inside ``try`` with a ``retry`` policy (the ``sparkflow_retryable`` predicate: HTTP 429,
  5xx, connection errors and timeouts; the stage's ``retries=``; exponential backoff) and an ``except`` that
  raises an error naming the stage. The HTTP response is not kept: output locations derive from the run id, so
  variables never grow with the pipeline (Workflows holds 512 KB of variables in all, a response up to 2 MB).
* A stage placed on a container runs as an execution of a Cloud Run job (one task; the job of its memory size,
  ``SPARKFLOW_CONTAINER_JOB_<N>MB``), a stage placed on serverless Spark as a Dataproc Serverless batch whose
  main file (``SPARKFLOW_DATAPROC_ENTRY``) gets the event as its argument; both through their connectors, which
  wait for the job or batch to finish.
* Independent stages run in ``parallel`` branches (see :mod:`sparkflow.compiler.schedule`), at most 10 per
  parallel step and two levels deep, as Workflows allows: wider steps are grouped into nested parallel steps,
  and where no deeper level is left, into branches that run their share one after another.
* ``run-publish`` posts the runtime's publish event once every stage has committed: it publishes the pipeline's
  sinks and points its ``_latest.json`` at the run (see :mod:`sparkflow.runtime.publish`).
* ``run-succeeded`` returns the run id and the location of every output the pipeline returns.

Step names: stage names are identifiers (no ``-``); every step sparkflow adds contains a ``-``, so the two
never clash. Deploy-time values come only from ``sys.get_env(...)``, so the file is the same for every project.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from sparkflow.errors import CompileError, DefinitionError
from sparkflow.layout import RUN_ID_PLACEHOLDER
from sparkflow.plan import Parallel, Plan, PlanTask, Run, Sequence, Step
from sparkflow.runtime.protocol import EVENT_VARIABLE, run_object
from sparkflow.runtime.protocol import event as protocol_event
from sparkflow.targets.gcp import limits

# User-defined environment variables every deployment must set (see sparkflow.targets.gcp.deploy).
SERVICE_URL_ENV = "SPARKFLOW_SERVICE_URL"
STORAGE_ROOT_ENV = "SPARKFLOW_STORAGE_ROOT"
DEPLOY_ENV = (SERVICE_URL_ENV, STORAGE_ROOT_ENV)
# A triggered pipeline's watched folder (gs://bucket/prefix/) and the other sources' locations (JSON), set at deploy.
TRIGGER_FOLDER_ENV = "SPARKFLOW_TRIGGER_FOLDER"
TRIGGER_SOURCES_ENV = "SPARKFLOW_TRIGGER_SOURCES"
# The CloudEvent type of a new object (https://cloud.google.com/eventarc/docs/reference/supported-events).
OBJECT_FINALIZED = "google.cloud.storage.object.v1.finalized"
# Built in: "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID: The identifier of the workflow execution"
# (https://cloud.google.com/workflows/docs/reference/environment-variables).
EXECUTION_ID_ENV = "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID"

ARGS, RUN, ERROR = "args", "run", "error"
START, PUBLISH, SUCCEEDED = "run-start", "run-publish", "run-succeeded"
EVENT = "run-event"
RETRY_PREDICATE = "sparkflow_retryable"
# Fan-out: up to this many chunks run as a parallel for ("a maximum of 20 concurrent iterations"); more as a
# Cloud Run job execution with taskCount = chunks (https://cloud.google.com/workflows/quotas).
PARALLEL_FOR_MAX = 20
CHUNK = "chunk"
JOB_ENV = "SPARKFLOW_JOB"
CONTAINER_JOB_ENV_PREFIX = "SPARKFLOW_CONTAINER_JOB_"
# Serverless Spark: the batch's main Python file (gs://...), its container image (with sparkflow and the project)
# and the service account it runs as.
DATAPROC_ENV = ("SPARKFLOW_DATAPROC_ENTRY", "SPARKFLOW_DATAPROC_IMAGE", "SPARKFLOW_DATAPROC_SERVICE_ACCOUNT")
# The connector waits for the job execution; a day covers the longest job (Cloud Run tasks: 24 h at most).
JOB_TIMEOUT_S = 86_400
# Error tags of http.* calls that a new attempt may cure
# (https://cloud.google.com/workflows/docs/reference/syntax/error-types). HTTP errors are judged by status code.
RETRYABLE_TAGS = ("ConnectionError", "ConnectionFailedError", "TimeoutError")
# First retry after 5 s, doubling up to 5 minutes: long enough for a cold Cloud Run instance or a throttled
# store to recover. Integers, as the Workflows schema wants them. Copied into each step: a shared dict would be
# written as a YAML alias.
BACKOFF = {"initial_delay": 5, "max_delay": 300, "multiplier": 2}


def emit(plan: Plan) -> str:
    """The Workflows definition of ``plan`` as YAML text ending in a newline, after a header comment."""
    header = (
        f"# Generated by sparkflow from {plan.source_file} (pipeline {plan.pipeline}).\n"
        "# Do not edit: change the pipeline and run `sparkflow compile --target gcp`.\n"
    )
    # A wide line limit: expressions stay on one line (Workflows caps them at 400 characters anyway).
    body = yaml.safe_dump(definition(plan), sort_keys=False, allow_unicode=True, width=100_000)
    return header + body


def variable(node: str) -> str:
    """A node's name as part of a Workflows variable name (letters, digits and '_' only): '-' becomes '_'."""
    return node.replace("-", "_")


def definition(plan: Plan) -> dict[str, Any]:
    """The definition as plain dicts and lists, in the order it is written."""
    _check_names(plan)
    builder = _Builder(plan)
    steps = [
        _start_step(plan),
        *_event_steps(plan),
        *builder.steps(plan.schedule, depth=0),
        builder.publish(),
        _succeeded_step(plan),
    ]
    document: dict[str, Any] = {"main": {"params": [ARGS], "steps": steps}}
    if plan.publish.retries or any(task.retries for task in plan.tasks):
        document[RETRY_PREDICATE] = retry_predicate()
    return document


def retry_predicate() -> dict[str, Any]:
    """The subworkflow that says whether a failed stage call is worth another attempt.

    ``map.get`` + ``default`` read the status code without failing on errors that have none (connection errors);
    the runtime answers 4xx for what retrying cannot fix (a bad event, a refused location, a corrupt input).
    """
    tags = " or ".join(f"{json.dumps(tag)} in e.tags" for tag in RETRYABLE_TAGS)
    return {
        "params": ["e"],
        "steps": [
            {"read-code": {"assign": [{"code": '${default(map.get(e, "code"), 0)}'}]}},
            {"http-status": {"switch": [{"condition": "${code == 429 or code >= 500}", "return": True}]}},
            {"connection": {"switch": [{"condition": f"${{{tags}}}", "return": True}]}},
            {"permanent": {"return": False}},
        ],
    }


def _start_step(plan: Plan) -> dict[str, Any]:
    # params is assigned {} first and then args unless args is null, so that `run` is the only variable.
    return {
        START: {
            "assign": [
                {RUN: run_object(plan, id=_env(EXECUTION_ID_ENV), storage=_env(STORAGE_ROOT_ENV), params={})},
                {f"{RUN}.params": f"${{default({ARGS}, {RUN}.params)}}"},
            ]
        }
    }


def _event_steps(plan: Plan) -> list[dict[str, Any]]:
    """A triggered pipeline's steps after ``run-start``: an Eventarc CloudEvent of a new object as the argument
    (``{"type": ..., "data": {"bucket", "name", ...}, ...}``: the event in JSON as Workflows receives it,
    https://cloud.google.com/eventarc/docs/workflows/cloudevents) becomes the run's sources."""
    if plan.start_trigger is None:
        return []
    location = f"{RUN}.params.sources[{json.dumps(plan.start_trigger.source)}]"
    folder = f"sys.get_env({json.dumps(TRIGGER_FOLDER_ENV)})"
    outside = f"text.substring({location}, 0, len({folder})) != {folder}"
    marker = f'text.substring({location}, len({location}) - 1, len({location})) == "/"'
    return [
        {
            EVENT: {
                "switch": [
                    {
                        "condition": f'${{map.get({RUN}.params, "type") == {json.dumps(OBJECT_FINALIZED)}}}',
                        "steps": [
                            {
                                f"{EVENT}-object": {
                                    "assign": [
                                        {f"{RUN}.params": {"sources": _env(TRIGGER_SOURCES_ENV, decode=True)}},
                                        {location: f'${{"gs://" + {ARGS}.data.bucket + "/" + {ARGS}.data.name}}'},
                                    ]
                                }
                            },
                            {
                                f"{EVENT}-folder": {
                                    "switch": [
                                        {
                                            "condition": f"${{{outside} or {marker}}}",
                                            "return": {"run_id": f"${{{RUN}.id}}", "skipped": f"${{{location}}}"},
                                        }
                                    ]
                                }
                            },
                        ],
                    }
                ]
            }
        }
    ]


def _succeeded_step(plan: Plan) -> dict[str, Any]:
    outputs = {node: location_expression(plan, plan.task(node)) for node in plan.outputs}
    return {SUCCEEDED: {"return": {"run_id": f"${{{RUN}.id}}", "outputs": outputs}}}


def location_expression(plan: Plan, task: PlanTask) -> str:
    """An expression for the output location of ``task`` in this run, built from ``run`` like the AWS target's."""
    if task.output == "value":
        return f"${{{json.dumps(f'kv:{plan.pipeline}/')} + {RUN}.id + {json.dumps(f'/{task.id}')}}}"
    parts = [json.dumps(part) for part in task.location.split(RUN_ID_PLACEHOLDER)]
    return "${" + " + ".join([f"{RUN}.storage", f" + {RUN}.id + ".join(parts)]) + "}"


class _Builder:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.parallel_count = 0

    def steps(self, step: Step, depth: int) -> list[dict[str, Any]]:
        """The Workflows steps of ``step`` inside ``depth`` enclosing parallel steps."""
        if isinstance(step, Run):
            task = self.plan.task(step.task)
            if task.placement == "container":
                return self._container(task)
            if task.placement == "serverless-spark":
                return self._batch(task)
            return [self._fanout(task, depth) if task.fanout else self._task(task)]
        if isinstance(step, Sequence):
            return [item for inner in step.steps for item in self.steps(inner, depth)]
        return self._parallel(step, depth)

    def _parallel(self, step: Parallel, depth: int) -> list[dict[str, Any]]:
        max_depth = limits.PARALLEL_DEPTH.value
        if depth >= max_depth:
            # No level left: the branches run one after another, which never starts a stage before its inputs.
            return [item for branch in step.branches for item in self.steps(branch, depth)]
        branches = step.branches
        if len(branches) > limits.BRANCHES_PER_PARALLEL.value:
            groups = _split(branches, limits.BRANCHES_PER_PARALLEL.value)
            deeper = depth + 1 < max_depth
            branches = tuple(
                group[0] if len(group) == 1 else (Parallel(group) if deeper else Sequence(group)) for group in groups
            )
        self.parallel_count += 1  # numbered before the branches, so the numbers follow the file top to bottom
        name = f"parallel-{self.parallel_count}"
        built = [{f"{_first_task(branch)}-branch": {"steps": self.steps(branch, depth + 1)}} for branch in branches]
        return [{name: {"parallel": {"branches": built}}}]

    def _task(self, task: PlanTask) -> dict[str, Any]:
        return {task.id: self._call(task, {}, task.id)}

    def publish(self) -> dict[str, Any]:
        """The step that publishes the run once every stage has committed."""
        publish = self.plan.publish
        body = protocol_event(self.plan, None, f"${{{RUN}}}")
        prefix = json.dumps(f"publishing a run of pipeline {self.plan.pipeline} failed: ")
        raised = {"tags": ["PublishFailed"]}
        return {PUBLISH: _post(body, publish.timeout_s, publish.retries, PUBLISH, prefix, raised)}

    def _call(self, task: PlanTask, extra: dict[str, Any], label: str, result: str | None = None) -> dict[str, Any]:
        """One retried call of the runtime for ``task`` (``extra``: the phase and chunk of a split stage)."""
        body = protocol_event(self.plan, task, f"${{{RUN}}}", **extra)
        prefix = json.dumps(f"stage {task.id} of pipeline {self.plan.pipeline} failed: ")
        raised = {"tags": ["StageFailed"], "stage": task.id}
        return _post(body, task.timeout_s, task.retries, label, prefix, raised, result)

    def _raise_failed(self, task: PlanTask, label: str) -> dict[str, Any]:
        """Raise an error naming the stage; the step is named after ``label`` so that step names stay unique."""
        prefix = json.dumps(f"stage {task.id} of pipeline {self.plan.pipeline} failed: ")
        return _raise(label, prefix, {"tags": ["StageFailed"], "stage": task.id})

    def _fanout(self, task: PlanTask, depth: int) -> dict[str, Any]:
        """split -> one call per chunk (map) -> one per bucket (reduce, key stages) -> commit.

        The split call answers with the number of chunks and buckets; only those two numbers are kept. A
        handful of chunks run as a ``parallel for`` (Workflows runs at most 20 iterations at once); more run
        as one Cloud Run job execution with one task per chunk, each task picking its chunk by its index.
        """
        assert task.fanout is not None
        answer = f"{variable(task.id)}_split"
        steps: list[dict[str, Any]] = [
            {
                f"{task.id}-split": self._call(
                    task, {"phase": "split", "chunk_bytes": task.fanout.chunk_bytes}, f"{task.id}-split", result=answer
                )
            },
            {
                f"{task.id}-sizes": {
                    "assign": [
                        {f"{variable(task.id)}_chunks": f"${{{answer}.body.output.chunks}}"},
                        {f"{variable(task.id)}_buckets": f"${{{answer}.body.output.buckets}}"},
                        {answer: None},  # the HTTP answer is not kept: variables are limited to 512 KB
                    ]
                }
            },
        ]
        phases = ("map", "reduce") if task.fanout.mode == "key" else ("map",)
        for phase in phases:
            count = f"{variable(task.id)}_chunks" if phase == "map" else f"{variable(task.id)}_buckets"
            steps.append({f"{task.id}-{phase}": self._fan(task, phase, count, depth)})
        steps.append({f"{task.id}-commit": self._call(task, {"phase": "commit"}, f"{task.id}-commit")})
        return {task.id: {"steps": steps}}

    def _fan(self, task: PlanTask, phase: str, count: str, depth: int) -> dict[str, Any]:
        job = self._job(task, phase, count)
        if depth + 1 > limits.PARALLEL_DEPTH.value:  # no parallel level left: always the job
            return {"steps": job}
        each = {
            f"{task.id}-{phase}-each": {
                "parallel": {
                    "concurrency_limit": PARALLEL_FOR_MAX,
                    "for": {
                        # One name per stage and phase: loops of parallel stages, or of one stage's map and reduce,
                        # never share a variable.
                        "value": f"{variable(task.id)}_{phase}_{CHUNK}",
                        "range": f"${{[0, {count} - 1]}}",  # one expression: the documented form
                        "steps": [
                            {
                                f"{task.id}-{phase}-item": self._call(
                                    task,
                                    {"phase": phase, "chunk": f"${{{variable(task.id)}_{phase}_{CHUNK}}}"},
                                    f"{task.id}-{phase}-item",
                                )
                            }
                        ],
                    },
                }
            }
        }
        return {
            "switch": [
                {"condition": f"${{{count} <= {PARALLEL_FOR_MAX}}}", "steps": [each]},
                # Exclusive conditions rather than a catch-all `true`: a switch runs the first match only, but
                # stating both sides keeps the meaning plain (and interpreters that try every match agree).
                {"condition": f"${{{count} > {PARALLEL_FOR_MAX}}}", "steps": job},
            ]
        }

    def _event_step(self, task: PlanTask, label: str, extra: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The variable holding ``task``'s event and the step that assigns it."""
        event = f"{variable(task.id)}_event"
        return event, {f"{label}-event": {"assign": [{event: protocol_event(self.plan, task, f"${{{RUN}}}", **extra)}]}}

    def _container(self, task: PlanTask) -> list[dict[str, Any]]:
        """A whole stage as one Cloud Run job execution with one task (``python -m sparkflow.runtime job``)."""
        event, assign = self._event_step(task, task.id, {})
        run_job = _run_job(
            job_env(task.memory_mb),
            {
                "taskCount": 1,
                "timeout": f"{task.timeout_s}s",
                "containerOverrides": [
                    {"env": [{"name": EVENT_VARIABLE, "value": f"${{json.encode_to_string({event})}}"}]}
                ],
            },
        )
        return [assign, {task.id: {"try": run_job, "except": self._raise_failed(task, task.id)}}]

    def _batch(self, task: PlanTask) -> list[dict[str, Any]]:
        """A whole stage as a Dataproc Serverless batch: ``spark-submit`` of the entry with the event."""
        event, assign = self._event_step(task, task.id, {})
        entry, image, account = (_env(name) for name in DATAPROC_ENV)
        create = {
            "call": "googleapis.dataproc.v1.projects.locations.batches.create",
            "args": {
                "parent": '${"projects/" + sys.get_env("GOOGLE_CLOUD_PROJECT_ID") + "/locations/" + '
                'sys.get_env("GOOGLE_CLOUD_LOCATION")}',
                "body": {
                    "pysparkBatch": {"mainPythonFileUri": entry, "args": [f"${{json.encode_to_string({event})}}"]},
                    "runtimeConfig": {
                        "containerImage": image,
                        # The driver's environment: the same variables every deployed function has.
                        "properties": {
                            f"spark.dataproc.driverEnv.{STORAGE_ROOT_ENV}": _env(STORAGE_ROOT_ENV),
                        },
                    },
                    "environmentConfig": {"executionConfig": {"serviceAccount": account, "ttl": f"{task.timeout_s}s"}},
                },
                "connector_params": {"timeout": min(task.timeout_s * 2, JOB_TIMEOUT_S)},
            },
        }
        return [assign, {task.id: {"try": create, "except": self._raise_failed(task, task.id)}}]

    def _job(self, task: PlanTask, phase: str, count: str) -> list[dict[str, Any]]:
        """Run the Cloud Run job ``SPARKFLOW_JOB`` with one task per item; the event goes in SPARKFLOW_EVENT."""
        event, assign = self._event_step(task, f"{task.id}-{phase}", {"phase": phase})
        run_job = _run_job(
            JOB_ENV,
            {
                "taskCount": f"${{{count}}}",
                "containerOverrides": [
                    {"env": [{"name": EVENT_VARIABLE, "value": f"${{json.encode_to_string({event})}}"}]}
                ],
            },
        )
        return [
            assign,
            {f"{task.id}-{phase}-job": {"try": run_job, "except": self._raise_failed(task, f"{task.id}-{phase}-job")}},
        ]


def _post(
    body: dict[str, Any],
    timeout_s: int,
    retries: int,
    label: str,
    prefix: str,
    raised: dict[str, Any],
    result: str | None = None,
) -> dict[str, Any]:
    """A retried ``http.post`` of ``body`` to the runtime's service; a failure raises an error whose message
    starts with ``prefix`` (JSON text) and that carries ``raised``'s fields."""
    call: dict[str, Any] = {
        "call": "http.post",
        "args": {"url": _env(SERVICE_URL_ENV), "auth": {"type": "OIDC"}, "body": body, "timeout": timeout_s},
    }
    if result:
        call["result"] = result
    step: dict[str, Any] = {"try": call}
    if retries:
        step["retry"] = {"predicate": f"${{{RETRY_PREDICATE}}}", "max_retries": retries, "backoff": dict(BACKOFF)}
    step["except"] = _raise(label, prefix, raised)
    return step


def _raise(label: str, prefix: str, raised: dict[str, Any]) -> dict[str, Any]:
    """Raise an error; the step is named after ``label`` so that step names stay unique."""
    message = f'${{{prefix} + default(map.get({ERROR}, "message"), "unknown error")}}'
    return {
        "as": ERROR,
        "steps": [{f"{label}-failed": {"raise": {"message": message, **raised, "cause": f"${{{ERROR}}}"}}}],
    }


def _check_names(plan: Plan) -> None:
    """Names a user would choose may hold '-' and '_', which the names derived from them turn into each other or
    extend: two stages whose variables (``<stage>_chunks``: '-' as '_') or steps (``<stage>-split``) would be the
    same, or a stage named like a step sparkflow adds, are a compile error naming both."""
    problems: list[DefinitionError] = []
    seen: dict[str, PlanTask] = {}
    for task in plan.tasks:
        other = seen.setdefault(variable(task.id), task)
        if other is not task:
            problems.append(
                DefinitionError(
                    f"stages {other.id!r} (declared at {other.origin}) and {task.id!r} give the same GCP Workflows "
                    f"variable names ({variable(task.id)}_...: '-' becomes '_'): rename one of them",
                    task.origin,
                )
            )
    ids = {task.id: task for task in plan.tasks}
    reserved = {START, PUBLISH, f"{PUBLISH}-failed", SUCCEEDED, EVENT, f"{EVENT}-object", f"{EVENT}-folder"}
    for task in plan.tasks:
        # A stage's steps are '<stage>-<part>': another stage named '<stage>-<part>' would share them.
        owners = [
            ids[task.id[: -len(end)]] for end in STEP_SUFFIXES if task.id.endswith(end) and task.id[: -len(end)] in ids
        ]
        if owners:
            problems.append(
                DefinitionError(
                    f"stages {owners[0].id!r} (declared at {owners[0].origin}) and {task.id!r} give the same GCP "
                    f"Workflows step names ({task.id!r}: a stage's own steps are named '<stage>-<part>'): rename one",
                    task.origin,
                )
            )
        elif task.id in reserved or re.fullmatch(r"parallel-\d+", task.id):
            problems.append(
                DefinitionError(f"stage {task.id!r} is named like a step sparkflow adds: rename it", task.origin)
            )
    if problems:
        raise CompileError(problems)


# What the steps sparkflow adds to a stage end with (after the stage's name).
STEP_SUFFIXES = tuple(
    f"-{part}"
    for part in (
        "failed",
        "split",
        "sizes",
        "map",
        "reduce",
        "commit",
        "map-each",
        "reduce-each",
        "map-item",
        "reduce-item",
        "map-job",
        "reduce-job",
        "event",
        "branch",
        "map-event",
        "reduce-event",
    )
)


def job_env(memory_mb: int) -> str:
    """The variable naming the Cloud Run job that runs container stages of ``memory_mb`` (one job per size)."""
    return f"{CONTAINER_JOB_ENV_PREFIX}{memory_mb}MB"


def _run_job(variable: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """A run of the Cloud Run job named by environment variable ``variable``, waiting for its execution."""
    name = (
        '${"projects/" + sys.get_env("GOOGLE_CLOUD_PROJECT_ID") + "/locations/" + '
        f'sys.get_env("GOOGLE_CLOUD_LOCATION") + "/jobs/" + sys.get_env({json.dumps(variable)})}}'
    )
    return {
        "call": "googleapis.run.v2.projects.locations.jobs.run",
        "args": {"name": name, "body": {"overrides": overrides}, "connector_params": {"timeout": JOB_TIMEOUT_S}},
    }


def _env(name: str, decode: bool = False) -> str:
    read = f"sys.get_env({json.dumps(name)})"
    return f"${{json.decode({read})}}" if decode else f"${{{read}}}"


def _first_task(step: Step) -> str:
    if isinstance(step, Run):
        return step.task
    return _first_task(step.steps[0] if isinstance(step, Sequence) else step.branches[0])


def _split(items: tuple[Step, ...], count: int) -> list[tuple[Step, ...]]:
    """``items`` cut into ``count`` consecutive groups whose sizes differ by at most one."""
    size, extra = divmod(len(items), count)
    groups: list[tuple[Step, ...]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        groups.append(items[start:end])
        start = end
    return groups
