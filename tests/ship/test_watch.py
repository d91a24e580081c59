"""`status` of runs with Distributed Map states (chunks in child executions) and retried tasks, on moto's
interpreter with the Lambda double answering: map states show their chunk counts, a retried task that then
succeeds is done, a map whose chunk fails is the failed stage."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from sparkflow.targets.aws.watch import follow, start, status
from sparkflow.targets.runs import DONE, FAILED, PENDING, ChunkCounts, status_table, summary_lines
from tests.aws_moto import LambdaDouble, MotoAws, StageFailure
from tests.ship.test_deploy import BUCKET, bucket

pytestmark = pytest.mark.moto


def machine(aws: MotoAws, items: int) -> str:
    """A state machine: a Distributed Map over ``items`` chunks read from S3, then a plain task, then a
    Parallel branch holding a task that is retried."""
    bucket(aws)
    key = f"items/{uuid.uuid4().hex[:8]}.json"
    aws.client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps([{"chunk": i} for i in range(items)]).encode())
    function = aws.create_function("watch")

    def invoke(node: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = {"node": node, **(extra or {})}
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function, "Payload": payload},
        }

    definition = {
        "StartAt": "fan",
        "States": {
            "fan": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket": BUCKET, "Key": key},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "work",
                    "States": {"work": {**invoke("work", {"chunk.$": "$.chunk"}), "End": True}},
                },
                "ResultPath": None,
                "Next": "last",
            },
            "last": {**invoke("last"), "ResultPath": None, "Next": "both"},
            "both": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "flaky",
                        "States": {
                            "flaky": {
                                **invoke("flaky"),
                                "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                                "End": True,
                            }
                        },
                    }
                ],
                "End": True,
            },
        },
    }
    return aws.create_state_machine("watch", json.dumps(definition))


def test_status_counts_chunks_and_forgives_a_retried_failure(moto_aws: MotoAws, lambda_double: LambdaDouble) -> None:
    attempts = {"flaky": 0}

    def handler(payload: dict[str, Any]) -> Any:
        if payload["node"] == "flaky":
            attempts["flaky"] += 1
            if attempts["flaky"] == 1:
                raise StageFailure("Flaky", "first attempt fails")
        return {"ok": True}

    lambda_double.delay = 0
    lambda_double.handler = handler
    execution = start(machine(moto_aws, 3), {}, clients=moto_aws.client)
    final = follow(execution, clients=moto_aws.client, interval_s=0.2, longest_interval_s=0.5, timeout_s=120)
    assert final.status == "SUCCEEDED", final
    by_name = {stage.name: stage for stage in final.stages}
    assert list(by_name) == ["fan", "last", "flaky"]  # the map's inner "work" runs in child executions
    assert by_name["fan"].state == DONE and by_name["fan"].chunks == ChunkCounts(3, 3, 0, 0)
    assert by_name["last"].state == DONE and by_name["flaky"].state == DONE
    assert by_name["flaky"].error is None and attempts["flaky"] == 2
    assert sorted(call.payload.get("chunk", -1) for call in lambda_double.calls if call.node == "work") == [0, 1, 2]
    rendered = status_table(final)
    assert rendered.row_count == 3


def test_a_failed_chunk_is_counted(moto_aws: MotoAws, lambda_double: LambdaDouble) -> None:
    def handler(payload: dict[str, Any]) -> Any:
        if payload.get("chunk") == 1:
            raise StageFailure("InputError", "chunk 1 is corrupt")
        return {"ok": True}

    lambda_double.delay = 0
    lambda_double.handler = handler
    execution = start(machine(moto_aws, 3), {}, clients=moto_aws.client)
    final = follow(execution, clients=moto_aws.client, interval_s=0.2, longest_interval_s=0.5, timeout_s=120)
    # moto 5.2.5 lets a map run whose child execution failed succeed (AWS fails it: the default tolerated
    # failure is 0), so only the counts are asserted here; the failure path on AWS's history is tested below.
    fan = final.stages[0]
    assert fan.chunks == ChunkCounts(total=3, succeeded=2, failed=1, running=0)
    assert "2/3 chunks, 1 failed" in _text(status_table(final))


def _text(table: Any) -> str:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


class FakeStepFunctions:
    """Answers what ``status`` reads with a recorded AWS history (Step Functions' documented event shapes), its
    pages as AWS serves them with ``reverseOrder``: newest event first, ``page_size`` events a page (moto ignores
    ``reverseOrder`` and pages). Counts the pages read."""

    def __init__(
        self, definition: dict[str, Any], events: list[dict[str, Any]], status: str, page_size: int = 2
    ) -> None:
        self.definition, self.status, self.page_size = definition, status, page_size
        self.events: list[dict[str, Any]] = []
        self.pages_read = 0
        for event in events:
            self.add(event)

    def add(self, event: dict[str, Any]) -> None:
        self.events.append({"id": len(self.events) + 1, **event})

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {
            "name": "run-1",
            "status": self.status,
            "stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:sm",
            "error": "StageFailed",
            "cause": "stage words failed: ...",
        }

    def describe_state_machine_for_execution(self, executionArn: str) -> dict[str, Any]:
        return {"definition": json.dumps(self.definition)}

    def get_paginator(self, operation: str) -> Any:
        assert operation == "get_execution_history"
        history = self

        class Pages:
            def paginate(self, executionArn: str, reverseOrder: bool = False) -> Any:
                newest_first = list(reversed(history.events)) if reverseOrder else list(history.events)
                for first in range(0, len(newest_first), history.page_size):
                    history.pages_read += 1
                    yield {"events": newest_first[first : first + history.page_size]}

        return Pages()

    def describe_map_run(self, mapRunArn: str) -> dict[str, Any]:
        return {"itemCounts": {"total": 4, "succeeded": 3, "failed": 1, "pending": 0, "running": 0}}


def entered(kind: str, name: str) -> dict[str, Any]:
    return {"type": f"{kind}StateEntered", "stateEnteredEventDetails": {"name": name}}


def exited(kind: str, name: str) -> dict[str, Any]:
    return {"type": f"{kind}StateExited", "stateExitedEventDetails": {"name": name}}


DEFINITION = {
    "StartAt": "words-split",
    "States": {
        "words-split": {"Type": "Task", "Next": "words-map"},
        "words-map": {
            "Type": "Map",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED"},
                "StartAt": "words-map-item",
                "States": {"words-map-item": {"Type": "Task", "End": True}},
            },
            "Next": "top",
        },
        "top": {"Type": "Task", "End": True},
    },
}


def test_a_failed_map_run_on_aws_is_the_failed_stage() -> None:
    events = [
        {"type": "ExecutionStarted"},
        entered("Task", "words-split"),
        {"type": "TaskScheduled"},
        {"type": "TaskSucceeded"},
        exited("Task", "words-split"),
        entered("Map", "words-map"),
        {"type": "MapStateStarted"},
        {
            "type": "MapRunStarted",
            "mapRunStartedEventDetails": {"mapRunArn": "arn:aws:states:us-east-1:1:mapRun:sm/x:y"},
        },
        {
            "type": "MapRunFailed",
            "mapRunFailedEventDetails": {"error": "States.ExceedToleratedFailureThreshold", "cause": "1 of 4 failed"},
        },
        {"type": "MapStateFailed"},
        {"type": "ExecutionFailed", "executionFailedEventDetails": {"error": "States.ExceedToleratedFailureThreshold"}},
    ]
    fake = FakeStepFunctions(DEFINITION, events, "FAILED")
    final = status("arn:aws:states:us-east-1:1:execution:sm:run-1", clients=lambda service: fake)
    split, mapped, top = final.stages
    assert [stage.name for stage in final.stages] == ["words-split", "words-map", "top"]
    assert split.state == DONE and top.state == PENDING
    assert mapped.state == FAILED, mapped
    assert (mapped.error, mapped.cause) == ("States.ExceedToleratedFailureThreshold", "1 of 4 failed")
    assert mapped.chunks == ChunkCounts(total=4, succeeded=3, failed=1, running=0)
    assert summary_lines(final) == ["stage words-map failed: States.ExceedToleratedFailureThreshold: 1 of 4 failed"]


def test_a_task_failing_without_a_catch_is_failed_and_a_retried_one_is_not() -> None:
    lambda_cause = json.dumps({"errorType": "InputError", "errorMessage": "books: no such file", "stackTrace": []})
    events = [
        entered("Task", "words-split"),
        {"type": "TaskScheduled"},
        {"type": "TaskFailed", "taskFailedEventDetails": {"error": "Lambda.ServiceException", "cause": "busy"}},
        {"type": "TaskScheduled"},
        {"type": "TaskSucceeded"},
        exited("Task", "words-split"),
        entered("Map", "words-map"),
        {
            "type": "MapRunStarted",
            "mapRunStartedEventDetails": {"mapRunArn": "arn:aws:states:us-east-1:1:mapRun:sm/x:y"},
        },
        {"type": "MapRunSucceeded"},
        exited("Map", "words-map"),
        entered("Task", "top"),
        {"type": "TaskScheduled"},
        {"type": "TaskFailed", "taskFailedEventDetails": {"error": "InputError", "cause": lambda_cause}},
        {"type": "ExecutionFailed"},
    ]
    final = status("arn", clients=lambda service: FakeStepFunctions(DEFINITION, events, "FAILED"))
    split, mapped, top = final.stages
    assert (split.state, split.error, split.started, split.finished) == (DONE, None, 1, 1)
    assert mapped.state == DONE
    assert (top.state, top.error, top.cause) == (FAILED, "InputError", "books: no such file")


def test_an_open_stage_of_a_running_run_is_running() -> None:
    events = [entered("Task", "words-split"), {"type": "TaskScheduled"}, {"type": "TaskStarted"}]
    final = status("arn", clients=lambda service: FakeStepFunctions(DEFINITION, events, "RUNNING"))
    assert [stage.state for stage in final.stages] == ["running", PENDING, PENDING]
    assert not final.finished and summary_lines(final) == ["run run-1 running: StageFailed: stage words failed: ..."]


def test_follow_reads_only_the_events_since_its_last_reading() -> None:
    from sparkflow.targets.aws.watch import _Watch, status

    names = [f"stage{index}" for index in range(60)]
    states = {name: {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True} for name in names}
    history = FakeStepFunctions({"StartAt": names[0], "States": states}, [], "RUNNING", page_size=100)
    for name in names[:50]:  # 50 stages done: 200 events, 2 pages
        history.add(entered("Task", name))
        history.add({"type": "TaskScheduled"})
        history.add({"type": "TaskSucceeded"})
        history.add(exited("Task", name))
    execution = "arn:aws:states:eu-west-1:1:execution:m:run-1"
    watch = _Watch(execution, lambda service: history)
    first = watch.read()
    assert history.pages_read == 2 and [stage.state for stage in first.stages].count(DONE) == 50
    history.add(entered("Task", names[50]))
    history.pages_read = 0
    second = watch.read()
    assert history.pages_read == 1  # the newest page reaches an event already read: no more pages
    assert second == status(execution, clients=lambda service: history)
    assert second.stages[50].state == "running" and second.stages[51].state == PENDING


def test_a_failed_runs_status_fits_80_columns_and_its_error_follows_whole() -> None:
    """`sparkflow status` / `start`: the table holds short values; the failed stage's error and cause, however long,
    are the lines printed below it."""
    from rich.console import Console

    from sparkflow.targets.runs import RunStatus, StageStatus

    cause = "ValueError: " + "the orders of customer 16 are not checked " * 4 + "(pipeline.py:15)"
    stages = (
        StageStatus("a_stage_with_a_long_descriptive_name", DONE, 1, 1, seconds=12.5),
        StageStatus("counts", FAILED, 1, 1, error="StageError", cause=cause),
    )
    run = RunStatus("arn:aws:states:us-east-1:123456789012:execution:wordcount:run-1", "run-1", "FAILED", stages)
    console = Console(width=80, record=True)
    console.print(status_table(run))
    assert [line for line in console.export_text().splitlines() if len(line) > 80] == []
    assert summary_lines(run) == [f"stage counts failed: StageError: {cause}"]
