"""`deploy`, `start` and `status` against moto's server (real HTTP, boto3 as users use it): deploy creates, a
second deploy updates in place, a run of wordcount through the real runtime succeeds and `status` shows every
stage and the outputs; a failing run shows the failed stage with its error and cause."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from sparkflow.errors import PackageError
from sparkflow.loading import load_pipeline
from sparkflow.runtime import aws as lambda_entry
from sparkflow.targets.aws.deploy import DeployError, default_stack_name, deploy, find_state_machine
from sparkflow.targets.aws.watch import follow, start, status
from sparkflow.targets.runs import DONE, FAILED, PENDING
from tests.aws_moto import LambdaDouble, MotoAws, StageFailure
from tests.runtime.configs import write_plan
from tests.ship.conftest import Compiled, compiled

pytestmark = pytest.mark.moto
BUCKET = "sparkflow-ship"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stages:v1"


def stack() -> str:
    return f"ship-{uuid.uuid4().hex[:8]}"


def bucket(aws: MotoAws) -> None:
    s3 = aws.client("s3")
    if BUCKET not in [item["Name"] for item in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)


def functions_of(aws: MotoAws, name: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for page in aws.client("lambda").get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            if function["FunctionName"].startswith(f"{name}-"):
                found[function["FunctionName"]] = function
    return found


def machines_named(aws: MotoAws, name: str) -> list[str]:
    listed = aws.client("stepfunctions").list_state_machines()["stateMachines"]
    return [item["stateMachineArn"] for item in listed if item["name"] == name]


def test_deploy_creates_then_updates_in_place(moto_aws: MotoAws, wordcount: Compiled) -> None:
    name = stack()
    arn = deploy(
        wordcount.plan,
        wordcount.definition,
        stack_name=name,
        image_uri=IMAGE,
        storage_root=f"s3://{BUCKET}/first",
        clients=moto_aws.client,
    )
    assert machines_named(moto_aws, name) == [arn]
    memories = sorted({task.memory_mb for task in wordcount.plan.tasks})
    functions = functions_of(moto_aws, name)
    assert sorted(functions) == sorted(f"{name}-{memory}mb" for memory in memories)
    small = moto_aws.client("lambda").get_function(FunctionName=f"{name}-1024mb")
    assert small["Code"]["ImageUri"] == IMAGE
    configuration = small["Configuration"]
    assert (configuration["PackageType"], configuration["MemorySize"]) == ("Image", 1024)
    assert configuration["Timeout"] == max(t.timeout_s for t in wordcount.plan.tasks if t.memory_mb == 1024)
    assert configuration["Environment"]["Variables"] == {"SPARKFLOW_STORAGE_ROOT": f"s3://{BUCKET}/first/"}
    assert configuration["Role"].endswith(f":role/{name}-stages")
    described = moto_aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    assert described["roleArn"].endswith(f":role/{name}-states")
    definition = json.loads(described["definition"])
    assert "${" not in described["definition"]
    assert definition["States"]["Run-start"]["Parameters"]["run"]["storage"] == f"s3://{BUCKET}/first/"
    assert described["tracingConfiguration"] == {"enabled": True}
    assert described["loggingConfiguration"]["level"] == "ERROR"
    iam = moto_aws.client("iam")
    invoke = json.loads(json.dumps(iam.get_role_policy(RoleName=f"{name}-states", PolicyName="state-machine")))
    granted = invoke["PolicyDocument"]["Statement"][0]
    assert granted["Action"] == ["lambda:InvokeFunction"]
    assert sorted(granted["Resource"]) == sorted(f["FunctionArn"] for f in functions.values())

    again = deploy(
        wordcount.plan,
        wordcount.definition,
        stack_name=name,
        image_uri=IMAGE.replace(":v1", ":v2"),
        storage_root=f"s3://{BUCKET}/second/",
        inputs={"books": f"s3://{BUCKET}/books/"},
        clients=moto_aws.client,
    )
    assert again == arn
    assert machines_named(moto_aws, name) == [arn]
    assert sorted(functions_of(moto_aws, name)) == sorted(functions)
    assert {f["FunctionArn"] for f in functions_of(moto_aws, name).values()} == {
        f["FunctionArn"] for f in functions.values()
    }
    small = moto_aws.client("lambda").get_function(FunctionName=f"{name}-1024mb")
    assert small["Code"]["ImageUri"] == IMAGE.replace(":v1", ":v2")
    assert small["Configuration"]["Environment"]["Variables"] == {
        "SPARKFLOW_STORAGE_ROOT": f"s3://{BUCKET}/second/",
        "SPARKFLOW_ALLOWED_INPUTS": f"s3://{BUCKET}/books/",
    }
    described = moto_aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    storage = json.loads(described["definition"])["States"]["Run-start"]["Parameters"]["run"]["storage"]
    assert storage == f"s3://{BUCKET}/second/"
    assert find_state_machine(name, clients=moto_aws.client) == arn


def test_deploy_refuses_what_cannot_work(moto_aws: MotoAws, wordcount: Compiled) -> None:
    common: dict[str, Any] = {"image_uri": IMAGE, "clients": moto_aws.client}
    with pytest.raises(DeployError, match=r"stack name 'no such'.*letters, digits or '-'"):
        deploy(wordcount.plan, wordcount.definition, stack_name="no such", storage_root="s3://b/p/", **common)
    with pytest.raises(PackageError, match=r"storage root 'gs://b/p/' is not an S3 location"):
        deploy(wordcount.plan, wordcount.definition, stack_name=stack(), storage_root="gs://b/p/", **common)
    with pytest.raises(DeployError, match=r"no state machine named 'never-deployed'.*sparkflow deploy"):
        find_state_machine("never-deployed", clients=moto_aws.client)


def test_a_pipeline_named_with_dashes_deploys_under_its_own_name(moto_aws: MotoAws) -> None:
    item = compiled("daily-revenue")
    bucket(moto_aws)
    name = default_stack_name(item.plan.pipeline)
    arn = deploy(
        item.plan,
        item.definition,
        stack_name=name,
        image_uri=IMAGE,
        storage_root=f"s3://{BUCKET}/dashed/",
        clients=moto_aws.client,
    )
    assert name == "daily-revenue" and machines_named(moto_aws, "daily-revenue") == [arn]
    memories = sorted({task.memory_mb for task in item.plan.tasks})
    assert sorted(functions_of(moto_aws, name)) == [f"daily-revenue-{memory}mb" for memory in memories]
    assert default_stack_name("daily_revenue") == "daily-revenue"


def map_states(definition: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Map":
            found.add(name)
        for branch in state.get("Branches", ()):
            found |= map_states(branch)
    return found


def runtime_handler(payload: dict[str, Any]) -> Any:
    """The Lambda function: the real runtime entry; an exception becomes a function error of its type."""
    try:
        return lambda_entry.handler(payload, None)
    except Exception as error:
        raise StageFailure(type(error).__name__, str(error)) from error


def deployed(aws: MotoAws, double: LambdaDouble, monkeypatch: Any, item: Compiled) -> tuple[str, str, dict[str, str]]:
    """Deploy ``item`` with its sources uploaded to moto's S3 (outside the storage root, allowed as inputs); the
    Lambda double runs the real runtime with the environment deploy gave the functions (plus the pipeline, which
    the image sets). Returns (state machine ARN, storage root, source name -> location)."""
    bucket(aws)
    prefix = f"inputs/{uuid.uuid4().hex[:8]}"
    sources: dict[str, str] = {}
    for source in item.plan.sources:
        local = item.path.parent / source.uri
        files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else [local]
        for file in files:
            relative = file.relative_to(local).as_posix() if local.is_dir() else file.name
            aws.client("s3").upload_file(str(file), BUCKET, f"{prefix}/{source.name}/{relative}")
        sources[source.name] = f"s3://{BUCKET}/{prefix}/{source.name}/" + ("" if local.is_dir() else local.name)
    name = stack()
    root = f"s3://{BUCKET}/{name}/"
    arn = deploy(
        item.plan,
        item.definition,
        stack_name=name,
        image_uri=IMAGE,
        storage_root=root,
        inputs=sources,
        clients=aws.client,
    )
    memory = item.plan.tasks[0].memory_mb
    variables = aws.client("lambda").get_function_configuration(FunctionName=f"{name}-{memory}mb")["Environment"]
    plan = write_plan(load_pipeline(str(item.path)), Path(tempfile.mkdtemp(prefix="sparkflow-plan-")))
    for key, value in {**variables["Variables"], "SPARKFLOW_PIPELINE": str(item.path), "SPARKFLOW_PLAN": plan}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    double.delay = 0
    double.handler = runtime_handler
    return arn, root, sources


@pytest.mark.spark
@pytest.mark.parametrize("name", ["shouting", "wordcount", "daily-revenue"])
def test_a_started_run_succeeds_and_status_shows_every_stage_and_the_outputs(
    name: str, moto_aws: MotoAws, lambda_double: LambdaDouble, monkeypatch: Any
) -> None:
    item = compiled(name)
    arn, root, sources = deployed(moto_aws, lambda_double, monkeypatch, item)
    execution = start(arn, sources, clients=moto_aws.client)
    seen: list[str] = []
    final = follow(
        execution, clients=moto_aws.client, interval_s=0.2, timeout_s=300, on_update=lambda s: seen.append(s.status)
    )
    assert final.status == "SUCCEEDED", (final.error, final.cause, final.stages)
    assert final.execution == execution and seen[-1] == "SUCCEEDED"
    names = [stage.name for stage in final.stages]
    # A stage is one state, or (split into chunks) its split / map / reduce / commit states.
    for task in item.plan.tasks:
        assert task.id in names or any(name.startswith(f"{task.id}-") for name in names), (task.id, names)
    assert all(stage.state == DONE and stage.finished >= 1 for stage in final.stages), final.stages
    assert final.outputs == {sink: f"{root}{item.plan.pipeline}/{final.run_id}/{sink}/" for sink in item.plan.outputs}
    maps = map_states(json.loads(item.definition))
    for stage in final.stages:
        if stage.name in maps:  # a Distributed Map: its chunks ran in child executions, all of them succeeded
            assert stage.chunks is not None and stage.chunks.total >= 1, stage
            assert stage.chunks.succeeded == stage.chunks.total and stage.chunks.failed == 0, stage
        else:
            assert stage.chunks is None
    assert {call.node for call in lambda_double.calls} == {task.id for task in item.plan.tasks} | {"publish"}
    assert status(execution, clients=moto_aws.client) == final


@pytest.mark.spark
def test_a_failed_run_shows_the_failed_stage_with_error_and_cause(
    moto_aws: MotoAws, lambda_double: LambdaDouble, monkeypatch: Any
) -> None:
    item = compiled("wordcount")
    arn, _, _ = deployed(moto_aws, lambda_double, monkeypatch, item)
    # Outside the storage root and the allowed inputs: the runtime refuses it (ConfinementError, not retried).
    execution = start(arn, {"books": f"s3://{BUCKET}/nowhere/"}, clients=moto_aws.client)
    final = follow(execution, clients=moto_aws.client, interval_s=0.2, longest_interval_s=0.5, timeout_s=300)
    assert final.status == "FAILED" and final.error == "StageFailed"
    [failed] = final.failed_stages()
    assert failed == final.stages[0] and failed.name.startswith("counts")  # words runs inside counts' tasks
    assert failed.error == "ConfinementError"
    assert failed.cause is not None and "s3://sparkflow-ship/nowhere" in failed.cause
    assert all(stage.state == PENDING for stage in final.stages[1:]), final.stages
    assert failed.state == FAILED and final.outputs == {}


def test_deploy_waits_for_new_roles_to_propagate(moto_aws: MotoAws, wordcount: Compiled, monkeypatch: Any) -> None:
    """IAM is eventually consistent: AWS refuses a role created a moment ago; deploy retries those refusals only."""
    from botocore.exceptions import ClientError

    from sparkflow.targets.aws import deploy as deploy_module

    monkeypatch.setattr(deploy_module, "_ROLE_PROPAGATION_DELAY_S", 0)
    refusals = {"create_function": 2, "create_state_machine": 1}

    class Propagating:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            method = getattr(self._client, name)
            if name not in refusals:
                return method

            def maybe_refuse(**arguments: Any) -> Any:
                if refusals[name] == 0:
                    return method(**arguments)
                refusals[name] -= 1
                message = "The role defined for the function cannot be assumed by Lambda."
                if name == "create_state_machine":
                    message = (
                        "Neither the global service principal states.amazonaws.com, nor the regional one is "
                        "authorized to assume the provided role."
                    )
                raise ClientError({"Error": {"Code": "InvalidParameterValueException", "Message": message}}, name)

            return maybe_refuse

    name = stack()
    arn = deploy(
        wordcount.plan,
        wordcount.definition,
        stack_name=name,
        image_uri=IMAGE,
        storage_root=f"s3://{BUCKET}/p/",
        clients=lambda service: Propagating(moto_aws.client(service)),
    )
    assert refusals == {"create_function": 0, "create_state_machine": 0}
    assert machines_named(moto_aws, name) == [arn]
    # With a role of the user's (not created now), a refusal is reported at once, naming the step.
    refusals["create_state_machine"] = 1
    with pytest.raises(DeployError, match=r"creating state machine .*authorized to assume"):
        deploy(
            wordcount.plan,
            wordcount.definition,
            stack_name=stack(),
            image_uri=IMAGE,
            storage_root=f"s3://{BUCKET}/p/",
            role_arn=moto_aws.role_arn,
            clients=lambda service: Propagating(moto_aws.client(service)),
        )
