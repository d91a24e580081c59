"""Stages placed on a container and on serverless Spark run through the generated ASL in moto: the ECS Fargate
task (``ecs:runTask.sync``) is answered in-process by the container entry (``python -m sparkflow.runtime``
with the event in ``SPARKFLOW_EVENT``), the EMR Serverless job run (``emr-serverless:startJobRun.sync``) by the
serverless Spark entry (:mod:`sparkflow.runtime.cluster`, Spark reading and writing storage itself), the
Lambda function by the Lambda handler; the outputs equal `sparkflow run`'s.

Moto runs ECS tasks without running them and has no EMR Serverless integration in its Step Functions
interpreter, so both are completed here with the real runtime (the way ``tests/aws_moto.py`` answers Lambda).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from sparkflow.targets.aws.emit import CONTAINER_NAME, EVENT_VARIABLE
from tests.aws_moto import LambdaDouble, MotoAws, placeholders, substitute
from tests.placement_data import write_inputs
from tests.runtime.configs import write_plan
from tests.runtime.reference import committed_rows
from tests.runtime.test_aws_runtime import runtime_handler

pytestmark = [pytest.mark.spark, pytest.mark.moto]
PLACEMENT = Path(__file__).resolve().parents[1] / "resources" / "placement.py"


class Jobs:
    """What ran as a container or a serverless Spark job, and what its entry answered."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, int]] = []  # (kind, node, exit code)
        self.fail_node: str | None = None
        self._lock = threading.Lock()

    def record(self, kind: str, node: str, code: int) -> None:
        with self._lock:
            self.runs.append((kind, node, code))


def _run_container(jobs: Jobs, event_text: str) -> int:
    from sparkflow.runtime.__main__ import main

    node = json.loads(event_text)["node"]
    code = 1 if node == jobs.fail_node else main([event_text])
    jobs.record("container", node, code)
    return code


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Jobs]:
    """Patch moto (running in this process): ECS tasks run the container entry and stop with its exit code;
    the Step Functions interpreter's ``emr-serverless`` integration runs the serverless Spark entry."""
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    recorded = Jobs()
    original_run_task = EC2ContainerServiceBackend.run_task

    def run_task(self: Any, *args: Any, **kwargs: Any) -> Any:
        tasks = original_run_task(self, *args, **kwargs)
        for task in tasks:
            (override,) = [item for item in task.overrides["containerOverrides"] if item["name"] == CONTAINER_NAME]
            env = {item["name"]: item["value"] for item in override["environment"]}
            task.containers[0].exitCode = _run_container(recorded, env[EVENT_VARIABLE])
            task._status = "STOPPED"  # the task ran to its end before run_task answers
        return tasks

    original_factory = state_task_factory.state_task_service_for

    def service_for(service_name: str) -> Any:
        if service_name == "emr-serverless":
            return _emr_serverless_double(recorded)
        return original_factory(service_name=service_name)

    monkeypatch.setattr(EC2ContainerServiceBackend, "run_task", run_task)
    monkeypatch.setattr(state_task_factory, "state_task_service_for", service_for)
    _normalise_ecs_shapes(monkeypatch)
    # Moto's ECS reads a DNS name its EC2 network interfaces do not have when it attaches one to a Fargate task.
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    dns_name = property(lambda self: f"ip-{str(self.private_ip_address).replace('.', '-')}.ec2.internal")
    monkeypatch.setattr(NetworkInterface, "private_dns_name", dns_name, raising=False)
    # Moto's .sync also starts a thread waiting for a task token that never comes, and that thread fails on its
    # timeout argument (a dict): nothing sends task tokens here, so wait for the job alone.
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )

    eval_sync = StateTaskServiceCallback._eval_sync

    def job_only(
        self: Any, env: Any, sync_resolver: Any, timeout_seconds: Any, callback_endpoint: Any, **rest: Any
    ) -> Any:
        return eval_sync(self, env, sync_resolver, timeout_seconds, None, **rest)

    monkeypatch.setattr(StateTaskServiceCallback, "_eval_sync", job_only)
    before = set(threading.enumerate())
    yield recorded
    # A failed execution is reported while its other branches may still run a job in moto's threads: let them
    # end under these patches, or they start the failing task-token thread inside the next test.
    deadline = time.monotonic() + 120
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))


def _normalise_ecs_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Moto's interpreter leaves the ECS integration's request and response un-normalised (the hooks are empty):
    Step Functions takes ``Cluster`` where boto3 wants ``cluster`` and answers ``Containers`` where ECS says
    ``containers``. Fill the two hooks with the conversion AWS does, through botocore's model of ECS."""
    import boto3
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
        StateTaskServiceEcs,
    )

    model = boto3.session.Session(region_name="us-east-1").client("ecs").meta

    def operation(action: str) -> Any:
        return model.service_model.operation_model(model.method_to_api_mapping[action])

    def parameters(
        self: Any, values: dict[str, Any], boto_service_name: Any = None, service_action_name: Any = None
    ) -> None:
        self._to_boto_request(values, operation(self._get_boto_service_action(service_action_name)).input_shape)

    def response(self: Any, response: Any, boto_service_name: Any = None, service_action_name: Any = None) -> None:
        self._from_boto_response(response, operation(self._get_boto_service_action(service_action_name)).output_shape)

    monkeypatch.setattr(StateTaskServiceEcs, "_normalise_parameters", parameters)
    monkeypatch.setattr(StateTaskServiceEcs, "_normalise_response", response)


def _emr_serverless_double(jobs: Jobs) -> Any:
    """Moto's interpreter has no EMR Serverless integration: this one starts the job run by running the entry
    point's ``main`` with the run's arguments, and its ``.sync`` answers the job run (or fails the task)."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    from sparkflow.runtime import cluster

    class EmrServerless(StateTaskServiceCallback):
        def __init__(self) -> None:
            # WaitForTaskToken too, as AWS has it: moto's .sync path needs the callback endpoint that comes with it.
            super().__init__(
                supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken}
            )

        def _get_supported_parameters(self) -> set[str]:
            # StartJobRun's request members (https://docs.aws.amazon.com/emr-serverless/latest/APIReference/).
            return {
                "ApplicationId",
                "ClientToken",
                "ConfigurationOverrides",
                "ExecutionRoleArn",
                "ExecutionTimeoutMinutes",
                "JobDriver",
                "Name",
                "Tags",
            }

        def _eval_service_task(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
        ) -> None:
            parameters = normalised_parameters
            lowered = {key.lower(): value for key, value in parameters.items()}
            driver = {key.lower(): value for key, value in lowered["jobdriver"].items()}
            submit = {key.lower(): value for key, value in driver["sparksubmit"].items()}
            (event_text,) = submit["entrypointarguments"]
            node = json.loads(event_text)["node"]
            code = 1 if node == jobs.fail_node else cluster.main([event_text])
            jobs.record("serverless-spark", node, code)
            env.stack.append(
                {
                    "ApplicationId": lowered["applicationid"],
                    "JobRunId": uuid.uuid4().hex,
                    "State": "SUCCESS" if code == 0 else "FAILED",
                }
            )

        def _build_sync_resolver(
            self, env: Any, resource_runtime_part: Any, normalised_parameters: Any, state_credentials: Any
        ) -> Any:
            job_run = env.stack.pop()

            def resolve() -> Any:
                if job_run["State"] == "SUCCESS":
                    return job_run
                details = TaskFailedEventDetails(
                    resource=self._get_sfn_resource(),
                    resourceType=self._get_sfn_resource_type(),
                    error=StatesErrorNameType.StatesTaskFailed.to_name(),
                    cause=json.dumps(job_run),
                )
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(taskFailedEventDetails=details),
                    )
                )

            return resolve

    return EmrServerless()


def deploy(aws: MotoAws, double: LambdaDouble, monkeypatch: pytest.MonkeyPatch, root: Path, data: Path) -> str:
    """The placement pipeline's state machine in moto, with a cluster, task definitions and a network."""
    for name, value in {
        "AWS_ENDPOINT_URL": aws.endpoint,
        "SPARKFLOW_PIPELINE": str(PLACEMENT),
        "SPARKFLOW_PLAN": write_plan(load_pipeline(str(PLACEMENT)), root.parent / "plan"),
        "SPARKFLOW_STORAGE_ROOT": f"{root}/",
        "SPARKFLOW_ALLOWED_INPUTS": f"{data}/",
    }.items():
        monkeypatch.setenv(name, value)
    double.delay = 0
    double.handler = runtime_handler
    definition = compile_pipeline(load_pipeline(str(PLACEMENT)), "aws")
    ec2, ecs = aws.client("ec2"), aws.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"stages-{uuid.uuid4().hex[:6]}", Description="stages", VpcId=vpc)
    cluster = ecs.create_cluster(clusterName=f"sparkflow-{uuid.uuid4().hex[:6]}")["cluster"]["clusterArn"]
    values = {
        "StorageRoot": f"{root}/",
        "ContainerCluster": cluster,
        "ContainerSubnets": subnet,
        "ContainerSecurityGroups": group["GroupId"],
        "EmrApplicationId": aws.client("emr-serverless").create_application(
            name="stages", releaseLabel="emr-7.5.0", type="SPARK"
        )["applicationId"],
        "EmrJobRoleArn": aws.role_arn,
        "EmrEntryPoint": "s3://code/sparkflow_entry.py",
        "EmrSparkSubmitParameters": "--conf spark.archives=s3://code/environment.tar.gz#environment",
    }
    for name in sorted(placeholders(definition)):
        if name.startswith("StageFunction"):
            values[name] = aws.create_function("stage")
        elif name.startswith("StageContainer"):
            memory = name.removeprefix("StageContainer").removesuffix("MB")
            values[name] = ecs.register_task_definition(
                family=f"stage-{memory}",
                networkMode="awsvpc",
                requiresCompatibilities=["FARGATE"],
                cpu="2048",
                memory=memory,
                containerDefinitions=[
                    {"name": CONTAINER_NAME, "image": "sparkflow-stage", "essential": True, "memory": int(memory)}
                ],
            )["taskDefinition"]["taskDefinitionArn"]
    return aws.create_state_machine("placement", substitute(definition, values))


def test_container_and_serverless_spark_stages_run_through_the_asl(
    spark: Any, tmp_path: Path, moto_aws: MotoAws, lambda_double: LambdaDouble, jobs: Jobs, monkeypatch: Any
) -> None:
    inputs = write_inputs(tmp_path / "data")
    arn = deploy(moto_aws, lambda_double, monkeypatch, tmp_path / "s3", tmp_path / "data")
    execution = moto_aws.run(arn, {"sources": inputs}, timeout=600)
    assert execution["status"] == "SUCCEEDED", execution
    assert sorted(jobs.runs) == [
        ("container", "sessions", 0),
        ("container", "visitors", 0),
        ("serverless-spark", "history", 0),
    ]
    assert [call.node for call in lambda_double.calls] == ["report", "publish"]
    pipeline = load_pipeline(str(PLACEMENT))
    local = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path / "local"), inputs=inputs)
    assert local.status == "succeeded"
    output = json.loads(execution["output"])["outputs"]
    assert committed_rows(spark, output["report"]) == committed_rows(spark, local.outputs["report"])
    assert len(committed_rows(spark, output["report"])) == 7  # one row per user


@pytest.mark.parametrize("node", ["visitors", "history"])
def test_a_failed_job_is_retried_then_fails_the_execution_naming_its_stage(
    spark: Any, tmp_path: Path, moto_aws: MotoAws, lambda_double: LambdaDouble, jobs: Jobs, monkeypatch: Any, node: str
) -> None:
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    waits: list[float] = []  # record the backoff (a Retry's sleep, a Wait state's), skip the waiting
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=waits.append))
    monkeypatch.setattr(WaitFunction, "_wait_interval", lambda self, env, wait_seconds: waits.append(wait_seconds))
    jobs.fail_node = node
    inputs = write_inputs(tmp_path / "data")
    arn = deploy(moto_aws, lambda_double, monkeypatch, tmp_path / "s3", tmp_path / "data")
    execution = moto_aws.run(arn, {"sources": inputs}, timeout=600)
    assert execution["status"] == "FAILED"
    history = moto_aws.client("stepfunctions").get_execution_history(executionArn=execution["executionArn"])
    failed = [event for event in history["events"] if event["type"] == "ExecutionFailed"]
    assert failed[0]["executionFailedEventDetails"]["cause"].startswith(f"stage {node} failed: ")
    assert [run for run in jobs.runs if run[1] == node] == [(run[0], node, 1) for run in jobs.runs if run[1] == node]
    assert len([run for run in jobs.runs if run[1] == node]) == 3, "retries=2 (the default): three attempts"
    # Containers: a Wait state of 30 s before each new attempt; EMR: the Retry's 30 s then 60 s, full jitter.
    assert len(waits) == 2 and all(0 <= wait <= 60 for wait in waits), waits
    assert lambda_double.calls == [], "the stage after a failed job never runs"
