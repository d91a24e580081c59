"""Plan -> Amazon States Language (JSONPath mode, Standard workflow).

Shape of every definition:

* ``Run-start`` (Choice) goes to ``Run-new`` (Pass), which puts ``{"run": {"id", "storage", "params"}}`` in the
  state: the execution name is the run id, the storage root is the ``${StorageRoot}`` placeholder filled at deploy
  time, ``params`` is the execution input (e.g. ``{"sources": {"books": "s3://..."}}`` to override a source's
  location, ``{"params": {"n": 5}}`` for the pipeline's parameters): every task's event carries it, and the runtime
  checks the parameters' values against the Plan and passes them to the stages (defaults for those left out). An
  execution started by ``sparkflow start --resume`` has a name of its own (names are unique) and the input
  ``{"resume": {"run_id", "params"}}``: ``Run-resumed`` takes the run's id and params from there.
* A split stage's split task answers ``already-committed`` when a resumed run finds the stage committed: a Choice
  (``<stage>-committed``) then goes straight to its commit task, starting no chunk task.
* One Task per stage on ``lambda:invoke``; its payload is the runtime event. Every task's result is dropped
  (``ResultPath: null``): locations are derived from the run id, so nothing but the small ``run`` object ever
  travels through state and the state size does not grow with the number of stages.
* Stages placed on a container run as an ECS Fargate task (``ecs:runTask.sync``) of the same image, the event
  in its ``SPARKFLOW_EVENT`` variable; Step Functions does not fail a task whose container exits non-zero, so
  a Choice checks the exit code. Stages placed on serverless Spark run as an EMR Serverless job run
  (``emr-serverless:startJobRun.sync``), the event as its one argument. Both get the event from a Pass state
  ``<stage>-event`` (``$.job``: the event and the attempts so far; the next such state overwrites it, so the
  state stays small).
* Independent stages run in Parallel branches (see :mod:`sparkflow.compiler.schedule`).
* A failing stage is caught into ``<stage>-failed``, a Fail state whose cause names the stage.
* ``Run-publish`` (a Lambda invoke of the runtime with phase ``publish``) runs once every stage has committed: it
  publishes the pipeline's sinks and points its ``_latest.json`` at the run (see
  :mod:`sparkflow.runtime.publish`); a failure is caught into ``Run-publish-failed``.
* ``Run-succeeded`` (Pass) returns the run id and the location of every output the pipeline returns.

State names: stage names are identifiers (no ``-``); every state sparkflow adds contains a ``-``, so the two
never clash and nothing is truncated.
"""

from __future__ import annotations

import json
from typing import Any

from sparkflow.errors import CompileError, DefinitionError
from sparkflow.plan import Parallel, Plan, PlanTask, Run, Sequence, Step
from sparkflow.runtime.protocol import EVENT_VARIABLE, final_errors, run_object
from sparkflow.runtime.protocol import event as protocol_event

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
ECS_RUN_TASK = "arn:aws:states:::ecs:runTask.sync"
EMR_SERVERLESS_RUN = "arn:aws:states:::emr-serverless:startJobRun.sync"
CONTAINER_NAME = "stage"  # the container's name in every task definition sparkflow makes
START, PUBLISH, SUCCEEDED = "Run-start", "Run-publish", "Run-succeeded"
NEW, RESUMED = "Run-new", "Run-resumed"  # where Run-start goes for a new run and for a resumed one
# The execution input of a resumed run: {"resume": {"run_id": ..., "params": <the first execution's input>}}.
RESUME_KEY = "resume"
# Transient errors of the Lambda service itself, as AWS recommends retrying them
# (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html).
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Errors the runtime raises when retrying cannot help (a bad event, a corrupt input, a refused location, the
# stage's own code failing): the protocol's one list, less the other engine's own (see protocol.final_errors).


def storage_placeholder() -> str:
    return "${StorageRoot}"


def function_placeholder(memory_mb: int) -> str:
    """Stages share a Lambda function per memory size (one image; memory is a property of the function)."""
    return f"${{StageFunction{memory_mb}MB}}"


def container_key(memory_mb: int) -> str:
    """Container stages share an ECS task definition per memory size, as functions do: its placeholder's name."""
    return f"StageContainer{memory_mb}MB"


def container_placeholder(task: PlanTask) -> str:
    return f"${{{container_key(task.memory_mb)}}}"


# Deploy-time values of container and serverless Spark stages (DefinitionSubstitutions, see package.py).
CLUSTER, SUBNETS, SECURITY_GROUPS = "${ContainerCluster}", "${ContainerSubnets}", "${ContainerSecurityGroups}"
EMR_APPLICATION, EMR_ROLE = "${EmrApplicationId}", "${EmrJobRoleArn}"
EMR_ENTRY_POINT, EMR_PARAMETERS = "${EmrEntryPoint}", "${EmrSparkSubmitParameters}"


def emit(plan: Plan) -> str:
    """The ASL definition of ``plan`` as indented JSON text ending in a newline."""
    return json.dumps(definition(plan), indent=2, ensure_ascii=False) + "\n"


def definition(plan: Plan) -> dict[str, Any]:
    builder = _Builder(plan)
    states: dict[str, Any] = {}
    first = builder.step(plan.schedule, states, PUBLISH)
    publish = plan.publish
    payload = protocol_event(plan, None, "$.run", run_key="run.$")
    builder.put(
        states,
        PUBLISH,
        {
            **_lambda_task(publish.memory_mb, publish.timeout_s, publish.retries, payload),
            "Comment": "Every stage committed: publish the sinks, point the pipeline's _latest.json at this run.",
            "ResultPath": None,
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{PUBLISH}-failed"}],
            "Next": SUCCEEDED,
        },
    )
    builder.put(
        states,
        f"{PUBLISH}-failed",
        {
            "Type": "Fail",
            "Error": "PublishFailed",
            "CausePath": "States.Format('publishing the run failed: {}', $.error.Cause)",
        },
    )
    builder.put(
        states,
        START,
        {
            "Type": "Choice",
            "Comment": "A run resumed by `sparkflow start --resume` names its run in the input: its execution has a "
            "name of its own, as names are unique.",
            "Choices": [{"Variable": f"$.{RESUME_KEY}", "IsPresent": True, "Next": RESUMED}],
            "Default": NEW,
        },
    )
    builder.put(
        states,
        NEW,
        {
            "Type": "Pass",
            "Comment": "The run: its id is the execution name; params is the execution input.",
            "Parameters": {
                "run": run_object(
                    plan, **{"id.$": "$$.Execution.Name", "storage": storage_placeholder(), "params.$": "$"}
                )
            },
            "Next": first,
        },
    )
    builder.put(
        states,
        RESUMED,
        {
            "Type": "Pass",
            "Comment": "The run again, with the id and params of its first execution: committed stages answer at once.",
            "Parameters": {
                "run": run_object(
                    plan,
                    **{
                        "id.$": f"$.{RESUME_KEY}.run_id",
                        "storage": storage_placeholder(),
                        "params.$": f"$.{RESUME_KEY}.params",
                    },
                )
            },
            "Next": first,
        },
    )
    builder.put(
        states,
        SUCCEEDED,
        {
            "Type": "Pass",
            "Comment": "Where the outputs of this run are.",
            "Parameters": {
                "run_id.$": "$.run.id",
                "outputs": {f"{node}.$": _location_expression(plan, plan.task(node)) for node in plan.outputs},
            },
            "End": True,
        },
    )
    return {
        "Comment": (
            f"Generated by sparkflow from {plan.source_file} (pipeline {plan.pipeline}). "
            "Do not edit: change the pipeline and run `sparkflow compile`."
        ),
        "StartAt": START,
        "States": {name: states[name] for name in _ordered(states, START)},
    }


class _Builder:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.owners: dict[str, PlanTask | None] = {}  # every state name given so far (Parallel branches included)
        # Parallel states are numbered in reading order (sequences are built back to front, so number first).
        self.parallel_numbers: dict[int, int] = {}
        self._number(plan.schedule)

    def _number(self, step: Step) -> None:
        if isinstance(step, Parallel):
            self.parallel_numbers[id(step)] = len(self.parallel_numbers) + 1
        for inner in step.branches if isinstance(step, Parallel) else step.steps if isinstance(step, Sequence) else ():
            self._number(inner)

    def put(self, states: dict[str, Any], name: str, state: dict[str, Any], task: PlanTask | None = None) -> None:
        """Add ``state`` as ``name``, made for ``task`` (None: a state of the run's own). State names are unique in
        the whole state machine: two that collide (stage names may hold '-') are a compile error naming both."""
        if name in self.owners:
            raise CompileError([_collision(name, task, self.owners[name])])
        self.owners[name] = task
        states[name] = state

    def step(self, step: Step, states: dict[str, Any], next_state: str | None) -> str:
        """Add the states of ``step`` to ``states``, continuing at ``next_state`` (None: end of branch).

        Returns the name of the step's first state.
        """
        if isinstance(step, Run):
            return self._task(self.plan.task(step.task), states, next_state)
        if isinstance(step, Sequence):
            following = next_state
            for inner in reversed(step.steps):
                following = self.step(inner, states, following)
            assert following is not None
            return following
        return self._parallel(step, states, next_state)

    def _parallel(self, step: Parallel, states: dict[str, Any], next_state: str | None) -> str:
        name = f"Parallel-{self.parallel_numbers[id(step)]}"
        branches = []
        for branch in step.branches:
            branch_states: dict[str, Any] = {}
            start = self.step(branch, branch_states, None)
            branches.append({"StartAt": start, "States": {n: branch_states[n] for n in _ordered(branch_states, start)}})
        self.put(
            states, name, {"Type": "Parallel", "Branches": branches, "ResultPath": None, **_next(next_state)}, None
        )
        return name

    def _task(self, task: PlanTask, states: dict[str, Any], next_state: str | None) -> str:
        """Add the states of one stage; return the name of its first state."""
        failed = f"{task.id}-failed"
        catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": failed}]
        self.put(
            states,
            failed,
            {
                "Type": "Fail",
                "Error": "StageFailed",
                "CausePath": f"States.Format('stage {task.id} failed: {{}}', $.error.Cause)",
            },
            task,
        )
        fanout = task.fanout
        if task.placement in ("container", "serverless-spark"):
            return self._job(task, states, catch, next_state)
        if fanout is None:
            self.put(
                states,
                task.id,
                {**self._invoke(task, {}), "ResultPath": None, "Catch": catch, **_next(next_state)},
                task,
            )
            return task.id
        phases = fanout.phases()
        names = [f"{task.id}-{phase}" for phase in phases]
        followers = [*names[1:], next_state]
        # The split and partition tasks answer with where the item lists are: a few strings, whatever the number of
        # chunks. The partition task's answer replaces the split's: the reduce map reads the reducers it chose.
        pointer = {"bucket.$": "$.Payload.output.bucket", "status.$": "$.Payload.status"}
        fanned = [phase for phase in phases if phase in ("map", "reduce")]  # Distributed Maps over an item list
        pointer.update({f"{phase}.$": f"$.Payload.output.{phase}_items" for phase in fanned})
        committed = f"{task.id}-committed"
        self.put(
            states,
            names[0],
            {
                **self._invoke(task, {"phase": "split", "chunk_bytes": fanout.chunk_bytes}),
                "ResultSelector": pointer,
                "ResultPath": "$.split",
                "Catch": catch,
                "Next": committed,
            },
            task,
        )
        # A stage a resumed run finds committed starts no chunk task: straight to its commit, which answers at once.
        self.put(
            states,
            committed,
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.split.status", "StringEquals": "already-committed", "Next": names[-1]}],
                "Default": names[1],
            },
            task,
        )
        for phase, name, following in zip(phases[1:-1], names[1:-1], followers[1:-1], strict=True):
            if phase == "partition":
                state = {**self._invoke(task, {"phase": phase}), "ResultSelector": pointer, "ResultPath": "$.split"}
            else:
                state = self._distributed_map(task, phase)
            self.put(states, name, {**state, "Catch": catch, **_next(following)}, task)
        self.put(
            states,
            names[-1],
            {
                **self._invoke(task, {"phase": "commit"}),
                "ResultPath": None,
                "Catch": catch,
                **_next(next_state),
            },
            task,
        )
        return names[0]

    def _job(self, task: PlanTask, states: dict[str, Any], catch: list[dict[str, Any]], next_state: str | None) -> str:
        """A stage run as an ECS Fargate task or an EMR Serverless job run; returns its first state's name."""
        event = f"{task.id}-event"
        self.put(
            states,
            event,
            {
                "Type": "Pass",
                "Comment": "The runtime event, for the job's environment or arguments, and the attempts so far.",
                "Parameters": {
                    "event": protocol_event(self.plan, task, "$.run", run_key="run.$"),
                    "tries": 0,
                },
                "ResultPath": "$.job",
                "Next": task.id,
            },
            task,
        )
        retry = self._job_retry(task)
        common = {"TimeoutSeconds": task.timeout_s, **({"Retry": retry} if retry else {}), "Catch": catch}
        if task.placement == "serverless-spark":
            self.put(
                states,
                task.id,
                {
                    "Type": "Task",
                    "Resource": EMR_SERVERLESS_RUN,
                    "Parameters": {
                        "ApplicationId": EMR_APPLICATION,
                        "ExecutionRoleArn": EMR_ROLE,
                        "Name": f"{self.plan.pipeline}-{task.id}",
                        "ClientToken.$": "States.UUID()",
                        "JobDriver": {
                            "SparkSubmit": {
                                "EntryPoint": EMR_ENTRY_POINT,
                                "EntryPointArguments.$": "States.Array(States.JsonToString($.job.event))",
                                "SparkSubmitParameters": EMR_PARAMETERS,
                            }
                        },
                    },
                    **common,
                    "ResultPath": None,
                    **_next(next_state),
                },
                task,
            )
            return event
        self.put(
            states,
            task.id,
            {
                "Type": "Task",
                "Resource": ECS_RUN_TASK,
                "Parameters": {
                    "Cluster": CLUSTER,
                    "TaskDefinition": container_placeholder(task),
                    "LaunchType": "FARGATE",
                    "NetworkConfiguration": {
                        "AwsvpcConfiguration": {
                            "Subnets.$": f"States.StringSplit('{SUBNETS}', ',')",
                            "SecurityGroups.$": f"States.StringSplit('{SECURITY_GROUPS}', ',')",
                            "AssignPublicIp": "DISABLED",
                        }
                    },
                    "Overrides": {
                        "ContainerOverrides": [
                            {
                                "Name": CONTAINER_NAME,
                                "Environment": [
                                    {"Name": EVENT_VARIABLE, "Value.$": "States.JsonToString($.job.event)"}
                                ],
                            }
                        ]
                    },
                },
                **common,
                "ResultSelector": {"container.$": "$.Containers[0]"},
                "ResultPath": "$.job.stopped",
                "Next": f"{task.id}-exit-code",
            },
            task,
        )
        self._exit_code(task, states, next_state)
        return event

    def _exit_code(self, task: PlanTask, states: dict[str, Any], next_state: str | None) -> None:
        """What follows a stopped container: Step Functions does not fail a task whose container exits non-zero,
        so a Choice reads the exit code. 0: done. 1 (the runtime's "another attempt may help"): retried up to the
        stage's ``retries=``, 30 s apart. Anything else — 2 (retrying cannot help), or no code at all when the
        container never started — fails the stage with the container's description as the cause."""
        code = "$.job.stopped.container.ExitCode"
        after = next_state or f"{task.id}-done"
        if next_state is None:
            self.put(states, after, {"Type": "Succeed"}, task)
        choices: list[dict[str, Any]] = [
            {"And": [{"Variable": code, "IsPresent": True}, {"Variable": code, "NumericEquals": 0}], "Next": after}
        ]
        if task.retries:
            again = {"Variable": "$.job.tries", "NumericLessThan": task.retries}
            choices.append(
                {
                    "And": [{"Variable": code, "IsPresent": True}, {"Variable": code, "NumericEquals": 1}, again],
                    "Next": f"{task.id}-retry",
                }
            )
            self.put(
                states,
                f"{task.id}-retry",
                {
                    "Type": "Pass",
                    "Parameters": {"event.$": "$.job.event", "tries.$": "States.MathAdd($.job.tries, 1)"},
                    "ResultPath": "$.job",
                    "Next": f"{task.id}-wait",
                },
                task,
            )
            self.put(states, f"{task.id}-wait", {"Type": "Wait", "Seconds": 30, "Next": task.id}, task)
        stopped = f"{task.id}-exit-failed"
        self.put(states, f"{task.id}-exit-code", {"Type": "Choice", "Choices": choices, "Default": stopped}, task)
        self.put(
            states,
            stopped,
            {
                "Type": "Pass",
                "Parameters": {
                    "Cause.$": "States.Format('its container stopped: {}', States.JsonToString($.job.stopped))"
                },
                "ResultPath": "$.error",
                "Next": f"{task.id}-failed",
            },
            task,
        )

    def _job_retry(self, task: PlanTask) -> list[dict[str, Any]]:
        """Retries of a job's start and run (the service's throttling and capacity errors, a failed run)."""
        if not task.retries:
            return []
        return [
            {
                "ErrorEquals": ["States.TaskFailed"],
                "IntervalSeconds": 30,
                "MaxAttempts": task.retries,
                "BackoffRate": 2,
                "JitterStrategy": "FULL",
            }
        ]

    def _distributed_map(self, task: PlanTask, phase: str) -> dict[str, Any]:
        """One child execution per chunk (map) or reducer (reduce), read from the item list in S3.

        The item list stays in S3 (ItemReader) and each child answers an empty object (``OutputPath: null``),
        so what the Map state gathers is a few bytes per item (about 30 KB for 10,000 chunks, well under the
        256 KiB payload limit) and is dropped (``ResultPath: null``); each child execution has its own history,
        so the parent's history does not grow with the number of chunks either.
        """
        assert task.fanout is not None
        inner = f"{task.id}-{phase}-item"
        item = {
            **self._invoke(task, {"phase": phase, "chunk.$": "$.chunk"}),
            "ResultPath": None,
            "OutputPath": None,
            "End": True,
        }
        return {
            "Type": "Map",
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON"},
                "Parameters": {"Bucket.$": "$.split.bucket", "Key.$": f"$.split.{phase}"},
            },
            "ItemSelector": {"chunk.$": "$$.Map.Item.Value.chunk", "run.$": "$.run"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": inner,
                "States": {inner: item},
            },
            "MaxConcurrency": task.fanout.max_concurrency,
            "ResultPath": None,
        }

    def _invoke(self, task: PlanTask, extra: dict[str, Any]) -> dict[str, Any]:
        """A Lambda invoke of the runtime for ``task`` (``extra``: the phase and chunk of a split stage)."""
        payload = protocol_event(self.plan, task, "$.run", run_key="run.$", **extra)
        return _lambda_task(task.memory_mb, task.timeout_s, task.retries, payload, task.engine)


def _lambda_task(
    memory_mb: int, timeout_s: int, retries: int, payload: dict[str, Any], engine: str = "spark"
) -> dict[str, Any]:
    """A Task invoking the runtime's function of ``memory_mb`` with ``payload``, retried as the stage says."""
    retry: list[dict[str, Any]] = [
        {
            "ErrorEquals": LAMBDA_SERVICE_ERRORS,
            "IntervalSeconds": 2,
            "MaxAttempts": 6,
            "BackoffRate": 2,
            "MaxDelaySeconds": 60,
            "JitterStrategy": "FULL",
        },
        {"ErrorEquals": list(final_errors(engine)), "MaxAttempts": 0},
    ]
    if retries:
        retry.append(
            {
                "ErrorEquals": ["States.ALL"],
                "IntervalSeconds": 5,
                "MaxAttempts": retries,
                "BackoffRate": 2,
                "JitterStrategy": "FULL",
            }
        )
    return {
        "Type": "Task",
        "Resource": LAMBDA_INVOKE,
        "Parameters": {"FunctionName": function_placeholder(memory_mb), "Payload": payload},
        "TimeoutSeconds": timeout_s,
        "Retry": retry,
    }


def _collision(name: str, task: PlanTask | None, owner: PlanTask | None) -> DefinitionError:
    """Two stages (or a stage and the run) whose state names collide: the names a user would choose may hold '-',
    as the states sparkflow adds to a stage (``<stage>-failed``, ``<stage>-split``) and to the run do."""
    stages = [item for item in (task, owner) if item is not None]
    if len(stages) == 2 and stages[0].id != stages[1].id:
        first, second = stages
        return DefinitionError(
            f"stages {second.id!r} (declared at {second.origin}) and {first.id!r} both give the AWS state name "
            f"{name!r} (a stage's own states are named '<stage>-<part>'): rename one of them",
            first.origin,
        )
    if stages:
        return DefinitionError(
            f"stage {stages[0].id!r} is named like a state sparkflow adds ({name!r}: '{START}', '{NEW}', "
            f"'{RESUMED}', '{PUBLISH}', '{SUCCEEDED}', 'Parallel-<n>'): rename it",
            stages[0].origin,
        )
    return DefinitionError(f"the AWS state name {name!r} is given twice")


def _location_expression(plan: Plan, task: PlanTask) -> str:
    """An intrinsic that builds the output location of ``task`` from ``$.run`` (names need no escaping)."""
    if task.output == "value":
        key = f"kv:{plan.pipeline}/{{}}/{task.id}"
        return f"States.Format('{key}', $.run.id)"
    relative = task.location.replace("{run_id}", "{}")
    return f"States.Format('{{}}{relative}', $.run.storage, $.run.id)"


def _next(next_state: str | None) -> dict[str, Any]:
    return {"Next": next_state} if next_state else {"End": True}


def _ordered(states: dict[str, Any], start: str) -> list[str]:
    """States in the order they run (depth first from ``start``), so the file reads top to bottom."""
    seen: dict[str, None] = {}  # an ordered set: a list would make this quadratic in the number of states
    pending = [start]
    while pending:
        name = pending.pop()
        if name in seen or name not in states:
            continue
        seen[name] = None
        state = states[name]
        followers = [catch["Next"] for catch in state.get("Catch", ())]
        if "Default" in state:  # a Choice's usual way first (a new run, a stage not yet committed)
            followers.append(state["Default"])
        followers += [choice["Next"] for choice in state.get("Choices", ())]
        if "Next" in state:
            followers.append(state["Next"])
        pending.extend(reversed(followers))
    return [*seen, *sorted(set(states) - seen.keys())]
