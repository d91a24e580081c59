"""Limits of an emitted ASL definition: size, state names, history events."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from sparkflow.errors import DefinitionError, SparkflowError
from sparkflow.plan import Plan
from sparkflow.targets.aws import limits

_ILLEGAL_NAME = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
# Fault-free history events: a Task state logs entered, scheduled, started, succeeded and exited; a
# Parallel or Pass state logs about four; each retry of a task adds scheduled, started, failed. A Distributed
# Map state logs a fixed handful (entered, map run started/succeeded, exited, ...) however many chunks it runs:
# every chunk is a child execution with its own history and its own 25,000-event limit (a chunk task logs
# about 5 + 3 x retries). So a split stage adds the same events for 1 chunk as for 10,000, and what travels
# through its state is the split task's pointer (a bucket and two keys), not a list of chunks: 10,000 chunks
# stay under both the 256 KiB payload and the 25,000-event history limits.
_EVENTS_PER_TASK, _EVENTS_PER_RETRY, _EVENTS_PER_OTHER_STATE, _EVENTS_PER_EXECUTION = 5, 3, 4, 2
_EVENTS_PER_MAP = 8


def check(plan: Plan, text: str) -> list[SparkflowError]:
    document = json.loads(text)
    problems: list[SparkflowError] = []
    origin = plan.tasks[0].origin if plan.tasks else None
    size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limits.DEFINITION_BYTES.value:
        problems.append(
            DefinitionError(
                f"pipeline {plan.pipeline!r}: the state machine definition is {size:,} bytes minified, over the "
                f"{limits.DEFINITION_BYTES.describe()}: split the pipeline into several pipelines",
                origin,
            )
        )
    for name, _ in _states(document):
        if len(name) > limits.STATE_NAME_CHARS.value or _ILLEGAL_NAME.search(name):
            problems.append(DefinitionError(f"state name {name!r} breaks the {limits.STATE_NAME_CHARS.describe()}"))
    events = estimate_history_events(plan, document)
    if events > limits.HISTORY_EVENTS.value:
        problems.append(
            DefinitionError(
                f"pipeline {plan.pipeline!r}: a run may log {events:,} history events, over the "
                f"{limits.HISTORY_EVENTS.describe()}: split the pipeline or lower retries=",
                origin,
            )
        )
    return problems


def estimate_history_events(plan: Plan, document: dict[str, Any]) -> int:
    """History events of a run in which every retry of every task is used (the worst case)."""
    per_task = {task.id: _EVENTS_PER_TASK + _EVENTS_PER_RETRY * task.retries for task in plan.tasks}
    # a split stage: its split and commit tasks in this history; its chunk tasks in child executions
    tasks = sum(events * (2 if plan.task(task_id).fanout else 1) for task_id, events in per_task.items())
    maps = sum(1 for _, state in _states(document) if state["Type"] == "Map")
    others = sum(1 for _, state in _states(document) if state["Type"] in ("Parallel", "Pass"))
    return _EVENTS_PER_EXECUTION + tasks + _EVENTS_PER_MAP * maps + _EVENTS_PER_OTHER_STATE * others


def _states(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The states of this execution's history (a Distributed Map's item states run in child executions)."""
    for name, state in document["States"].items():
        yield name, state
        for branch in state.get("Branches", ()):
            yield from _states(branch)
