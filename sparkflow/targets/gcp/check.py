"""Limits of an emitted Workflows definition: size, steps per execution, parallel steps, variables, timeouts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from sparkflow.errors import DefinitionError, SparkflowError
from sparkflow.plan import Plan
from sparkflow.targets.gcp import emit, limits

_EXPRESSION = re.compile(r"\$\{(.*)\}", re.DOTALL)
# What the main workflow may keep in variables: the run object (ids, the storage root and the execution
# argument, at most 32 KB) and, only while a failed stage raises, its error map. Anything else, above all a
# kept HTTP response (up to 2 MB), could overflow the variable memory as pipelines grow. (The subworkflows keep
# one stage call's event and answer while that call runs, and drop them when it returns.)
_SMALL_VARIABLES = frozenset({emit.ARGS, emit.RUN, emit.ERROR})


def check(plan: Plan, text: str) -> list[SparkflowError]:
    """Every limit the definition ``text`` of ``plan`` breaks, each naming the user's code where it can."""
    document: dict[str, Any] = yaml.safe_load(text)
    problems: list[SparkflowError] = []
    origin = plan.tasks[0].origin if plan.tasks else None
    size = len(text.encode())
    if size > limits.SOURCE_BYTES.value:
        problems.append(
            DefinitionError(
                f"pipeline {plan.pipeline!r}: the workflow source is {size:,} bytes, over the "
                f"{limits.SOURCE_BYTES.describe()}: split the pipeline into several pipelines",
                origin,
            )
        )
    steps = estimate_steps(document)
    if steps > limits.STEPS_PER_EXECUTION.value:
        problems.append(
            DefinitionError(
                f"pipeline {plan.pipeline!r}: a run may execute {steps:,} steps, over the "
                f"{limits.STEPS_PER_EXECUTION.describe()}: split the pipeline or lower retries=",
                origin,
            )
        )
    for name, parallel, depth in _parallel_steps(document, document["main"]["steps"], 1):
        branches = len(parallel.get("branches", ()))
        if branches > limits.BRANCHES_PER_PARALLEL.value:
            problems.append(
                DefinitionError(f"step {name!r} has {branches} branches: {limits.BRANCHES_PER_PARALLEL.describe()}")
            )
        if depth > limits.PARALLEL_DEPTH.value:
            problems.append(
                DefinitionError(f"step {name!r} is nested {depth} deep: {limits.PARALLEL_DEPTH.describe()}")
            )
    # A serverless Spark stage keeps its event (a copy of the run object) while its batch runs.
    batches = {f"{emit.variable(task.id)}_event" for task in plan.tasks if task.placement == "serverless-spark"}
    for variable in sorted(_variables(document["main"]) - _SMALL_VARIABLES - batches):
        problems.append(
            DefinitionError(
                f"pipeline {plan.pipeline!r}: the workflow keeps variable {variable!r}, which may grow past the "
                f"{limits.VARIABLES_BYTES.describe()}",
                origin,
            )
        )
    for expression in sorted(set(_expressions(document))):
        if len(expression) > limits.EXPRESSION_CHARS.value:
            problems.append(
                DefinitionError(
                    f"pipeline {plan.pipeline!r}: an expression is {len(expression):,} characters long, over the "
                    f"{limits.EXPRESSION_CHARS.describe()}: shorten the pipeline or stage names ({expression[:60]}...)",
                    origin,
                )
            )
    return problems


def estimate_steps(document: dict[str, Any]) -> int:
    """Steps of a run in which every retry of every stage is used and the last stage then fails (the worst case).

    Every step runs at most once, except in a split stage: a ``parallel for`` runs its steps once per chunk (at
    most :data:`emit.PARALLEL_FOR_MAX`; more chunks take the Cloud Run job path instead), and a connector call
    counts its polling (the job's timeout at the default policy's one poll a minute at most). Of a switch, the
    costlier side counts. A call of a subworkflow counts the subworkflow's steps. A retried step runs again and
    first runs the retry predicate (one call plus its steps).
    """
    return _Steps(document).count(document["main"]["steps"])


# Connector calls poll a long-running operation; the default polling policy waits at most 60 s between polls
# (https://cloud.google.com/workflows/docs/reference/googleapis#invoke_a_connector_call).
_CONNECTOR_POLLS = emit.JOB_TIMEOUT_S // 60


class _Steps:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.called: dict[str, int] = {}  # steps of one call of each subworkflow
        predicate = document.get(emit.RETRY_PREDICATE)
        self.per_predicate = 1 + len(predicate["steps"]) if predicate else 0

    def subworkflow(self, name: str) -> int:
        if name not in self.called:
            self.called[name] = self.count(self.document[name]["steps"])
        return self.called[name]

    def count(self, steps: list[dict[str, Any]]) -> int:
        total = 0
        for item in steps:
            ((_, step),) = item.items()
            total += self.step(step)
        return total

    def step(self, step: dict[str, Any]) -> int:
        total = 1 + self.count(step.get("steps", []))
        parallel = step.get("parallel", {})
        for branch in parallel.get("branches", ()):
            total += self.count([branch])
        if "for" in parallel:
            total += emit.PARALLEL_FOR_MAX * self.count(parallel["for"]["steps"])
        if "switch" in step:
            total += max(self.count(case.get("steps", [])) for case in step["switch"])
        attempt = step.get("try", step)
        cost = 0
        call = attempt.get("call", "") if isinstance(attempt, dict) else ""
        if isinstance(call, str) and call.startswith("googleapis."):
            cost += _CONNECTOR_POLLS
        elif isinstance(call, str) and call in self.document:
            cost += self.subworkflow(call)
        total += cost
        if "retry" in step:
            retries = int(step["retry"]["max_retries"])
            # every failed attempt asks the predicate; all but the last are run again
            total += (retries + 1) * self.per_predicate + retries * (1 + cost)
        total += self.count(step.get("except", {}).get("steps", []))
        return total


def _parallel_steps(
    document: dict[str, Any], steps: list[dict[str, Any]], depth: int
) -> Iterator[tuple[str, dict[str, Any], int]]:
    """Every parallel step with its nesting depth (1 = not inside another parallel step), following calls of
    subworkflows: a parallel step in a subworkflow called from a branch is nested in that branch's step."""
    for item in steps:
        ((name, step),) = item.items()
        yield from _parallel_steps(document, step.get("steps", []), depth)
        for case in step.get("switch", ()):
            yield from _parallel_steps(document, case.get("steps", []), depth)
        called = step.get("call")
        if isinstance(called, str) and called in document:
            yield from _parallel_steps(document, document[called]["steps"], depth)
        if "parallel" in step:
            yield name, step["parallel"], depth
            for branch in step["parallel"].get("branches", ()):
                yield from _parallel_steps(document, [branch], depth + 1)
            yield from _parallel_steps(document, step["parallel"].get("for", {}).get("steps", []), depth + 1)


def _variables(subworkflow: dict[str, Any]) -> set[str]:
    """The variables a subworkflow defines: its parameters, assignments, call results and caught errors."""
    found = set(subworkflow.get("params", ()))
    pending: list[Any] = [subworkflow["steps"]]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for assignment in node.get("assign", ()) if isinstance(node.get("assign"), list) else ():
            for name in assignment:
                found.add(re.split(r"[.\[]", str(name), maxsplit=1)[0])
        if isinstance(node.get("result"), str):
            found.add(node["result"])
        if isinstance(node.get("except"), dict) and "as" in node["except"]:
            found.add(str(node["except"]["as"]))
        pending.extend(node.values())
    return found


def _expressions(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        match = _EXPRESSION.fullmatch(node)
        if match:
            yield match.group(1)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _expressions(value)
