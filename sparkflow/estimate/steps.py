"""How many billed orchestration steps a run takes, per stage, read from the emitted definition itself.

Step Functions (Standard) bills a state transition each time a state is entered; Workflows bills each executed
call, assignment, condition and return. Both are counted on the path a run takes when every task succeeds the
first time (retries, failure states and a connector's polling are not counted), with a Distributed Map's child
executions, a parallel ``for`` and a Cloud Run job's fan-out sized by the model's chunks and buckets. Each state
or step is charged to the stage whose name it carries (``<stage>`` or ``<stage>-<part>``), the rest to ``run``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from sparkflow.estimate.model import StageWork
from sparkflow.plan import Plan

RUN = "run"  # the run's own states and steps: start, parallel, publish, succeeded
_CONDITION = re.compile(r"^\$\{(\w+) (<=|>) (\d+)\}$")
_RANGE = re.compile(r"^\$\{\[0, (\w+) - 1\]\}$")


def stage_owner(name: str, ids: list[str], default: str) -> str:
    """The stage ``name`` belongs to: the longest stage id it is, or starts with followed by '-'."""
    for task_id in ids:  # longest first
        if name == task_id or name.startswith(f"{task_id}-"):
            return task_id
    return default


def by_length(plan: Plan) -> list[str]:
    return sorted((task.id for task in plan.tasks), key=len, reverse=True)


def asl_transitions(plan: Plan, definition: Mapping[str, Any], work: Mapping[str, StageWork]) -> Counter[str]:
    """State transitions per stage id (and ``run``) of one successful execution of an ASL ``definition``."""
    counts: Counter[str] = Counter()
    _asl_path(definition, by_length(plan), work, counts, RUN)
    return counts


def _asl_path(
    machine: Mapping[str, Any], ids: list[str], work: Mapping[str, StageWork], counts: Counter[str], owner: str
) -> None:
    states = machine["States"]
    name: str | None = machine["StartAt"]
    while name is not None:
        state = states[name]
        here = stage_owner(name, ids, owner)
        counts[here] += 1
        kind = state["Type"]
        if kind == "Parallel":
            for branch in state["Branches"]:
                _asl_path(branch, ids, work, counts, here)
        elif kind == "Map":
            items = _map_items(name, here, work)
            inner: Counter[str] = Counter()
            _asl_path(state["ItemProcessor"], ids, work, inner, here)
            for key, value in inner.items():
                counts[key] += value * items
        if kind == "Choice":
            name = _fresh_run_choice(state)
        elif state.get("End") or kind in ("Succeed", "Fail"):
            name = None
        else:
            name = state["Next"]


def _fresh_run_choice(state: Mapping[str, Any]) -> str:
    """Where a Choice sends a new run whose tasks all succeed first time: past the choices only a resumed run takes
    (its resume input, a stage found committed) to their default; else the first choice (a container's exit code
    0)."""
    first = state["Choices"][0]
    if first.get("Variable") == "$.resume" or first.get("StringEquals") == "already-committed":
        return str(state["Default"])
    return str(first["Next"])


def _map_items(name: str, owner: str, work: Mapping[str, StageWork]) -> int:
    stage = work[owner]
    if name.endswith("-reduce"):
        return stage.buckets or 0
    return stage.chunks or 0


def workflow_steps(plan: Plan, definition: Mapping[str, Any], work: Mapping[str, StageWork]) -> Counter[str]:
    """Billed steps per stage id (and ``run``) of one successful execution of a Workflows ``definition``.

    A call of a subworkflow bills the subworkflow's steps to the calling stage. Inside a subworkflow the walk knows
    the call's literal arguments and the stage's chunks and reducers (what its split and partition calls answer,
    ``split.output.chunks`` and ``partition.output.buckets``), which decide its switches and ``parallel for``
    ranges.
    """
    counts: Counter[str] = Counter()
    _Workflow(definition, by_length(plan), work, counts).steps(definition["main"]["steps"], RUN, {})
    return counts


class _Workflow:
    def __init__(
        self, definition: Mapping[str, Any], ids: list[str], work: Mapping[str, StageWork], counts: Counter[str]
    ) -> None:
        self.definition, self.ids, self.work, self.counts = definition, ids, work, counts

    def steps(self, steps: list[dict[str, Any]], owner: str, scope: dict[str, Any], times: int = 1) -> None:
        for step in steps:
            ((name, body),) = step.items()
            self.body(body, stage_owner(name, self.ids, owner), scope, times)

    def body(self, body: Mapping[str, Any], owner: str, scope: dict[str, Any], times: int) -> None:
        billed = len(body.get("assign", ())) + ("call" in body) + ("return" in body) + ("raise" in body)
        self.counts[owner] += billed * times
        called = body.get("call")
        if isinstance(called, str) and called in self.definition:
            self.call(self.definition[called], body.get("args", {}), owner, scope, times)
        if "try" in body:
            self.body(body["try"], owner, scope, times)
        if "steps" in body:
            self.steps(body["steps"], owner, scope, times)
        if "switch" in body:
            self.counts[owner] += times
            chosen = next((case for case in body["switch"] if self._true(case["condition"], owner, scope)), None)
            if chosen is not None:
                self.steps(chosen.get("steps", []), owner, scope, times)
        if "parallel" in body:
            parallel = body["parallel"]
            for branch in parallel.get("branches", ()):
                ((name, inner),) = branch.items()
                self.body(inner, stage_owner(name, self.ids, owner), scope, times)
            if "for" in parallel:
                loop = parallel["for"]
                match = _RANGE.match(loop["range"])
                iterations = int(self._value(f"${{{match.group(1)}}}", owner, scope) or 0) if match else 1
                self.steps(loop["steps"], owner, scope, times * iterations)

    def call(
        self, subworkflow: Mapping[str, Any], args: Mapping[str, Any], owner: str, scope: dict[str, Any], times: int
    ) -> None:
        inner: dict[str, Any] = {}
        for param in subworkflow.get("params", ()):
            name, default = next(iter(param.items())) if isinstance(param, dict) else (param, None)
            inner[name] = self._value(args[name], owner, scope) if name in args else default
        self.steps(subworkflow["steps"], owner, inner, times)

    def _value(self, value: Any, owner: str, scope: Mapping[str, Any]) -> Any:
        """A literal, a variable of ``scope``, or the chunks a split or the reducers a partition answers; None if
        unknown."""
        if not (isinstance(value, str) and value.startswith("${")):
            return value
        name = value[2:-1]
        stage = self.work.get(owner)
        if name == "split.output.chunks":
            return stage.chunks if stage else 0
        if name == "partition.output.buckets":  # the reducers the partition call chose
            return stage.buckets if stage else 0
        return scope.get(name)

    def _true(self, condition: str, owner: str, scope: Mapping[str, Any]) -> bool:
        """Whether a switch condition holds on a new run whose calls all succeed (which no resumed run's condition
        or ``already-committed`` answer does)."""
        match = _CONDITION.match(condition)
        if match is None:
            return condition == "${true}" or self._value(condition, owner, scope) is True
        value = int(self._value(f"${{{match.group(1)}}}", owner, scope) or 0)
        limit = int(match.group(3))
        return value <= limit if match.group(2) == "<=" else value > limit
