"""Moto's Step Functions interpreter runs every example's ASL, with a recording Lambda double as the stages."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.layout import work_location
from sparkflow.loading import load_pipelines
from sparkflow.plan import Plan
from sparkflow.runtime.protocol import validate_event
from tests.aws_moto import LambdaDouble, MotoAws, StageFailure, placeholders, substitute
from tests.examples import example, long_but

pytestmark = pytest.mark.moto

BUCKET = "sparkflow-test-bucket"
STORAGE = f"s3://{BUCKET}/runs/"
CHUNKS, BUCKETS = 3, 2  # what the double's split tasks answer (chunks) and its partition tasks (reducers)


def protocol_double(aws: MotoAws, double: LambdaDouble) -> None:
    """Answer like the runtime does, without doing the work: a split task writes the map item list to S3 (the
    Distributed Map's ItemReader reads it) and a partition task the reduce item list, and both answer where they
    are; every other task answers ok."""
    s3 = aws.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)

    def handler(payload: dict[str, Any]) -> Any:
        phase = payload.get("phase")
        if phase not in ("split", "partition"):
            return {"ok": True}
        work = work_location(STORAGE, payload["pipeline"], payload["run"]["id"], payload["node"])
        base = work[len(f"s3://{BUCKET}/") :] + "split"
        name, count = ("map", CHUNKS) if phase == "split" else ("reduce", BUCKETS)
        body = json.dumps([{"chunk": index} for index in range(count)])
        s3.put_object(Bucket=BUCKET, Key=f"{base}/{name}-items.json", Body=body.encode())
        output = {"kind": "split", "bucket": BUCKET, "map_items": f"{base}/map-items.json"}
        output.update({"reduce_items": f"{base}/reduce-items.json", "results": f"{base}/results/"})
        return {"status": "committed", "output": {**output, "chunks": CHUNKS, "buckets": BUCKETS}}

    double.handler = handler


def spans(double: LambdaDouble) -> dict[str, tuple[float, float]]:
    """Per stage: when its first task started and its last task finished."""
    found: dict[str, tuple[float, float]] = {}
    for call in double.calls:
        start, end = found.get(call.node, (call.started, call.finished))
        found[call.node] = (min(start, call.started), max(end, call.finished))
    return found


def expected_calls(plan: Plan) -> Counter[tuple[str | None, str | None]]:
    """The tasks a run makes: one per whole stage; split, a map per chunk, (key stages) a partition and a reduce per
    reducer, and a commit; then
    the run's publish task (no node)."""
    expected: Counter[tuple[str | None, str | None]] = Counter({("publish", "publish"): 1})
    for task in plan.tasks:
        if task.fanout is None:
            expected[(task.id, None)] += 1
            continue
        expected.update({(task.id, "split"): 1, (task.id, "map"): CHUNKS, (task.id, "commit"): 1})
        if task.fanout.mode == "key":
            expected[(task.id, "partition")] += 1
            expected[(task.id, "reduce")] += BUCKETS
    return expected


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


@pytest.mark.parametrize("path", long_but("wordcount", "clickstream"))
def test_every_example_runs_to_succeeded(path: Path, moto_aws: MotoAws, lambda_double: LambdaDouble) -> None:
    for plan, definition in compiled(path):
        lambda_double.calls.clear()
        protocol_double(moto_aws, lambda_double)
        arn = deploy(moto_aws, definition, plan.pipeline)
        execution = moto_aws.run(arn, sources_input(plan))
        assert execution["status"] == "SUCCEEDED", execution
        made = Counter((call.node, call.payload.get("phase")) for call in lambda_double.calls)
        assert made == expected_calls(plan)  # each task exactly once, each chunk and bucket exactly once
        run_id = execution["executionArn"].rsplit(":", 1)[1]
        times = spans(lambda_double)
        [publish] = [call for call in lambda_double.calls if call.payload.get("phase") == "publish"]
        assert publish.payload == {
            "version": 1,
            "pipeline": plan.pipeline,
            "phase": "publish",
            "run": {"id": run_id, "storage": STORAGE, "params": sources_input(plan), "plan": plan.digest},
        }
        validate_event(publish.payload)
        assert all(call.finished <= publish.started for call in lambda_double.calls if call is not publish)
        for call in lambda_double.calls:
            if call is publish:
                continue
            task = plan.task(call.node)
            phase = call.payload.get("phase")
            extra: dict[str, Any] = {}
            if phase is not None:
                assert task.fanout is not None
                extra = {"phase": phase}
                if phase == "split":
                    extra["chunk_bytes"] = task.fanout.chunk_bytes
                if phase in ("map", "reduce"):
                    extra["chunk"] = call.payload["chunk"]
            assert call.payload == {
                "version": 1,
                "pipeline": plan.pipeline,
                "node": task.id,
                **extra,
                **({"fused": [fused.id for fused in task.fused]} if task.fused else {}),
                "run": {"id": run_id, "storage": STORAGE, "params": sources_input(plan), "plan": plan.digest},
            }
            validate_event(call.payload)  # what the state machine sends follows the runtime protocol
        for task in plan.tasks:
            for upstream in task.upstream:  # never started before all of its inputs finished
                assert times[upstream][1] <= times[task.id][0], (upstream, task.id)
            if task.fanout is not None:  # every chunk and bucket once
                for phase, count in (("map", CHUNKS), ("reduce", BUCKETS if task.fanout.mode == "key" else 0)):
                    chunks = [
                        c.payload["chunk"]
                        for c in lambda_double.calls
                        if (c.node, c.payload.get("phase")) == (task.id, phase)
                    ]
                    assert sorted(chunks) == list(range(count)), (task.id, phase)
        output = json.loads(execution["output"])
        assert output == {
            "run_id": run_id,
            "outputs": {sink: expected_location(plan, sink, run_id) for sink in plan.outputs},
        }


def expected_location(plan: Plan, sink: str, run_id: str) -> str:
    if plan.task(sink).output == "value":
        return f"kv:{plan.pipeline}/{run_id}/{sink}"
    return f"{STORAGE}{plan.pipeline}/{run_id}/{sink}/"


def test_diamond_runs_its_middle_stages_concurrently(moto_aws: MotoAws, lambda_double: LambdaDouble) -> None:
    [(plan, definition)] = compiled(example("clickstream"))
    protocol_double(moto_aws, lambda_double)
    lambda_double.delay = 0.6
    execution = moto_aws.run(deploy(moto_aws, definition, plan.pipeline), sources_input(plan))
    assert execution["status"] == "SUCCEEDED", execution
    times = spans(lambda_double)
    stats, threshold = times["page_stats"], times["slow_threshold"]
    assert stats[0] < threshold[1] and threshold[0] < stats[1], "middle stages did not overlap"
    assert times["clean"][1] <= min(stats[0], threshold[0])
    assert max(stats[1], threshold[1]) <= times["slow_pages"][0]


def test_a_failing_stage_fails_the_run_naming_the_stage(moto_aws: MotoAws, lambda_double: LambdaDouble) -> None:
    [(plan, definition)] = compiled(example("clickstream"))

    protocol_double(moto_aws, lambda_double)
    answer = lambda_double.handler

    def handler(payload: dict[str, Any]) -> Any:
        if payload["node"] == "page_stats":
            raise StageFailure("InputError", "events/part-0.json is corrupt")
        return answer(payload)

    lambda_double.handler = handler
    execution = moto_aws.run(deploy(moto_aws, definition, plan.pipeline), sources_input(plan))
    assert execution["status"] == "FAILED", execution
    assert execution["error"] == "StageFailed"
    assert "stage page_stats failed" in execution["cause"]
    assert "events/part-0.json is corrupt" in execution["cause"]
    nodes = [call.node for call in lambda_double.calls]
    assert nodes.count("page_stats") == 1  # InputError is permanent: not retried
    assert "slow_pages" not in nodes  # nothing runs after a failed input
