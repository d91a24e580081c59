"""`deploy`, `delete`, `start` and `status` against moto's server (real HTTP, boto3 as users use it): deploy creates
the stack of `sparkflow package`'s template through a change set, a second deploy updates it in place, a third
changes nothing; a failing update is rolled back naming the resource; delete removes the stack and keeps the data;
every placement and the zip deploy the same way; a run of a deployed stack succeeds and `status` shows every stage
and the outputs; a failing run shows the failed stage with its error and cause.

Moto's CloudFormation is completed by the shims of ``tests/aws_moto.py`` (state machines with
DefinitionSubstitutions, EMR Serverless applications, change set outputs, failures and rollback)."""

from __future__ import annotations

import json
import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.errors import OptionError, PackageError
from sparkflow.loading import load_pipeline
from sparkflow.runtime import aws as lambda_entry
from sparkflow.runtime.deployed import deployed_config
from sparkflow.runtime.workers import WorkerPool
from sparkflow.targets.aws import ship
from sparkflow.targets.aws.deploy import (
    DeployError,
    Packaged,
    default_stack_name,
    delete,
    deploy,
    emr_entry_upload,
    find_state_machine,
    zip_upload,
)
from sparkflow.targets.aws.jobs import container_sizes
from sparkflow.targets.aws.template import ZipCode, template_text
from sparkflow.targets.aws.watch import follow, start, status
from sparkflow.targets.base import ShipOptions
from sparkflow.targets.runs import DONE, FAILED, PENDING
from tests.aws_moto import Handler, LambdaDouble, MotoAws, StageFailure
from tests.runtime.configs import write_plan
from tests.ship.conftest import Compiled, compiled

pytestmark = pytest.mark.moto
BUCKET = "sparkflow-ship"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stages:v1"
PLACEMENT = Path(__file__).resolve().parents[1] / "resources" / "placement.py"


def stack() -> str:
    return f"ship-{uuid.uuid4().hex[:8]}"


def bucket(aws: MotoAws) -> None:
    s3 = aws.client("s3")
    if BUCKET not in [item["Name"] for item in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)


def resources(aws: MotoAws, name: str, kind: str) -> dict[str, str]:
    """Logical id -> physical id of the stack's resources of type ``kind``."""
    listed = aws.client("cloudformation").list_stack_resources(StackName=name)["StackResourceSummaries"]
    return {item["LogicalResourceId"]: item["PhysicalResourceId"] for item in listed if item["ResourceType"] == kind}


def function_named(aws: MotoAws, name: str, memory: int) -> dict[str, Any]:
    """The configuration of the stack's function for ``memory`` MB (found through the stack, as CloudFormation
    names it)."""
    outputs = aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    [arn] = [item["OutputValue"] for item in outputs if item["OutputKey"] == f"StageFunction{memory}MBArn"]
    return dict(aws.client("lambda").get_function(FunctionName=arn))


def machines_named(aws: MotoAws, name: str) -> list[str]:
    listed = aws.client("stepfunctions").list_state_machines()["stateMachines"]
    return [item["stateMachineArn"] for item in listed if item["name"] == name]


def all_function_arns(aws: MotoAws) -> set[str]:
    pages = aws.client("lambda").get_paginator("list_functions").paginate()
    return {function["FunctionArn"] for page in pages for function in page["Functions"]}


def image_deploy(aws: MotoAws, item: Compiled, name: str, **options: Any) -> tuple[str, list[str]]:
    """Deploy ``item``'s image template (for ``engine=``, spark by default) as stack ``name``; return the state
    machine ARN and what was reported."""
    bucket(aws)
    inputs = options.pop("inputs", None)
    engine = options.pop("engine", "spark")
    lines: list[str] = []
    arn = deploy(
        Packaged(template_text(item.plan, item.definition, engine=engine, inputs=inputs)),
        stack_name=name,
        storage_root=options.pop("storage_root", f"s3://{BUCKET}/{name}/"),
        image_uri=options.pop("image_uri", IMAGE),
        clients=aws.client,
        report=lines.append,
        poll_s=0,
        **options,
    )
    return arn, lines


def test_deploy_creates_the_stack_then_updates_it_in_place_then_changes_nothing(
    moto_aws: MotoAws, wordcount: Compiled
) -> None:
    name = stack()
    arn, lines = image_deploy(moto_aws, wordcount, name, storage_root=f"s3://{BUCKET}/first")
    assert lines[0] == f"stack {name}: create through change set " + lines[0].split("change set ")[1]
    assert any(line.split()[:3] == ["Add", "StateMachine", "AWS::StepFunctions::StateMachine"] for line in lines)
    assert any("CREATE_COMPLETE" in line for line in lines), lines
    assert arn.endswith(f":stateMachine:{name}") and machines_named(moto_aws, name) == [arn]
    memories = sorted({task.memory_mb for task in wordcount.plan.tasks})
    functions = resources(moto_aws, name, "AWS::Lambda::Function")
    assert sorted(functions) == [f"StageFunction{memory}MB" for memory in memories]
    small = function_named(moto_aws, name, 1024)
    assert small["Code"]["ImageUri"] == IMAGE
    configuration = small["Configuration"]
    assert configuration["MemorySize"] == 1024
    assert configuration["Timeout"] == max(t.timeout_s for t in wordcount.plan.tasks if t.memory_mb == 1024)
    assert configuration["Environment"]["Variables"] == {"SPARKFLOW_STORAGE_ROOT": f"s3://{BUCKET}/first/"}
    roles = resources(moto_aws, name, "AWS::IAM::Role")
    assert configuration["Role"].endswith(f":role/{roles['StageRole']}")
    described = moto_aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    assert described["roleArn"].endswith(f":role/{roles['StateMachineRole']}")
    assert "${" not in described["definition"]  # DefinitionSubstitutions filled every placeholder
    definition = json.loads(described["definition"])
    assert definition["States"]["Run-new"]["Parameters"]["run"]["storage"] == f"s3://{BUCKET}/first/"
    assert described["tracingConfiguration"] == {"enabled": True}
    assert described["loggingConfiguration"]["level"] == "ERROR"
    # The storage bucket's rule expiring failed runs' working files (the bucket is not the stack's).
    lifecycle = moto_aws.client("s3").get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert {"Prefix": "first/_work/"} in [rule["Filter"] for rule in lifecycle]
    assert lines[-1] == f"lifecycle rule sparkflow-work:first: s3://{BUCKET}/first/_work/ expires after 7 days"
    function_arns = all_function_arns(moto_aws)

    again, lines = image_deploy(
        moto_aws,
        wordcount,
        name,
        image_uri=IMAGE.replace(":v1", ":v2"),
        storage_root=f"s3://{BUCKET}/second/",
        inputs={"books": f"s3://{BUCKET}/books/"},
    )
    assert again == arn and machines_named(moto_aws, name) == [arn]
    assert lines[0].startswith(f"stack {name}: update through change set ")
    assert any(line.split()[:2] == ["Modify", "StageFunction1024MB"] for line in lines), lines
    assert all_function_arns(moto_aws) == function_arns  # updated in place: no function more, none replaced
    assert resources(moto_aws, name, "AWS::Lambda::Function") == functions
    small = function_named(moto_aws, name, 1024)
    assert small["Code"]["ImageUri"] == IMAGE.replace(":v1", ":v2")
    assert small["Configuration"]["Environment"]["Variables"] == {
        "SPARKFLOW_STORAGE_ROOT": f"s3://{BUCKET}/second/",
        "SPARKFLOW_ALLOWED_INPUTS": f"s3://{BUCKET}/books/",
    }
    described = moto_aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)
    storage = json.loads(described["definition"])["States"]["Run-new"]["Parameters"]["run"]["storage"]
    assert storage == f"s3://{BUCKET}/second/"
    assert find_state_machine(name, clients=moto_aws.client) == arn

    same, lines = image_deploy(
        moto_aws,
        wordcount,
        name,
        image_uri=IMAGE.replace(":v1", ":v2"),
        storage_root=f"s3://{BUCKET}/second/",
        inputs={"books": f"s3://{BUCKET}/books/"},
    )
    assert same == arn and lines == [f"stack {name}: no changes"]


def test_a_failing_update_is_rolled_back_and_the_error_names_the_resource(
    moto_aws: MotoAws, wordcount: Compiled, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = stack()
    arn, _ = image_deploy(moto_aws, wordcount, name)
    # Lambda refuses an image that is not in ECR (moto checks it when told to): v1 is pushed, v2 is not.
    ecr = moto_aws.client("ecr")
    if "stages" not in [repo["repositoryName"] for repo in ecr.describe_repositories()["repositories"]]:
        ecr.create_repository(repositoryName="stages")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"size": 1000, "digest": "sha256:" + "0" * 64},
        "layers": [],
    }
    ecr.put_image(repositoryName="stages", imageManifest=json.dumps(manifest), imageTag="v1")
    monkeypatch.setenv("MOTO_LAMBDA_STUB_ECR", "false")
    with pytest.raises(DeployError) as raised:
        image_deploy(moto_aws, wordcount, name, image_uri=IMAGE.replace(":v1", ":v2"))
    message = str(raised.value)
    assert message.startswith(f"stack {name} ended in UPDATE_ROLLBACK_COMPLETE; CloudFormation rolled the stack back")
    assert "StageFunction" in message and "(AWS::Lambda::Function): " in message and "v2" in message, message
    status = moto_aws.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    assert status == "UPDATE_ROLLBACK_COMPLETE"
    assert function_named(moto_aws, name, 1024)["Code"]["ImageUri"] == IMAGE  # back to the previous image
    assert machines_named(moto_aws, name) == [arn]


def test_delete_removes_the_stack_and_keeps_the_data(moto_aws: MotoAws) -> None:
    item = compiled("clickstream")  # a value stage: the stack makes the values table
    name = stack()
    image_deploy(moto_aws, item, name)
    [table] = resources(moto_aws, name, "AWS::DynamoDB::Table").values()
    moto_aws.client("dynamodb").put_item(TableName=table, Item={"key": {"S": "run-1/threshold"}})
    moto_aws.client("s3").put_object(Bucket=BUCKET, Key=f"{name}/clickstream/run-1/out.parquet", Body=b"rows")
    functions = resources(moto_aws, name, "AWS::Lambda::Function").values()
    lines: list[str] = []
    delete(name, clients=moto_aws.client, report=lines.append, poll_s=0)
    assert lines[0] == f"stack {name}: deleting" and "DELETE_COMPLETE" in lines[-1], lines
    assert machines_named(moto_aws, name) == []
    assert not set(functions) & {arn.rsplit(":", 1)[1] for arn in all_function_arns(moto_aws)}
    assert moto_aws.client("s3").get_object(Bucket=BUCKET, Key=f"{name}/clickstream/run-1/out.parquet")
    kept = moto_aws.client("dynamodb").get_item(TableName=table, Key={"key": {"S": "run-1/threshold"}})
    assert kept["Item"] == {"key": {"S": "run-1/threshold"}}
    with pytest.raises(DeployError, match=rf"no stack named '{name}' \(so no state machine to run\).*sparkflow deploy"):
        find_state_machine(name, clients=moto_aws.client)
    with pytest.raises(DeployError, match=rf"no stack named '{name}' .*nothing was deleted; pass the --stack"):
        delete(name, clients=moto_aws.client, poll_s=0)


def test_container_and_serverless_spark_stages_deploy_with_the_stack(moto_aws: MotoAws, tmp_path: Path) -> None:
    pipeline = load_pipeline(str(PLACEMENT))  # visitors, sessions: containers; history: serverless Spark
    item = Compiled(PLACEMENT, pipeline, plan_pipeline(pipeline, "aws"), compile_pipeline(pipeline, "aws"))
    bucket(moto_aws)
    ec2 = moto_aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    entry = tmp_path / "entry.py"
    entry.write_text("print('the EMR entry')\n", encoding="utf-8")
    name = stack()
    arn = deploy(
        Packaged(template_text(item.plan, item.definition), (emr_entry_upload(entry, pipeline.name),)),
        stack_name=name,
        storage_root=f"s3://{BUCKET}/{name}/",
        image_uri=IMAGE,
        parameters={
            "ContainerSubnets": subnet,
            "ContainerSecurityGroups": "sg-12345678",
            "EmrImageUri": IMAGE.replace("stages", "emr"),
        },
        clients=moto_aws.client,
        poll_s=0,
    )
    [cluster] = resources(moto_aws, name, "AWS::ECS::Cluster").values()
    tasks = resources(moto_aws, name, "AWS::ECS::TaskDefinition")
    [application] = resources(moto_aws, name, "AWS::EMRServerless::Application").values()
    definition = moto_aws.client("stepfunctions").describe_state_machine(stateMachineArn=arn)["definition"]
    assert "${" not in definition
    assert sorted(tasks) == [f"StageContainer{memory}MB" for memory in container_sizes(item.plan)]
    for task_arn in tasks.values():
        assert task_arn in definition
    assert cluster in definition or cluster.rsplit("/", 1)[-1] in definition
    assert moto_aws.client("emr-serverless").get_application(applicationId=application)["application"]["name"] == (
        f"{name}-spark"
    )
    key = emr_entry_upload(entry, pipeline.name).key
    assert f"s3://{BUCKET}/{key}" in definition and application in definition
    assert moto_aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read() == entry.read_bytes()
    assert resources(moto_aws, name, "AWS::Lambda::Function")  # the function stage (report) and publishing

    with pytest.raises(
        OptionError,
        match=r"needs values for these parameters.*--parameter NAME=VALUE.*\n"
        r"  ContainerSubnets: Subnets the container stages run in",
    ):
        deploy(
            Packaged(template_text(item.plan, item.definition), (emr_entry_upload(entry, pipeline.name),)),
            stack_name=stack(),
            storage_root=f"s3://{BUCKET}/p/",
            image_uri=IMAGE,
            clients=moto_aws.client,
        )


def test_the_duckdb_zip_deploys_with_its_code_uploaded(moto_aws: MotoAws, tmp_path: Path) -> None:
    item = compiled("wordcount")
    archive = tmp_path / "function.zip"  # a stand-in for the built zip (building it takes ~20 s): the stack's view
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("sparkflow/__init__.py", "")
    code = ZipCode("python3.12", "sparkflow/wordcount/function-0123456789abcdef.zip", "project/pipeline.py", "plan")
    bucket(moto_aws)
    moto_aws.client("s3").create_bucket(Bucket="code-bucket")
    name = stack()
    lines: list[str] = []
    arn = deploy(
        Packaged(
            template_text(item.plan, item.definition, engine="duckdb", zip_code=code), (zip_upload(archive, code.key),)
        ),
        stack_name=name,
        storage_root=f"s3://{BUCKET}/{name}/",
        code_bucket="code-bucket",
        clients=moto_aws.client,
        report=lines.append,
        poll_s=0,
    )
    assert machines_named(moto_aws, name) == [arn]
    assert lines[0] == f"uploading {archive} to s3://code-bucket/{code.key}"
    assert moto_aws.client("s3").get_object(Bucket="code-bucket", Key=code.key)["Body"].read() == archive.read_bytes()
    configuration = function_named(moto_aws, name, 1024)["Configuration"]
    assert (configuration["Runtime"], configuration["Handler"]) == ("python3.12", "sparkflow.runtime.aws.handler")
    assert configuration["Environment"]["Variables"]["SPARKFLOW_ENGINE"] == "duckdb"


def test_deploy_refuses_what_cannot_work(moto_aws: MotoAws, wordcount: Compiled) -> None:
    packaged = Packaged(template_text(wordcount.plan, wordcount.definition))
    common: dict[str, Any] = {"clients": moto_aws.client, "poll_s": 0}
    with pytest.raises(OptionError, match=r"stack name 'no such'.*letters, digits or '-'.*pass another --stack"):
        deploy(packaged, stack_name="no such", storage_root="s3://b/p/", image_uri=IMAGE, **common)
    with pytest.raises(PackageError, match=r"storage root 'gs://b/p/' is not an S3 location"):
        deploy(packaged, stack_name=stack(), storage_root="gs://b/p/", image_uri=IMAGE, **common)
    with pytest.raises(OptionError, match=r"  ImageUri: pass --image-uri \(the image built from"):
        deploy(packaged, stack_name=stack(), storage_root="s3://my-bucket/p/", **common)
    with pytest.raises(OptionError, match=r"the stack has no parameter Subnets: its parameters are ImageUri, "):
        deploy(
            packaged,
            stack_name=stack(),
            storage_root="s3://my-bucket/p/",
            image_uri=IMAGE,
            parameters={"Subnets": "x"},
            **common,
        )
    pipeline = load_pipeline(str(wordcount.path))
    with pytest.raises(OptionError, match=r"--target aws needs --image-uri: build the Dockerfile"):
        ship.deploy(pipeline, wordcount.plan, wordcount.definition, ShipOptions(storage_root="s3://my-bucket/p/"))
    with pytest.raises(OptionError, match=r"stack name 'a_b'"):
        ship.delete(pipeline, ShipOptions(stack="a_b"))


def test_a_pipeline_named_with_dashes_deploys_under_its_own_name(moto_aws: MotoAws) -> None:
    item = compiled("daily-revenue")
    name = default_stack_name(item.plan.pipeline)
    arn, _ = image_deploy(moto_aws, item, name)
    assert name == "daily-revenue" and machines_named(moto_aws, "daily-revenue") == [arn]
    assert default_stack_name("daily_revenue") == "daily-revenue"
    delete(name, clients=moto_aws.client, poll_s=0)  # the next session's moto is new, but this one goes on


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


def worker_handler(engine: str) -> Handler:
    """The Lambda function of an engine that prepares its process (``SPARKFLOW_ENGINE``): the real runtime in a
    worker process prepared for it, as a function's own process is (this test process stays a Spark one)."""
    pool = WorkerPool(deployed_config(), engine)

    def handler(payload: dict[str, Any]) -> Any:
        try:
            return pool.handle_event(payload)
        except Exception as error:
            raise StageFailure(type(error).__name__, str(error)) from error

    return handler


def deployed(
    aws: MotoAws, double: LambdaDouble, monkeypatch: Any, item: Compiled, engine: str = "spark"
) -> tuple[str, str, dict[str, str]]:
    """Deploy ``item``'s template for ``engine`` with its sources uploaded to moto's S3 (outside the storage root,
    allowed as inputs); the Lambda double runs the real runtime with the environment deploy gave the functions (plus
    the pipeline, which the image sets). Returns (state machine ARN, storage root, source name -> location)."""
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
    arn, root = deployed_with_runtime(aws, double, monkeypatch, item, sources, engine)
    return arn, root, sources


def deployed_with_runtime(
    aws: MotoAws, double: LambdaDouble, monkeypatch: Any, item: Compiled, sources: dict[str, str], engine: str = "spark"
) -> tuple[str, str]:
    """Deploy ``item``'s template for ``engine`` reading ``sources`` (``--input``) as a new stack; the Lambda double
    runs the real runtime with the environment deploy gave the functions, on the engine it names. Returns (state
    machine ARN, storage root)."""
    name = stack()
    root = f"s3://{BUCKET}/{name}/"
    arn, _ = image_deploy(aws, item, name, storage_root=root, inputs=sources, engine=engine)
    memory = item.plan.tasks[0].memory_mb
    variables = dict(function_named(aws, name, memory)["Configuration"]["Environment"]["Variables"])
    prepared = variables.pop("SPARKFLOW_ENGINE", None)  # for the worker processes, not for this one
    plan = write_plan(load_pipeline(str(item.path)), Path(tempfile.mkdtemp(prefix="sparkflow-plan-")))
    for key, value in {**variables, "SPARKFLOW_PIPELINE": str(item.path), "SPARKFLOW_PLAN": plan}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint)
    double.delay = 0
    double.handler = runtime_handler if prepared is None else worker_handler(prepared)
    return arn, root


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
