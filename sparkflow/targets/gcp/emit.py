r"""Plan -> GCP Workflows YAML.

Shape of every definition:

* ``main`` takes one parameter, ``args`` (the execution argument, e.g. ``{"sources": {"books": "gs://..."}}``
  to override a source's location, ``{"params": {"n": 5}}`` for the pipeline's parameters, which the runtime
  checks against the Plan; null when the execution is started without one).
* ``run-start`` assigns the one variable the workflow keeps, ``run`` = ``{id, storage, params}``: the id is the
  execution id, the storage root comes from the ``SPARKFLOW_STORAGE_ROOT`` environment variable set at deploy
  time, params is ``args`` (or ``{}``). An execution started by ``sparkflow start --resume`` has the argument
  ``{"resume": {"run_id", "params"}}``: ``run-resumed`` then takes the run's id and params from there, so the
  new execution writes where the run's first one did.
* A pipeline with ``trigger=`` adds ``run-event`` after it: when ``args`` is the CloudEvent of a new Cloud Storage
  object (what Eventarc passes a workflow), params becomes ``{"sources": ...}`` with the object as the watched
  source (the other sources as ``SPARKFLOW_TRIGGER_SOURCES`` says); an object outside ``SPARKFLOW_TRIGGER_FOLDER``
  (Eventarc filters on the bucket only) or a folder marker ends the execution at once, with no run.
* One step per stage, written on one line: a ``call`` of a subworkflow with the run, the stage's name and what
  differs per stage (its chunk size, the stages fused into it, whether it has a reduce phase, its job). The
  per-stage boilerplate lives in subworkflows defined once, after ``main``, so a stage costs about 100 bytes of
  the source whose size Workflows limits, however deep in parallel branches it sits:

  * ``sparkflow_stage_r<retries>_t<timeout>``: one phase of a stage: builds the runtime event (the one
    :func:`~sparkflow.runtime.protocol.event` describes) and ``http.post``\ s it to the Cloud Run service at
    ``SPARKFLOW_SERVICE_URL`` with an OIDC token, inside ``try`` with a ``retry`` policy (the
    ``sparkflow_retryable`` predicate: HTTP 429, 5xx, connection errors and timeouts; the stage's ``retries=``;
    exponential backoff) and an ``except`` that raises an error naming the stage and the pipeline; returns the
    runtime's result. One per distinct pair of retries and timeout: a retry policy's ``max_retries`` and an HTTP
    call's ``timeout`` are numbers in the definition, not expressions.
  * ``sparkflow_split_r<retries>_t<timeout>``: a split stage: split -> map -> (key stages) partition -> reduce ->
    commit. The split call answers with the number of chunks, the partition call with the number of reducers; a
    stage a resumed run finds committed answers
    ``already-committed`` and goes straight to its commit. ``sparkflow_fan_r<retries>_t<timeout>`` runs one
    phase's items: a handful as a ``parallel for`` (Workflows runs at most 20 iterations at once), more as one
    execution of the Cloud Run job ``SPARKFLOW_JOB`` with one task per item (``sparkflow_chunks``), each task
    picking its item by its index. A split stage already inside two levels of parallel steps calls the
    ``_jobs`` variant, which always takes the job (no parallel level is left).
  * ``sparkflow_container``: a stage placed on a container runs as an execution of a Cloud Run job (one task; the
    job of its memory size, ``SPARKFLOW_CONTAINER_JOB_<N>MB``), through the connector, which waits for it.

  The HTTP responses are not kept: output locations derive from the run id, and a subworkflow's variables end
  with its call, so variables never grow with the pipeline (Workflows holds 512 KB of variables in all).
* A stage placed on serverless Spark runs as a Dataproc Serverless batch whose main file
  (``SPARKFLOW_DATAPROC_ENTRY``) gets the event as its argument, written out in ``main`` (its connector's timeout
  differs per stage).
* Independent stages run in ``parallel`` branches (see :mod:`sparkflow.compiler.schedule`), at most 10 per
  parallel step and two levels deep, as Workflows allows: wider steps are grouped into nested parallel steps,
  and where no deeper level is left, into branches that run their share one after another.
* ``run-publish`` posts the runtime's publish event once every stage has committed: it publishes the pipeline's
  sinks and points its ``_latest.json`` at the run (see :mod:`sparkflow.runtime.publish`).
* ``run-succeeded`` returns the run id and the location of every output the pipeline returns.

Step names: stage names are identifiers (no ``-``); every step sparkflow adds to ``main`` contains a ``-``, so the
two never clash, and subworkflows name their steps in their own scope. Deploy-time values come only from
``sys.get_env(...)``, so the file is the same for every project.
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

ARGS, RUN, ERROR, EVENT = "args", "run", "error", "event"
START, RESUMED, PUBLISH, SUCCEEDED = "run-start", "run-resumed", "run-publish", "run-succeeded"
# The execution argument of a resumed run: {"resume": {"run_id": ..., "params": <the first execution's argument>}}
# (the same key as on AWS).
RESUME_KEY = "resume"
CHUNKS, CONTAINER = "sparkflow_chunks", "sparkflow_container"  # subworkflows that run a Cloud Run job
Policy = tuple[int, int]  # a stage call's retries and timeout (seconds)
TRIGGERED = "run-event"  # a triggered pipeline's step that reads the CloudEvent
RETRY_PREDICATE = "sparkflow_retryable"
# Fan-out: up to this many chunks run as a parallel for ("a maximum of 20 concurrent iterations"); more as a
# Cloud Run job execution with taskCount = chunks (https://cloud.google.com/workflows/quotas).
PARALLEL_FOR_MAX = 20
# The parallel for's variable: the item's number. A name no map key of the definition has: workflows-emulator
# looks a loop variable up among every variable's keys, and a key of the same name (the event's "chunk") hides it.
ITEM = "item_number"
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
    body = yaml.dump(definition(plan), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100_000)
    return header + body


class Line(dict[str, Any]):
    """A map written on one line (YAML flow style): a stage's call, so that a stage costs one line of the source,
    whose size Workflows limits, however deep in parallel branches it sits (block style repeats the indentation
    on every line)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    Line, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def variable(node: str) -> str:
    """A node's name as part of a Workflows variable name (letters, digits and '_' only): '-' becomes '_'."""
    return node.replace("-", "_")


def definition(plan: Plan) -> dict[str, Any]:
    """The definition as plain dicts and lists, in the order it is written."""
    _check_names(plan)
    builder = _Builder(plan)
    steps = [
        *_start_steps(plan),
        *_event_steps(plan),
        *builder.steps(plan.schedule, depth=0),
        builder.publish(),
        _succeeded_step(plan),
    ]
    return {"main": {"params": [ARGS], "steps": steps}, **builder.subworkflows()}


def policy(task: PlanTask) -> Policy:
    """A stage's retries and its call's timeout in seconds."""
    return task.retries, task.timeout_s


def stage_subworkflow(calls: Policy) -> str:
    """The subworkflow that calls the runtime for one phase of a stage with these retries and timeout: one per
    distinct pair, since a retry policy's ``max_retries`` and an HTTP call's ``timeout`` are numbers in the
    definition, not expressions (the Workflows syntax reference and its JSON Schema)."""
    return "sparkflow_stage_r{}_t{}".format(*calls)


def split_subworkflow(calls: Policy, jobs_only: bool) -> str:
    """The subworkflow that runs a split stage's phases (``jobs_only``: its chunks always as Cloud Run jobs)."""
    return "sparkflow_split_r{}_t{}".format(*calls) + ("_jobs" if jobs_only else "")


def fan_subworkflow(calls: Policy) -> str:
    """The subworkflow that runs one phase's chunks or buckets of a split stage."""
    return "sparkflow_fan_r{}_t{}".format(*calls)


def stage_fields(plan: Plan, task: PlanTask) -> dict[str, Any]:
    """The fields of every event of ``task`` besides its version, pipeline, node, phase and run: the stages fused
    into it, if any."""
    fields = protocol_event(plan, task, None)
    for name in ("version", "pipeline", "node", RUN):
        del fields[name]
    return fields


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


def _start_steps(plan: Plan) -> list[dict[str, Any]]:
    # params is assigned {} first and then args unless args is null, so that `run` is the only variable.
    start = {
        START: {
            "assign": [
                {RUN: run_object(plan, id=_env(EXECUTION_ID_ENV), storage=_env(STORAGE_ROOT_ENV), params={})},
                {f"{RUN}.params": f"${{default({ARGS}, {RUN}.params)}}"},
            ]
        }
    }
    # `sparkflow start --resume` starts a new execution whose argument names the run and carries the first
    # execution's argument: the run keeps its id (where its outputs are) and its params.
    resume = f"{RUN}.params.{RESUME_KEY}"
    resumed = {
        RESUMED: {
            "switch": [
                {
                    "condition": f"${{{json.dumps(RESUME_KEY)} in {RUN}.params}}",
                    "assign": [{f"{RUN}.id": f"${{{resume}.run_id}}"}, {f"{RUN}.params": f"${{{resume}.params}}"}],
                }
            ]
        }
    }
    return [start, resumed]


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
            TRIGGERED: {
                "switch": [
                    {
                        "condition": f'${{map.get({RUN}.params, "type") == {json.dumps(OBJECT_FINALIZED)}}}',
                        "steps": [
                            {
                                f"{TRIGGERED}-object": {
                                    "assign": [
                                        {f"{RUN}.params": {"sources": _env(TRIGGER_SOURCES_ENV, decode=True)}},
                                        {location: f'${{"gs://" + {ARGS}.data.bucket + "/" + {ARGS}.data.name}}'},
                                    ]
                                }
                            },
                            {
                                f"{TRIGGERED}-folder": {
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
        # What the main workflow calls, and so which subworkflows the definition holds.
        self.stage_calls: set[Policy] = set()  # sparkflow_stage_r<retries>_t<timeout>
        self.split_calls: set[tuple[Policy, bool]] = set()  # sparkflow_split_..., with a parallel for or jobs only
        self.containers = False

    def steps(self, step: Step, depth: int) -> list[dict[str, Any]]:
        """The Workflows steps of ``step`` inside ``depth`` enclosing parallel steps."""
        if isinstance(step, Run):
            task = self.plan.task(step.task)
            if task.placement == "container":
                return [self._container(task)]
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

    def _args(self, task: PlanTask, **more: Any) -> dict[str, Any]:
        """What every call of a stage's subworkflow passes: the run, the node, ``more``, and the event fields of the
        stage itself (the stages fused into it), when it has any."""
        args: dict[str, Any] = {"run": f"${{{RUN}}}", "node": task.id, **more}
        fields = stage_fields(self.plan, task)
        if fields:
            args["fields"] = fields
        return args

    def _task(self, task: PlanTask) -> dict[str, Any]:
        self.stage_calls.add(policy(task))
        return {task.id: Line(call=stage_subworkflow(policy(task)), args=self._args(task))}

    def _fanout(self, task: PlanTask, depth: int) -> dict[str, Any]:
        """A split stage: one call of the subworkflow that runs its split, map, reduce and commit phases; below two
        levels of parallel steps, its variant that runs the chunks as Cloud Run jobs only (no parallel level left)."""
        assert task.fanout is not None
        jobs_only = depth + 1 > limits.PARALLEL_DEPTH.value
        self.split_calls.add((policy(task), jobs_only))
        self.stage_calls.add(policy(task))
        args = self._args(task, chunk_bytes=task.fanout.chunk_bytes)
        if task.fanout.mode == "key":
            args["reduce"] = True
        return {task.id: Line(call=split_subworkflow(policy(task), jobs_only), args=args)}

    def _container(self, task: PlanTask) -> dict[str, Any]:
        """A whole stage as one Cloud Run job execution with one task (``python -m sparkflow.runtime job``) of the
        job of its memory size."""
        self.containers = True
        args = self._args(task, job=_env(job_env(task.memory_mb)), task_timeout=f"{task.timeout_s}s")
        return {task.id: Line(call=CONTAINER, args=args)}

    def publish(self) -> dict[str, Any]:
        """The step that publishes the run once every stage has committed."""
        publish = self.plan.publish
        body = protocol_event(self.plan, None, f"${{{RUN}}}")
        prefix = json.dumps(f"publishing a run of pipeline {self.plan.pipeline} failed: ")
        raised = {"tags": ["PublishFailed"]}
        return {PUBLISH: _post(body, publish.timeout_s, publish.retries, _raise(PUBLISH, prefix, raised))}

    def _batch(self, task: PlanTask) -> list[dict[str, Any]]:
        """A whole stage as a Dataproc Serverless batch: ``spark-submit`` of the entry with the event.

        Written out in the main workflow rather than in a subworkflow: the connector's timeout differs per stage,
        and the documentation shows ``connector_params`` with literal values only.
        """
        event = f"{variable(task.id)}_event"
        assign = {f"{task.id}-event": {"assign": [{event: protocol_event(self.plan, task, f"${{{RUN}}}")}]}}
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
        prefix = json.dumps(f"stage {task.id} of pipeline {self.plan.pipeline} failed: ")
        failed = _raise(task.id, prefix, {"tags": ["StageFailed"], "stage": task.id})
        return [assign, {task.id: {"try": create, "except": failed}}]

    def subworkflows(self) -> dict[str, dict[str, Any]]:
        """The subworkflows the main workflow calls, each defined once, in a fixed order."""
        found: dict[str, dict[str, Any]] = {}
        for calls in sorted(self.stage_calls):
            found[stage_subworkflow(calls)] = self._stage(calls)
        for calls, jobs_only in sorted(self.split_calls):
            found[split_subworkflow(calls, jobs_only)] = self._split(calls, jobs_only)
            if not jobs_only:
                found[fan_subworkflow(calls)] = self._fan(calls)
        if self.split_calls:
            found[CHUNKS] = self._chunks()
        if self.containers:
            found[CONTAINER] = self._container_job()
        if self.plan.publish.retries or any(retries for retries, _ in self.stage_calls):
            found[RETRY_PREDICATE] = retry_predicate()
        return found

    def _event(self) -> dict[str, Any]:
        """The step that builds a stage's runtime event, as :func:`protocol_event` orders it: version, pipeline,
        node, the phase's fields, the stage's fields, run. (Maps are merged from variables: a map literal inside
        an expression is valid Workflows, but workflows-emulator cuts an expression at its first ``}``.)"""
        base = protocol_event(self.plan, None, None)
        del base["phase"], base[RUN]  # the publish event's: version and pipeline
        return {
            "event": {
                "assign": [
                    {EVENT: {**base, "node": "${node}"}},
                    {EVENT: f"${{map.merge(map.merge({EVENT}, phase), fields)}}"},
                    {f"{EVENT}.{RUN}": f"${{{RUN}}}"},
                ]
            }
        }

    def _stage_failed(self) -> dict[str, Any]:
        """The except of a stage's call: raise an error whose message and ``stage`` name the stage."""
        prefix = f'"stage " + node + {json.dumps(f" of pipeline {self.plan.pipeline} failed: ")}'
        return _raise("stage", prefix, {"tags": ["StageFailed"], "stage": "${node}"})

    def _stage(self, calls: Policy) -> dict[str, Any]:
        """One retried call of the runtime for one phase of a stage; returns the runtime's answer (its result)."""
        retries, timeout = calls
        call = _post(f"${{{EVENT}}}", timeout, retries, self._stage_failed(), result="answer")
        return {
            "params": ["run", "node", {"phase": {}}, {"fields": {}}],
            "steps": [self._event(), {"post": call}, {"answered": {"return": "${answer.body}"}}],
        }

    def _split(self, calls: Policy, jobs_only: bool) -> dict[str, Any]:
        """split -> one call per chunk (map) -> (key stages) partition -> one per reducer (reduce) -> commit.

        The split call answers with the number of chunks; the partition call, with the number of reducers it chose
        from what the map tasks shuffled. A stage that a resumed run finds committed answers ``already-committed``
        with no chunk: straight to the commit call, which answers at once.
        """
        stage = stage_subworkflow(calls)
        common = {"run": f"${{{RUN}}}", "node": "${node}"}

        def fan(phase: str, count: str) -> dict[str, Any]:
            if jobs_only:  # no parallel level left: always the job
                return {"call": CHUNKS, "args": {**common, "phase": phase, "count": count, "fields": "${fields}"}}
            args = {**common, "phase": phase, "count": count, "fields": "${fields}"}
            return {"call": fan_subworkflow(calls), "args": args}

        def phase_call(phase: dict[str, Any], result: str | None = None) -> dict[str, Any]:
            call = {"call": stage, "args": {**common, "phase": phase, "fields": "${fields}"}}
            return {**call, "result": result} if result else call

        return {
            "params": ["run", "node", "chunk_bytes", {"fields": {}}, {"reduce": False}],
            "steps": [
                {"split": phase_call({"phase": "split", "chunk_bytes": "${chunk_bytes}"}, result="split")},
                {"committed": {"switch": [{"condition": '${split.status == "already-committed"}', "next": "commit"}]}},
                {"map": fan("map", "${split.output.chunks}")},
                {
                    "reduce": {
                        "switch": [
                            {
                                "condition": "${reduce}",
                                "steps": [
                                    {"partition": phase_call({"phase": "partition"}, result="partition")},
                                    {"buckets": fan("reduce", "${partition.output.buckets}")},
                                ],
                            }
                        ]
                    }
                },
                {"commit": phase_call({"phase": "commit"})},
            ],
        }

    def _fan(self, calls: Policy) -> dict[str, Any]:
        """One phase's items: a handful as a ``parallel for`` (Workflows runs at most 20 iterations at once), more
        as one Cloud Run job execution with one task per item, each task picking its item by its index."""
        common = {"run": f"${{{RUN}}}", "node": "${node}"}
        item = {
            "call": stage_subworkflow(calls),
            "args": {
                **common,
                "phase": {"phase": "${phase}", "chunk": f"${{{ITEM}}}"},
                "fields": "${fields}",
            },
        }
        each = {
            "parallel": {
                "concurrency_limit": PARALLEL_FOR_MAX,
                "for": {"value": ITEM, "range": "${[0, count - 1]}", "steps": [{"item": item}]},
            }
        }
        job = {"call": CHUNKS, "args": {**common, "phase": "${phase}", "count": "${count}", "fields": "${fields}"}}
        return {
            "params": ["run", "node", "phase", "count", "fields"],
            "steps": [
                {
                    "fan": {
                        "switch": [
                            {"condition": f"${{count <= {PARALLEL_FOR_MAX}}}", "steps": [{"each": each}]},
                            # Exclusive conditions rather than a catch-all `true`: a switch runs the first match only,
                            # but stating both sides keeps the meaning plain.
                            {"condition": f"${{count > {PARALLEL_FOR_MAX}}}", "steps": [{"job": job}]},
                        ]
                    }
                }
            ],
        }

    def _chunks(self) -> dict[str, Any]:
        """Run the Cloud Run job ``SPARKFLOW_JOB`` with one task per item; the event goes in ``SPARKFLOW_EVENT``."""
        overrides = {"taskCount": "${count}", "containerOverrides": _event_env()}
        return {
            "params": ["run", "node", "phase", "count", "fields"],
            "steps": [
                self._event_of_phase(),
                {"run-job": {"try": _run_job(_env(JOB_ENV), overrides), "except": self._stage_failed()}},
            ],
        }

    def _event_of_phase(self) -> dict[str, Any]:
        """The event step of a subworkflow whose ``phase`` parameter is the phase's name (a chunk job's)."""
        step = self._event()
        step["event"]["assign"].insert(0, {"phase": {"phase": "${phase}"}})
        return step

    def _container_job(self) -> dict[str, Any]:
        """A whole stage as an execution of the Cloud Run job ``job`` with one task."""
        overrides = {"taskCount": 1, "timeout": "${task_timeout}", "containerOverrides": _event_env()}
        return {
            "params": ["run", "node", "job", "task_timeout", {"phase": {}}, {"fields": {}}],
            "steps": [
                self._event(),
                {"run-job": {"try": _run_job("${job}", overrides), "except": self._stage_failed()}},
            ],
        }


def _post(body: Any, timeout: int, retries: int, failed: dict[str, Any], result: str | None = None) -> dict[str, Any]:
    """A ``http.post`` of ``body`` to the runtime's service, retried ``retries`` times on what a new attempt may
    cure; ``failed`` is its except."""
    call: dict[str, Any] = {
        "call": "http.post",
        "args": {"url": _env(SERVICE_URL_ENV), "auth": {"type": "OIDC"}, "body": body, "timeout": timeout},
    }
    if result:
        call["result"] = result
    step: dict[str, Any] = {"try": call}
    if retries:
        step["retry"] = {"predicate": f"${{{RETRY_PREDICATE}}}", "max_retries": retries, "backoff": dict(BACKOFF)}
    step["except"] = failed
    return step


def _raise(label: str, prefix: str, raised: dict[str, Any]) -> dict[str, Any]:
    """An except that raises an error whose message starts with ``prefix`` (an expression) and that carries
    ``raised``'s fields; the step is named after ``label`` so that step names stay unique."""
    message = f'${{{prefix} + default(map.get({ERROR}, "message"), "unknown error")}}'
    return {
        "as": ERROR,
        "steps": [{f"{label}-failed": {"raise": {"message": message, **raised, "cause": f"${{{ERROR}}}"}}}],
    }


def _event_env() -> list[dict[str, Any]]:
    """A Cloud Run job's container overrides that hand it the event (``python -m sparkflow.runtime job``)."""
    return [{"env": [{"name": EVENT_VARIABLE, "value": f"${{json.encode_to_string({EVENT})}}"}]}]


def _check_names(plan: Plan) -> None:
    """Names a user would choose may hold '-' and '_', which the names derived from them turn into each other or
    extend: two stages whose variables (``<stage>_event``: '-' as '_') or steps (``<stage>-event``) would be the
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
    reserved = {
        START,
        RESUMED,
        PUBLISH,
        f"{PUBLISH}-failed",
        SUCCEEDED,
        TRIGGERED,
        f"{TRIGGERED}-object",
        f"{TRIGGERED}-folder",
    }
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
STEP_SUFFIXES = tuple(f"-{part}" for part in ("failed", "event", "branch"))


def job_env(memory_mb: int) -> str:
    """The variable naming the Cloud Run job that runs container stages of ``memory_mb`` (one job per size)."""
    return f"{CONTAINER_JOB_ENV_PREFIX}{memory_mb}MB"


def _run_job(job: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """A run of the Cloud Run job named ``job`` (an expression), waiting for its execution."""
    name = (
        '${"projects/" + sys.get_env("GOOGLE_CLOUD_PROJECT_ID") + "/locations/" + '
        f'sys.get_env("GOOGLE_CLOUD_LOCATION") + "/jobs/" + {job[2:-1]}}}'
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
