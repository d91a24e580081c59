"""Start a run of a deployed pipeline and read where it is, from Step Functions' own execution history.

``start(state_machine_arn, {"books": "s3://..."})`` starts an execution named after a new run id (the state
machine uses the execution name as the run id) with ``{"sources": ...}`` as its input (an execution of a resumed
run names its run in its input instead: :mod:`sparkflow.targets.aws.resume`). ``status(arn)`` reads
the execution, its state machine's definition and its history and returns a :class:`RunStatus`: every Task
state of the definition (a stage, or a step sparkflow added such as a split), in reading order, as
``pending`` / ``running`` / ``done`` / ``failed`` with the error and cause of a failure, how many times it ran
(a state inside a Map runs once per chunk), and, once the run succeeded, where its outputs are. ``follow`` reads
only the events since its last reading, and waits longer between readings while nothing happens.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from sparkflow.errors import SparkflowError
from sparkflow.targets.aws.emit import RESUME_KEY
from sparkflow.targets.runs import (
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    STOPPED,
    ChunkCounts,
    RunStatus,
    StageStatus,
    follow_run,
    run_input,
)

Clients = Callable[[str], Any]


class WatchError(SparkflowError, RuntimeError):
    """A run cannot be started or read (no such state machine or execution, no permission)."""


def default_clients(service: str) -> Any:
    import boto3

    return boto3.client(service)


def new_run_id() -> str:
    """A run id that sorts by start time and is a valid execution name (80 characters at most)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def start(
    state_machine_arn: str,
    sources: Mapping[str, str],
    *,
    run_id: str | None = None,
    clients: Clients | None = None,
    params: Mapping[str, Any] | None = None,
    keep_work: bool = False,
) -> str:
    """Start a run reading each source from ``sources`` (name -> location), with the parameter values ``params``
    (``{"params": {...}}`` in the execution input, which every task's event carries), keeping its working files
    with ``keep_work``; return the execution ARN."""
    sfn = (clients or default_clients)("stepfunctions")
    answer = _call(
        f"starting a run of {state_machine_arn}",
        sfn.start_execution,
        stateMachineArn=state_machine_arn,
        name=run_id or new_run_id(),
        input=run_input(sources, params, keep_work),
    )
    return str(answer["executionArn"])


def status(execution_arn: str, *, clients: Clients | None = None) -> RunStatus:
    """The run's status now: every Task state of its definition, from the execution history."""
    return _Watch(execution_arn, clients).read()


def follow(
    execution_arn: str,
    *,
    clients: Clients | None = None,
    on_update: Callable[[RunStatus], None] | None = None,
    interval_s: float = 1.0,
    longest_interval_s: float = 10.0,
    timeout_s: float | None = None,
) -> RunStatus:
    """Read the run's status until it ends, calling ``on_update`` with every reading; return the last one.

    Each reading reads only the history events since the last one (:class:`_Watch`). The pause between readings
    starts at ``interval_s`` and grows by half up to ``longest_interval_s`` while nothing happens (a stage running
    for minutes is not read every second), and starts again when something does.
    """
    watch = _Watch(execution_arn, clients)
    return follow_run(
        watch.read,
        progress=lambda: watch.last_event,
        error=WatchError,
        on_update=on_update,
        interval_s=interval_s,
        longest_interval_s=longest_interval_s,
        timeout_s=timeout_s,
    )


class _Watch:
    """One run, read again and again: its definition is read once, and each reading reads the history from the
    newest event back to the last one already folded (Step Functions' ``reverseOrder``, page by page), so a long
    run's history is not read whole at every poll."""

    def __init__(self, execution_arn: str, clients: Clients | None) -> None:
        self.execution_arn = execution_arn
        self.sfn = (clients or default_clients)("stepfunctions")
        # The definition the execution runs (the state machine may have been updated since it started).
        machine = _call(
            f"reading the state machine of {execution_arn}",
            self.sfn.describe_state_machine_for_execution,
            executionArn=execution_arn,
        )
        self.fold = _Fold(task_states(json.loads(machine["definition"])))
        self.last_event = 0

    def read(self) -> RunStatus:
        # The execution first: once it has ended, the history read next holds its last event.
        described = _call(
            f"reading run {self.execution_arn}", self.sfn.describe_execution, executionArn=self.execution_arn
        )
        for event in self._new_events():
            self.fold.apply(event)
        if described["status"] != "RUNNING":
            self.fold.finish()
        counts = {name: _map_run_counts(self.sfn, arn) for name, arn in self.fold.map_runs.items()}
        stages = tuple(replace(stage, chunks=counts.get(stage.name)) for stage in self.fold.stages())
        if described["status"] == "SUCCEEDED":  # what a finished run never entered, it did not need
            stages = tuple(replace(stage, state=SKIPPED) if stage.state == PENDING else stage for stage in stages)
        outputs: dict[str, str] = {}
        if described["status"] == "SUCCEEDED" and described.get("output"):
            document = json.loads(described["output"])
            found = document.get("outputs") if isinstance(document, dict) else None
            outputs = {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
        return RunStatus(
            execution=self.execution_arn,
            run_id=run_of(str(described["name"]), described.get("input")),
            status=str(described["status"]),
            stages=stages,
            outputs=outputs,
            params=_params_of(described.get("input")),
            error=described.get("error"),
            cause=described.get("cause"),
            seconds=_run_seconds(described),
        )

    def _new_events(self) -> list[dict[str, Any]]:
        """The events after the last one folded, oldest first. Pages come newest first; reading stops at the page
        that reaches an event already folded (an API that ignores ``reverseOrder`` is read whole, and filtered)."""
        fresh: list[dict[str, Any]] = []
        for events in _history_pages(self.sfn, self.execution_arn):
            fresh += [event for event in events if int(event["id"]) > self.last_event]
            newest_first = len(events) > 1 and int(events[0]["id"]) > int(events[-1]["id"])
            if newest_first and int(events[-1]["id"]) <= self.last_event:
                break
        fresh.sort(key=lambda event: int(event["id"]))
        if fresh:
            self.last_event = int(fresh[-1]["id"])
        return fresh


def _run_seconds(described: Mapping[str, Any]) -> float | None:
    """How long an execution that ended took."""
    began, stopped = _epoch(described.get("startDate")), _epoch(described.get("stopDate"))
    return None if began is None or stopped is None else round(stopped - began, 3)


def run_of(execution_name: str, execution_input: str | None) -> str:
    """The run an execution executes: its name, or for an execution started by ``start --resume`` the run its
    input names (``{"resume": {"run_id": ...}}``, see :mod:`sparkflow.targets.aws.resume`)."""
    try:
        document = json.loads(execution_input or "{}")
    except ValueError:
        return execution_name
    resumed = document.get(RESUME_KEY) if isinstance(document, dict) else None
    return str(resumed["run_id"]) if isinstance(resumed, dict) and "run_id" in resumed else execution_name


def task_states(definition: Mapping[str, Any]) -> list[str]:
    """The states a run is followed by, in the order they are written: every Task state (in Parallel branches
    and inline Maps too) and every Distributed Map state, whose item processor runs in child executions with
    histories of their own (their progress is the map run's item counts)."""
    found: list[str] = []

    def visit(states: Mapping[str, Any]) -> None:
        for name, state in states.items():
            kind = state.get("Type")
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            if kind == "Task" or (kind == "Map" and _distributed(processor)):
                found.append(name)
                continue
            for branch in state.get("Branches", ()):
                visit(branch.get("States", {}))
            if kind == "Map":
                visit(processor.get("States", {}))

    visit(definition.get("States", {}))
    return found


def _distributed(processor: Mapping[str, Any]) -> bool:
    return bool((processor.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED")


def _map_run_counts(sfn: Any, map_run_arn: str) -> ChunkCounts | None:
    described = _call(f"reading map run {map_run_arn}", sfn.describe_map_run, mapRunArn=map_run_arn)
    items = described.get("itemCounts") or {}
    return ChunkCounts(
        total=int(items.get("total", 0)),
        succeeded=int(items.get("succeeded", 0)),
        failed=int(items.get("failed", 0)) + int(items.get("timedOut", 0)) + int(items.get("aborted", 0)),
        running=int(items.get("running", 0)) + int(items.get("pending", 0)),
    )


class _Tracker:
    """What the history says of one Task state so far."""

    def __init__(self) -> None:
        self.entered = 0
        self.exited_ok = 0
        self.exited_failed = 0
        self.stopped = 0
        self.pending_error: tuple[str | None, str | None] | None = None
        self.last_error: tuple[str | None, str | None] | None = None
        self.started_at: float | None = None  # the first entry's time
        self.ended_at: float | None = None  # the last exit's time

    def result(self, name: str) -> StageStatus:
        if self.entered == 0:
            state = PENDING
        elif self.exited_failed:
            state = FAILED
        elif self.exited_ok + self.stopped < self.entered:
            state = RUNNING
        elif self.stopped:
            state = STOPPED
        else:
            state = DONE
        error, cause = self.last_error if state == FAILED and self.last_error else (None, None)
        seconds = None
        if state != RUNNING and self.started_at is not None and self.ended_at is not None:
            seconds = round(self.ended_at - self.started_at, 3)
        return StageStatus(
            name, state, self.entered, self.exited_ok, error, cause, None, self.started_at, self.ended_at, seconds
        )


# History events that say a task attempt failed, and where their error and cause are.
_FAILURE_DETAILS = (
    "taskFailedEventDetails",
    "taskTimedOutEventDetails",
    "taskStartFailedEventDetails",
    "taskSubmitFailedEventDetails",
    "lambdaFunctionFailedEventDetails",
    "lambdaFunctionTimedOutEventDetails",
    "lambdaFunctionScheduleFailedEventDetails",
    "lambdaFunctionStartFailedEventDetails",
    "mapRunFailedEventDetails",
)


class _Fold:
    """Folds history events into one tracker per Task state.

    Task events (scheduled, failed, ...) carry no state name: they belong to the open Task state (entered, not
    yet exited) entered last, since a task's events follow its state's entry. An attempt's failure counts only
    when the state then exits without a new attempt (a retry schedules the task again; a Catch exits it).
    """

    def __init__(self, names: list[str]) -> None:
        self.trackers = {name: _Tracker() for name in names}
        self.open: list[str] = []
        self.map_runs: dict[str, str] = {}  # Distributed Map state -> its latest map run's ARN

    def apply(self, event: Mapping[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if kind in ("TaskStateEntered", "MapStateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            if name in self.trackers:
                tracker = self.trackers[name]
                tracker.entered += 1
                if tracker.started_at is None:
                    tracker.started_at = _epoch(event.get("timestamp"))
                self.open.append(name)
        elif kind in ("TaskStateExited", "TaskStateAborted", "MapStateExited", "MapStateAborted"):
            details = event.get("stateExitedEventDetails") or {}
            name = details.get("name") or (self.open[-1] if self.open else None)
            if name in self.trackers:
                self._exit(name, aborted=kind.endswith("Aborted"))
                self.trackers[name].ended_at = _epoch(event.get("timestamp")) or self.trackers[name].ended_at
        elif kind == "MapRunStarted":
            arn = (event.get("mapRunStartedEventDetails") or {}).get("mapRunArn")
            if arn and self.open:
                self.map_runs[self.open[-1]] = str(arn)
        elif kind in ("TaskScheduled", "LambdaFunctionScheduled"):
            current = self._current()
            if current is not None:
                current.pending_error = None
        else:
            for key in _FAILURE_DETAILS:
                details = event.get(key)
                current = self._current()
                if details is not None and current is not None:
                    current.pending_error = (details.get("error"), _readable_cause(details.get("cause")))
                    break

    def finish(self) -> None:
        """The run ended: a state still open failed if its last attempt failed (no Catch), else was stopped."""
        for name in list(reversed(self.open)):
            self._exit(name, aborted=True)

    def _exit(self, name: str, *, aborted: bool) -> None:
        item = self.trackers[name]
        if item.pending_error is not None:
            item.exited_failed += 1
            item.last_error = item.pending_error
        elif aborted:
            item.stopped += 1
        else:
            item.exited_ok += 1
        item.pending_error = None
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index] == name:
                del self.open[index]
                break

    def _current(self) -> _Tracker | None:
        return self.trackers[self.open[-1]] if self.open else None

    def stages(self) -> tuple[StageStatus, ...]:
        return tuple(tracker.result(name) for name, tracker in self.trackers.items())


def _epoch(moment: Any) -> float | None:
    """A history or execution time (boto3 gives datetimes) as seconds since the epoch."""
    if moment is None:
        return None
    return float(moment.timestamp()) if hasattr(moment, "timestamp") else float(moment)


def _params_of(execution_input: str | None) -> dict[str, Any]:
    """The parameter values an execution's input gives (``sparkflow start`` sends every one, defaults included)."""
    from sparkflow.params import INPUT_FIELD

    try:
        document = json.loads(execution_input or "{}")
    except ValueError:
        return {}
    found = document.get(INPUT_FIELD) if isinstance(document, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _readable_cause(cause: Any) -> str | None:
    """A Lambda function's failure cause is JSON (errorMessage, errorType, stackTrace): keep the message."""
    if cause is None:
        return None
    text = str(cause)
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
        return str(document["errorMessage"])
    return text


def _history_pages(sfn: Any, execution_arn: str) -> Iterator[list[dict[str, Any]]]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn, reverseOrder=True)
        for page in pages:
            yield list(page.get("events", []))
    except (ClientError, BotoCoreError) as error:
        raise WatchError(f"reading the history of {execution_arn}: {_reason(error)}") from error


def _call(what: str, method: Callable[..., Any], **arguments: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return method(**arguments)
    except (ClientError, BotoCoreError) as error:
        raise WatchError(f"{what}: {_reason(error)}") from error


def _reason(error: Any) -> str:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return str(error)
    details = response.get("Error", {})
    return f"{details.get('Code', 'error')}: {details.get('Message', error)}"
