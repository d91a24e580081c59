"""Resume a failed run of a deployed pipeline: a new execution of the same run.

A run's id is its first execution's name, and every output of the run lives under that id in storage. Execution
names are unique per state machine (for 90 days), so a resumed run is a new execution, named
``<run>-resume-<n>``, whose input names the run and carries the first execution's input unchanged:
``{"resume": {"run_id": RUN, "params": {...}}}``. The state machine's ``Run-start`` Choice takes the run's id and
params from there (see :mod:`sparkflow.targets.aws.emit`), so the new execution writes where the failed one did,
reads the same sources, and every stage already committed answers at once (the runtime never recomputes a
committed output). Only a run that ended without succeeding (failed, timed out, aborted) is resumed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sparkflow.targets.aws.emit import RESUME_KEY
from sparkflow.targets.aws.watch import Clients, WatchError, _call, _reason, default_clients, run_of
from sparkflow.targets.runs import resume_refusal

NAME_LIMIT = 80  # Step Functions' longest execution name
_RESUMED = "-resume-"


@dataclass(frozen=True)
class Execution:
    """One execution of a run: its ARN, name, status, start time and input."""

    arn: str
    name: str
    status: str
    started: Any
    input: dict[str, Any]

    @property
    def run_id(self) -> str:
        """The run it executes: its name, or for a resumed run the run its input names."""
        return run_of(self.name, json.dumps(self.input))

    @property
    def params(self) -> dict[str, Any]:
        """The run's params (sources, chunk size, sinks): what its first execution was started with."""
        resumed = self.input.get(RESUME_KEY)
        if isinstance(resumed, dict):
            return dict(resumed.get("params") or {})
        return self.input


def resume(state_machine_arn: str, run_id: str, *, clients: Clients | None = None) -> str:
    """Start a new execution of the run ``run_id`` that ended without succeeding; return its ARN.

    Raises:
        WatchError: the state machine has no run ``run_id``, or the run is still running, or it succeeded.
    """
    sfn = (clients or default_clients)("stepfunctions")
    executions = executions_of(sfn, state_machine_arn, run_id)
    machine = state_machine_arn.rsplit(":", 1)[-1]
    if not executions:
        raise WatchError(
            f"--resume {run_id}: state machine {machine} has no run {run_id!r}; give the run id `sparkflow start` "
            "printed (the name of the run's first execution)"
        )
    latest = executions[-1]
    refusal = resume_refusal(run_id, latest.status, latest.arn, f"sparkflow status {latest.arn}", "stop")
    if refusal:
        raise WatchError(refusal)
    answer = _call(
        f"resuming run {run_id} of {state_machine_arn}",
        sfn.start_execution,
        stateMachineArn=state_machine_arn,
        name=execution_name(run_id, len(executions)),
        input=json.dumps({RESUME_KEY: {"run_id": run_id, "params": latest.params}}, sort_keys=True),
    )
    return str(answer["executionArn"])


def execution_name(run_id: str, number: int) -> str:
    """The name of the run's ``number``-th resumed execution; the run id is cut short if the name would pass
    Step Functions' 80 characters (the execution's input names the run in full)."""
    suffix = f"{_RESUMED}{number}"
    return run_id[: NAME_LIMIT - len(suffix)] + suffix


def executions_of(sfn: Any, state_machine_arn: str, run_id: str) -> list[Execution]:
    """Every execution of the run ``run_id``, oldest first: the one named after it, and its resumed ones."""
    found: list[Execution] = []
    for item in _listed(sfn, state_machine_arn):
        name = str(item["name"])
        # Only the run's own names are read further (the list holds every run of the state machine).
        if name != run_id and not (_RESUMED in name and run_id.startswith(name.rsplit(_RESUMED, 1)[0])):
            continue
        arn = str(item["executionArn"])
        described = _call(f"reading run {arn}", sfn.describe_execution, executionArn=arn)
        execution = Execution(
            arn, name, str(described["status"]), described["startDate"], _input(described.get("input"))
        )
        if execution.run_id == run_id:
            found.append(execution)
    return sorted(found, key=lambda execution: execution.started)


def _listed(sfn: Any, state_machine_arn: str) -> Iterator[dict[str, Any]]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
            yield from page.get("executions", [])
    except (ClientError, BotoCoreError) as error:
        raise WatchError(f"listing the runs of {state_machine_arn}: {_reason(error)}") from error


def _input(text: str | None) -> dict[str, Any]:
    try:
        document = json.loads(text or "{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
