"""Every example's Workflows YAML executed by workflows-emulator, each stage call answered by a test double."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from workflows_emulator.utils import WorkflowError

from sparkflow.layout import node_location
from sparkflow.plan import Plan
from tests.gcp.conftest import (
    EXAMPLES,
    RESOURCES,
    RUN_ID,
    STORAGE,
    Execute,
    StageDouble,
    compiled,
    connection_error,
    example_id,
    http_error,
)


def expected_outputs(plan: Plan) -> dict[str, str]:
    outputs = {}
    for node in plan.outputs:
        task = plan.task(node)
        outputs[node] = (
            f"kv:{plan.pipeline}/{RUN_ID}/{node}"
            if task.output == "value"
            else node_location(STORAGE, plan.pipeline, RUN_ID, node)
        )
    return outputs


def assert_ran_every_stage_once(plan: Plan, double: StageDouble, result: Any) -> None:
    assert double.problems == []
    assert Counter(double.calls) == Counter(task.id for task in plan.tasks)
    assert len(double.published) == 1  # after every stage (the double checks it)
    assert result == {"run_id": RUN_ID, "outputs": expected_outputs(plan)}


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_example_runs_every_stage_once_after_its_inputs(example: Path, workflows: Execute) -> None:
    plan, text = compiled(example)
    double = StageDouble(plan)
    result = workflows(text, double)
    assert_ran_every_stage_once(plan, double, result)
    run = {"id": RUN_ID, "storage": STORAGE, "params": {}, "plan": plan.digest}
    assert all(event["run"] == run for event in double.events)


def test_execution_argument_reaches_every_event_as_params(workflows: Execute) -> None:
    plan, text = compiled(EXAMPLES[0])
    double = StageDouble(plan)
    params = {"sources": {plan.sources[0].name: "gs://elsewhere/input/"}}
    workflows(text, double, params)
    assert [event["run"]["params"] for event in double.events] == [params] * len(double.events)
    assert {event["node"] for event in double.events} == {task.id for task in plan.tasks}


@pytest.mark.parametrize("pipeline", ["wide12", "wide25", "deep"])
def test_wide_and_deep_shapes_run_every_stage_once_after_its_inputs(pipeline: str, workflows: Execute) -> None:
    plan, text = compiled(RESOURCES / "shapes.py", pipeline)
    double = StageDouble(plan)
    assert_ran_every_stage_once(plan, double, workflows(text, double))


def test_over_a_hundred_branches_run_in_turn_inside_the_second_level(workflows: Execute) -> None:
    plan, text = compiled(RESOURCES / "shapes.py", "wide150")  # compiled: its source fits, about 100 bytes a stage
    double = StageDouble(plan)
    assert_ran_every_stage_once(plan, double, workflows(text, double))


@pytest.mark.parametrize("example", EXAMPLES, ids=example_id)
def test_a_stage_failing_with_5xx_is_retried_then_fails_the_run_naming_it(example: Path, workflows: Execute) -> None:
    plan, text = compiled(example)
    # a function (called over HTTP, so retried): the last stage, or the first where the last runs as a container job
    failing = plan.tasks[-1] if plan.tasks[-1].placement == "function" else plan.tasks[0]
    double = StageDouble(plan, failures={failing.id: [http_error(500)] * 10})
    with pytest.raises(WorkflowError) as raised:
        workflows(text, double)
    assert double.calls.count(failing.id) == 1 + failing.retries
    assert (
        str(raised.value)
        == f"stage {failing.id} of pipeline {plan.pipeline} failed: HTTP server responded with error code 500"
    )
    assert raised.value.payload["stage"] == failing.id
    assert raised.value.payload["cause"]["code"] == 500
    assert double.problems == []


def test_a_stage_failing_in_a_parallel_branch_fails_the_run_naming_it(workflows: Execute) -> None:
    plan, text = compiled(RESOURCES / "shapes.py", "deep")
    double = StageDouble(plan, failures={"tag_3": [http_error(503)] * 10})
    with pytest.raises(WorkflowError) as raised:
        workflows(text, double)
    assert "UnhandledBranchError" in raised.value.payload["tags"]
    assert "StageFailed" in raised.value.payload["tags"]
    assert "stage tag_3 of pipeline deep failed" in str(raised.value.payload)
    assert "join" not in double.calls  # what depends on the failed stage never starts


def test_4xx_is_not_retried(workflows: Execute) -> None:
    plan, text = compiled(EXAMPLES[0])
    first = plan.tasks[0].id
    double = StageDouble(plan, failures={first: [http_error(400)]})
    with pytest.raises(WorkflowError, match=f"stage {first} of pipeline {plan.pipeline} failed"):
        workflows(text, double)
    assert double.calls == [first]


@pytest.mark.parametrize("transient", [lambda: http_error(429), connection_error], ids=["429", "connection"])
def test_transient_errors_are_retried_with_growing_backoff(transient: Any, workflows: Execute) -> None:
    plan, text = compiled(EXAMPLES[0])
    first = plan.tasks[0]
    assert first.retries == 2
    double = StageDouble(plan, failures={first.id: [transient(), transient()]})
    result = workflows(text, double)
    assert double.problems == []
    assert Counter(double.calls) == Counter(task.id for task in plan.tasks) + Counter({first.id: 2})
    assert result == {"run_id": RUN_ID, "outputs": expected_outputs(plan)}
    delays = workflows.delays  # type: ignore[attr-defined]
    assert len(delays) == 2 and delays[1] > delays[0]
