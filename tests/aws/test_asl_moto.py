"""Moto's Step Functions interpreter runs every example's ASL, with a recording Lambda double as the stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipelines
from sparkflow.plan import Plan
from sparkflow.runtime.protocol import validate_event
from tests.aws_moto import LambdaDouble, MotoAws, StageFailure, placeholders, substitute
from tests.examples import EXAMPLES, example

pytestmark = pytest.mark.moto

STORAGE = "s3://sparkflow-test-bucket/runs/"


def deploy(aws: MotoAws, definition: str, name: str) -> str:
    """Fill the placeholders the way DefinitionSubstitutions would and create the state machine."""
    values = {"StorageRoot": STORAGE}
    for placeholder in sorted(placeholders(definition)):
        if placeholder.startswith("StageFunction"):
            values[placeholder] = aws.create_function(f"{name}-{placeholder}")
    filled = substitute(definition, values)
    return aws.create_state_machine(name, filled)


def compiled(example: Path) -> list[tuple[Plan, str]]:
    return [(plan_pipeline(p, "aws"), compile_pipeline(p, "aws")) for p in load_pipelines(str(example))]


def sources_input(plan: Plan) -> dict[str, Any]:
    return {"sources": {source.name: f"s3://data-bucket/{source.name}/" for source in plan.sources}}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.parent.name)
def test_every_example_runs_to_succeeded(path: Path, moto_aws: MotoAws, lambda_double: LambdaDouble) -> None:
    for plan, definition in compiled(path):
        lambda_double.calls.clear()
        arn = deploy(moto_aws, definition, plan.pipeline)
        execution = moto_aws.run(arn, sources_input(plan))
        assert execution["status"] == "SUCCEEDED", execution
        calls = lambda_double.by_node()
        assert sorted(calls) == sorted(task.id for task in plan.tasks)
        assert len(lambda_double.calls) == len(plan.tasks)  # each stage exactly once
        run_id = execution["executionArn"].rsplit(":", 1)[1]
        for task in plan.tasks:
            payload = calls[task.id].payload
            assert payload == {
                "version": 1,
                "pipeline": plan.pipeline,
                "node": task.id,
                "run": {"id": run_id, "storage": STORAGE, "params": sources_input(plan)},
            }
            for item in task.inputs:  # never started before all of its inputs finished
                if item.kind != "source":
                    assert calls[item.node].finished <= calls[task.id].started, (item.node, task.id)
            validate_event(payload)  # what the state machine sends follows the runtime protocol
        output = json.loads(execution["output"])
        assert output == {
            "run_id": run_id,
            "outputs": {sink: expected_location(plan, sink, run_id) for sink in plan.sinks},
        }


def expected_location(plan: Plan, sink: str, run_id: str) -> str:
    if plan.task(sink).output == "value":
        return f"kv:{plan.pipeline}/{run_id}/{sink}"
    return f"{STORAGE}{plan.pipeline}/{run_id}/{sink}/"


def test_diamond_runs_its_middle_stages_concurrently(moto_aws: MotoAws, lambda_double: LambdaDouble) -> None:
    [(plan, definition)] = compiled(example("clickstream"))
    lambda_double.delay = 0.6
    execution = moto_aws.run(deploy(moto_aws, definition, plan.pipeline), sources_input(plan))
    assert execution["status"] == "SUCCEEDED", execution
    calls = lambda_double.by_node()
    stats, threshold = calls["page_stats"], calls["slow_threshold"]
    assert stats.started < threshold.finished and threshold.started < stats.finished, "middle stages did not overlap"
    assert calls["clean"].finished <= min(stats.started, threshold.started)
    assert max(stats.finished, threshold.finished) <= calls["slow_pages"].started


def test_a_failing_stage_fails_the_run_naming_the_stage(moto_aws: MotoAws, lambda_double: LambdaDouble) -> None:
    [(plan, definition)] = compiled(example("clickstream"))

    def handler(payload: dict[str, Any]) -> Any:
        if payload["node"] == "page_stats":
            raise StageFailure("InputError", "events/part-0.json is corrupt")
        return {"ok": True}

    lambda_double.handler = handler
    execution = moto_aws.run(deploy(moto_aws, definition, plan.pipeline), sources_input(plan))
    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "StageFailed"
    assert "stage page_stats failed" in execution["cause"]
    assert "events/part-0.json is corrupt" in execution["cause"]
    nodes = [call.node for call in lambda_double.calls]
    assert nodes.count("page_stats") == 1  # InputError is permanent: not retried
    assert "slow_pages" not in nodes  # nothing runs after a failed input
