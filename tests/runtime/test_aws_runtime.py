"""Every example's generated ASL, run by moto's Step Functions interpreter with each Lambda invocation answered
in-process by ``sparkflow.runtime.aws.handler`` and S3 (and DynamoDB) served by moto, succeeds and writes
exactly what one plain PySpark job computes (as `sparkflow run` does: tests/runtime/test_fanout.py)."""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.layout import work_root
from sparkflow.loading import load_pipeline
from sparkflow.runtime import aws as lambda_entry
from sparkflow.runtime import storage
from sparkflow.runtime.execute import pipeline_trace, source_uri
from tests.aws_moto import LambdaDouble, MotoAws, StageFailure, substitute
from tests.examples import EXAMPLES, PARAMS, example
from tests.runtime.configs import write_plan
from tests.runtime.reference import reference_outputs, rows

pytestmark = [pytest.mark.spark, pytest.mark.moto]
BUCKET = "sparkflow-test"


def runtime_handler(payload: dict[str, Any]) -> Any:
    """The Lambda function: the real runtime entry; an exception becomes a function error of its type."""
    try:
        return lambda_entry.handler(payload, None)
    except Exception as error:
        raise StageFailure(type(error).__name__, str(error)) from error


def upload_sources(aws: MotoAws, pipeline: Any, prefix: str) -> dict[str, str]:
    """Copy every source of ``pipeline`` into moto's S3; return source name -> its S3 location."""
    s3 = aws.client("s3")
    locations: dict[str, str] = {}
    for name, source in pipeline_trace(pipeline).sources.items():
        local = Path(source_uri(pipeline, source))
        files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else [local]
        for file in files:
            relative = file.relative_to(local).as_posix() if local.is_dir() else file.name
            s3.upload_file(str(file), BUCKET, f"{prefix}/{name}/{relative}")
        locations[name] = (
            f"s3://{BUCKET}/{prefix}/{name}/" if local.is_dir() else f"s3://{BUCKET}/{prefix}/{name}/{local.name}"
        )
    return locations


def deploy_with_runtime(
    aws: MotoAws, double: LambdaDouble, monkeypatch: Any, path: Path, root: str, env: dict[str, str]
) -> str:
    """The pipeline's state machine in moto, its Lambda function answered by the real runtime handler configured
    through the function environment a deploy would set (``env`` adds to it); returns the state machine ARN."""
    for name, value in {
        "AWS_ENDPOINT_URL": aws.endpoint,
        "SPARKFLOW_PIPELINE": str(path),
        "SPARKFLOW_PLAN": write_plan(load_pipeline(str(path)), Path(tempfile.mkdtemp(prefix="sparkflow-plan-"))),
        "SPARKFLOW_STORAGE_ROOT": root,
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    double.delay = 0
    double.handler = runtime_handler
    pipeline = load_pipeline(str(path))
    definition = compile_pipeline(pipeline, "aws")
    function = aws.create_function("stage")
    values = {name: function for name in re.findall(r"\$\{(StageFunction\d+MB)\}", definition)}
    return aws.create_state_machine(pipeline.name, substitute(definition, {"StorageRoot": root, **values}))


def committed_rows(spark: Any, location: str, scratch: Path) -> list[tuple[Any, ...]]:
    from sparkflow.runtime.datasets import local_copy

    return rows(spark.read.parquet(*local_copy(storage.committed_files(location, "output"), str(scratch))))


def few_chunks(pipeline: Any) -> int:
    """A chunk size that cuts the pipeline's largest source into three chunks: several per split stage, while each
    chunk's Lambda call (a Spark task through moto) stays few."""
    sizes = []
    for source in pipeline_trace(pipeline).sources.values():
        local = Path(source_uri(pipeline, source))
        files = [p for p in local.rglob("*") if p.is_file()] if local.is_dir() else [local]
        sizes.append(sum(file.stat().st_size for file in files))
    return max(sizes) // 3 + 1


# Every example as compiled; with a few chunks per split stage, a join (a rows stage fanning out over many chunks in
# moto: tests/faults/test_load.py).
# make test runs the compiled chunks of wordcount, revenue and top-words (clickstream runs in the Workflows emulator);
# the others run in make long-checks.
RUNS = [
    pytest.param(
        path,
        chunks,
        id=f"{path.parent.name}-{chunks}-chunks",
        marks=pytest.mark.long if chunks == "few" or path.parent.name in ("daily-revenue", "clickstream") else (),
    )
    for path, chunks in [(path, "compiled") for path in EXAMPLES] + [(example("revenue"), "few")]
]


@pytest.mark.parametrize(("path", "chunks"), RUNS)
def test_asl_runs_the_runtime_in_moto(
    spark: Any,
    path: Path,
    chunks: str,
    tmp_path: Path,
    moto_aws: MotoAws,
    lambda_double: LambdaDouble,
    monkeypatch: Any,
) -> None:
    """With a few chunks every split stage fans out over several chunks (and buckets) through Distributed Maps
    whose ItemReader reads the item lists from moto's S3."""
    s3 = moto_aws.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    table = f"values-{uuid.uuid4().hex[:8]}"
    moto_aws.client("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    pipeline = load_pipeline(str(path))
    prefix = f"data/{uuid.uuid4().hex[:8]}"
    sources = upload_sources(moto_aws, pipeline, prefix)
    root = f"s3://{BUCKET}/root/"
    function_env = {"SPARKFLOW_KV": f"dynamodb://{table}", "SPARKFLOW_ALLOWED_INPUTS": f"s3://{BUCKET}/{prefix}/"}
    arn = deploy_with_runtime(moto_aws, lambda_double, monkeypatch, path, root, function_env)
    params: dict[str, Any] = {"sources": sources}
    if chunks == "few":
        params["chunk_bytes"] = few_chunks(pipeline)
    values = PARAMS.get(path.parent.name, {})
    if values:
        params["params"] = values
    execution = moto_aws.run(arn, params, timeout=600)
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    run_id = output["run_id"]
    plan = plan_pipeline(pipeline, "aws")
    assert {call.node for call in lambda_double.calls} == {task.id for task in plan.tasks} | {"publish"}
    assert {call.payload["run"]["plan"] for call in lambda_double.calls} == {plan.digest}  # the runtime checked each
    chunk_calls = [call for call in lambda_double.calls if call.payload.get("phase") in ("map", "reduce")]
    split_stages = {call.node for call in lambda_double.calls if call.payload.get("phase") == "split"}
    assert split_stages, "every example has split stages"
    if chunks == "few":
        assert len(chunk_calls) > 2 * len(split_stages), "tiny chunks fan out over several chunks per stage"

    assert all(call.payload["run"]["params"].get("params", {}) == values for call in lambda_double.calls)
    expected = reference_outputs(spark, pipeline, values)  # the plain PySpark job with the same values
    if values:
        defaults = reference_outputs(spark, pipeline)
        assert any(rows(expected[node]) != rows(defaults[node]) for node in expected), "the values change the result"
    assert set(output["outputs"]) == set(expected)
    for sink, location in output["outputs"].items():
        assert location == f"{root}{pipeline.name}/{run_id}/{sink}/"
        assert committed_rows(spark, location, tmp_path / sink) == rows(expected[sink]), sink


def test_failing_stage_fails_the_execution_naming_it(
    spark: Any, tmp_path: Path, moto_aws: MotoAws, lambda_double: LambdaDouble, monkeypatch: Any
) -> None:
    path = next(p for p in EXAMPLES if p.parent.name == "wordcount")
    arn = deploy_with_runtime(moto_aws, lambda_double, monkeypatch, path, f"s3://{BUCKET}/root/", {})
    # The books location is outside what the function may read: a ConfinementError, which is not retried.
    execution = moto_aws.run(arn, {"sources": {"books": f"s3://{BUCKET}/nowhere/"}}, timeout=120)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "StageFailed"
    assert "stage counts failed" in execution["cause"] and "ConfinementError" in execution["cause"]
    assert [call.node for call in lambda_double.calls] == ["counts"]  # its split task reads books for words


@pytest.mark.parametrize("keep_work", [False, True], ids=["deleted", "kept"])
def test_a_published_run_deletes_its_work_on_s3(
    tmp_path: Path, moto_aws: MotoAws, lambda_double: LambdaDouble, monkeypatch: Any, keep_work: bool
) -> None:
    """The run's publish task deletes its working files from S3 (``{"keep_work": true}`` in the execution input
    keeps them); its outputs stay."""
    s3 = moto_aws.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    path = example("wordcount")
    pipeline = load_pipeline(str(path))
    prefix = f"data/{uuid.uuid4().hex[:8]}"
    sources = upload_sources(moto_aws, pipeline, prefix)
    root = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}/"
    env = {"SPARKFLOW_ALLOWED_INPUTS": f"s3://{BUCKET}/{prefix}/"}
    arn = deploy_with_runtime(moto_aws, lambda_double, monkeypatch, path, root, env)
    execution = moto_aws.run(arn, {"sources": sources, **({"keep_work": True} if keep_work else {})}, timeout=600)
    assert execution["status"] == "SUCCEEDED", execution
    run_id = json.loads(execution["output"])["run_id"]

    def keys(location: str) -> list[str]:
        found = s3.list_objects_v2(Bucket=BUCKET, Prefix=location[len(f"s3://{BUCKET}/") :])
        return [item["Key"] for item in found.get("Contents", [])]

    work = keys(work_root(root))
    if keep_work:
        assert any(key.endswith("/counts/split/plan.json") for key in work), work
    else:
        assert work == []
    assert storage.read_manifest(f"{root}{pipeline.name}/{run_id}/top/") is not None
