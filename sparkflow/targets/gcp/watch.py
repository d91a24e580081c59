"""Start a run of a deployed pipeline's workflow and read where it is, with the official ``google-cloud-workflows``
client's ``ExecutionsClient`` (the Workflow Executions API).

``start`` creates an execution whose argument is ``{"sources": ...}``, as on AWS; Workflows names the execution
(a UUID), and that id is the run's id (the workflow's first step reads ``GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID``).
``resume`` runs a run that ended without succeeding again: a new execution (Workflows names it too) whose argument
names the run and carries its first execution's argument, ``{"resume": {"run_id", "params"}}``; the workflow's
``run-resumed`` step takes the run's id and params from there (see :mod:`sparkflow.targets.gcp.emit`), so the new
execution writes where the failed one did, and every stage already committed answers at once.
``status`` maps the execution to a :class:`RunStatus` as far as the API tells: the run's state, the outputs its
result names once it succeeded, its error (the stage that failed, from the error the workflow raised) once it
failed, and while it runs the step it is at (``status.currentSteps``). Unlike a Step Functions history, an
execution does not list the steps that already ended, so the stages done so far are not shown.

(https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sparkflow.errors import SparkflowError
from sparkflow.targets.gcp.emit import RESUME_KEY
from sparkflow.targets.runs import FAILED, RUNNING, RunStatus, StageStatus, follow_run, resume_refusal

if TYPE_CHECKING:
    from google.cloud.workflows.executions_v1 import ExecutionsClient

EXECUTION_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/workflows/[^/]+/executions/[^/]+$")
# Workflows' execution states in Step Functions' words, which RunStatus uses on every target.
_STATES = {
    "QUEUED": "RUNNING",  # waiting for the workflow's concurrency limit: started, not yet running
    "ACTIVE": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "CANCELLED": "ABORTED",
    "UNAVAILABLE": "FAILED",  # its data is gone (e.g. a deleted encryption key): it will not go on
}


class WatchError(SparkflowError, RuntimeError):
    """A run cannot be started or read (no such workflow or execution, no permission)."""


def _client(client: ExecutionsClient | None) -> ExecutionsClient:
    from google.cloud.workflows import executions_v1

    return client if client is not None else executions_v1.ExecutionsClient()


def start(
    pipeline_name: str,
    project: str,
    region: str,
    sources: Mapping[str, str],
    *,
    params: Mapping[str, Any] | None = None,
    keep_work: bool = False,
    client: ExecutionsClient | None = None,
) -> str:
    """Start a run reading each source from ``sources`` (name -> location) with the parameter values ``params``,
    keeping its working files with ``keep_work``; return the execution's name."""
    from google.cloud.workflows import executions_v1

    from sparkflow.targets.runs import run_input

    workflow = f"projects/{project}/locations/{region}/workflows/{pipeline_name}"
    execution = executions_v1.Execution(argument=run_input(sources, params, keep_work))
    created = _call(
        f"starting a run of {workflow}", _client(client).create_execution, parent=workflow, execution=execution
    )
    return str(created.name)


def resume(
    pipeline_name: str, project: str, region: str, run_id: str, *, client: ExecutionsClient | None = None
) -> str:
    """Start a new execution of the run ``run_id`` that ended without succeeding; return the execution's name.

    Raises:
        WatchError: the workflow has no run ``run_id``, or the run is still running, or it succeeded.
    """
    from google.cloud.workflows import executions_v1

    workflow = f"projects/{project}/locations/{region}/workflows/{pipeline_name}"
    chosen = _client(client)
    executions = executions_of(chosen, workflow, run_id)
    if not executions:
        raise WatchError(
            f"--resume {run_id}: workflow {pipeline_name} has no run {run_id!r}; give the run id `sparkflow start` "
            "printed (the id of the run's first execution)"
        )
    latest = run_status(executions[-1])
    follow = f"sparkflow status {latest.execution} --target gcp"
    refusal = resume_refusal(run_id, latest.status, latest.execution, follow, "cancel")
    if refusal:
        raise WatchError(refusal)
    argument = json.dumps({RESUME_KEY: {"run_id": run_id, "params": _params(executions[-1])}}, sort_keys=True)
    created = _call(
        f"resuming run {run_id} of {workflow}",
        chosen.create_execution,
        parent=workflow,
        execution=executions_v1.Execution(argument=argument),
    )
    return str(created.name)


def executions_of(client: ExecutionsClient, workflow: str, run_id: str) -> list[Any]:
    """Every execution of the run ``run_id``, oldest first: the one whose id it is, and its resumed ones."""
    from google.cloud.workflows import executions_v1

    request = executions_v1.ListExecutionsRequest(parent=workflow, view=executions_v1.ExecutionView.FULL)
    listed = _call(f"listing the runs of {workflow}", client.list_executions, request=request)
    found = [execution for execution in listed if _run_id(execution) == run_id]
    return sorted(found, key=lambda execution: execution.start_time)


def _resumed(execution: Any) -> dict[str, Any] | None:
    """What a resumed execution's argument says of its run (``run_id``, ``params``); None for a run's first one."""
    document = _json(execution.argument) if execution.argument else None
    found = document.get(RESUME_KEY) if isinstance(document, dict) else None
    return found if isinstance(found, dict) else None


def _run_id(execution: Any) -> str:
    """The run an execution executes: its own id, or for a resumed one the run its argument names."""
    resumed = _resumed(execution)
    if resumed is not None and isinstance(resumed.get("run_id"), str):
        return str(resumed["run_id"])
    return str(execution.name).rsplit("/", 1)[-1]


def _params(execution: Any) -> dict[str, Any]:
    """The run's params (sources, chunk size, sinks, parameters): what its first execution was started with."""
    resumed = _resumed(execution)
    if resumed is not None:
        return dict(resumed.get("params") or {})
    document = _json(execution.argument) if execution.argument else None
    return document if isinstance(document, dict) else {}


def status(execution_name: str, *, client: ExecutionsClient | None = None) -> RunStatus:
    """The run's status now."""
    if not EXECUTION_NAME.match(execution_name):
        raise WatchError(
            f"{execution_name!r} is not a Workflows execution: pass the name `sparkflow start --target gcp` printed, "
            "projects/P/locations/R/workflows/W/executions/ID"
        )
    execution = _call(f"reading run {execution_name}", _client(client).get_execution, name=execution_name)
    return run_status(execution)


def follow(
    execution_name: str,
    *,
    client: ExecutionsClient | None = None,
    on_update: Callable[[RunStatus], None] | None = None,
    interval_s: float = 1.0,
    longest_interval_s: float = 10.0,
    timeout_s: float | None = None,
) -> RunStatus:
    """Read the run's status until it ends, calling ``on_update`` with every reading; return the last one. The pause
    between readings grows by half up to ``longest_interval_s`` while nothing changes."""
    # An execution shows no history: a reading that differs from the last one is what happened.
    return follow_run(
        lambda: status(execution_name, client=client),
        error=WatchError,
        on_update=on_update,
        interval_s=interval_s,
        longest_interval_s=longest_interval_s,
        timeout_s=timeout_s,
    )


def run_status(execution: Any) -> RunStatus:
    """A :class:`RunStatus` of an ``Execution`` message."""
    state = _STATES.get(type(execution).State(execution.state).name, "RUNNING")
    name = str(execution.name)
    outputs: dict[str, str] = {}
    stages: list[StageStatus] = []
    error = cause = None
    if state == "SUCCEEDED" and execution.result:
        document = _json(execution.result)
        found = document.get("outputs") if isinstance(document, dict) else None
        outputs = {str(key): str(value) for key, value in found.items()} if isinstance(found, dict) else {}
    elif state == "RUNNING":
        stages = [StageStatus(str(step.step), RUNNING, started=1) for step in execution.status.current_steps]
    elif state == "FAILED":
        payload = _json(execution.error.payload) if execution.error.payload else None
        error, cause = _error(payload, execution)
        stages = [
            StageStatus(stage, FAILED, 1, 0, "StageFailed", message) for stage, message in _failed_stages(payload)
        ]
    elif state == "ABORTED":
        error, cause = "Cancelled", "the execution was cancelled"
    seconds = None
    if state != "RUNNING" and execution.start_time and execution.end_time:
        seconds = round((execution.end_time - execution.start_time).total_seconds(), 3)
    return RunStatus(
        execution=name,
        run_id=_run_id(execution),
        status=state,
        stages=tuple(stages),
        outputs=outputs,
        error=error,
        cause=cause,
        seconds=seconds,
    )


def _error(payload: Any, execution: Any) -> tuple[str | None, str | None]:
    """The error's tags and message, as the workflow raised it (or the state error of an unavailable execution)."""
    if isinstance(payload, dict):
        tags = payload.get("tags")
        kind = ", ".join(str(tag) for tag in tags) if isinstance(tags, list) and tags else "Error"
        return kind, str(payload.get("message") or execution.error.context or payload)
    if execution.state_error.details:
        return "Unavailable", str(execution.state_error.details)
    return "Error", str(payload if payload is not None else execution.error.context or "the run failed")


def _failed_stages(payload: Any) -> list[tuple[str, str]]:
    """Every stage whose failure the error holds: the workflow raises ``{tags: [StageFailed], stage, message}``,
    which a parallel step wraps in its own error (``UnhandledBranchError``) with each failed branch's."""
    found: dict[str, str] = {}
    for item in _maps(payload):
        tags = item.get("tags")
        if isinstance(tags, list) and "StageFailed" in tags and isinstance(item.get("stage"), str):
            found.setdefault(item["stage"], str(item.get("message", "")))
    return sorted(found.items())


def _maps(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for inner in value.values():
            yield from _maps(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _maps(inner)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _call(what: str, method: Callable[..., Any], **arguments: Any) -> Any:
    from google.api_core import exceptions

    try:
        return method(**arguments)
    except exceptions.NotFound as error:
        raise WatchError(f"{what}: not found ({error.message}): check the --project, --region and the name") from None
    except exceptions.GoogleAPICallError as error:
        raise WatchError(f"{what}: {error.message or error}") from error
