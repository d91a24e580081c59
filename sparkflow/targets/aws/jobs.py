"""The CloudFormation of stages placed on a container (ECS Fargate) or on serverless Spark (EMR Serverless):
what `sparkflow package --target aws` adds to the template when a pipeline has such stages.

* Containers: a cluster, one task definition per memory size (the stage image with ``python -m
  sparkflow.runtime`` as its entry point, which reads the event from ``SPARKFLOW_EVENT``; 200 GiB of ephemeral
  storage), an execution role (pull the image, write logs) and a task role with what the stage functions may
  touch. The network is the stack's parameters ``ContainerSubnets`` and ``ContainerSecurityGroups``.
* Serverless Spark: an EMR Serverless application running the custom image built from ``emr/Dockerfile``
  (``EmrImageUri``), a job role with what the stages may touch, the entry point uploaded to S3
  (``EmrEntryPoint``, the generated ``emr/entry.py``) and the storage root given to the driver.
* What the state machine may do with them (run and stop the tasks, start and cancel the job runs, pass the
  roles, the managed EventBridge rules its ``.sync`` integrations use), after
  https://docs.aws.amazon.com/step-functions/latest/dg/ecs-iam.html and
  https://docs.aws.amazon.com/step-functions/latest/dg/emr-serverless-iam.html.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparkflow.plan import Plan
from sparkflow.targets.aws import limits
from sparkflow.targets.aws.emit import CONTAINER_NAME, container_key

CONTAINER, SERVERLESS_SPARK = "container", "serverless-spark"
EMR_RELEASE = "emr-7.5.0"
PYTHON_IN_IMAGE = "/var/lang/bin/python3"  # the Lambda Python base image's interpreter
FARGATE_EPHEMERAL_GIB = 200


@dataclass
class JobParts:
    """What the template gains for container and serverless Spark stages."""

    parameters: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    substitutions: dict[str, Any] = field(default_factory=dict)
    statements: list[dict[str, Any]] = field(default_factory=list)


def container_sizes(plan: Plan) -> list[int]:
    return sorted({task.memory_mb for task in plan.tasks if task.placement == CONTAINER})


def uses_serverless_spark(plan: Plan) -> bool:
    return any(task.placement == SERVERLESS_SPARK for task in plan.tasks)


def job_parts(plan: Plan, stage_policy: dict[str, Any], environment: dict[str, Any], log_group: Any) -> JobParts:
    """Parameters, resources, substitutions and state machine permissions for ``plan``'s job stages.

    Args:
        stage_policy: the policy document of the stage functions (the jobs may touch the same).
        environment: the stage functions' environment variables (the containers get the same).
        log_group: the stages' log group (``Ref``).
    """
    parts = JobParts()
    sizes = container_sizes(plan)
    if sizes:
        _containers(plan, sizes, stage_policy, environment, log_group, parts)
    if uses_serverless_spark(plan):
        _serverless_spark(plan, stage_policy, parts)
    return parts


def _role(service: str, description: str, policy: dict[str, Any] | None, managed: list[Any] | None = None) -> Any:
    properties: dict[str, Any] = {
        "Description": description,
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        },
    }
    if policy is not None:
        properties["Policies"] = [{"PolicyName": "stages", "PolicyDocument": policy}]
    if managed:
        properties["ManagedPolicyArns"] = managed
    return {"Type": "AWS::IAM::Role", "Properties": properties}


def _containers(
    plan: Plan,
    sizes: list[int],
    stage_policy: dict[str, Any],
    environment: dict[str, Any],
    log_group: Any,
    parts: JobParts,
) -> None:
    parts.parameters |= {
        "ContainerSubnets": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Subnets the container stages run in (private, with a route to S3 and ECR).",
        },
        "ContainerSecurityGroups": {
            "Type": "List<AWS::EC2::SecurityGroup::Id>",
            "Description": "Security groups of the container stages (outbound HTTPS is all they need).",
        },
    }
    pipeline = plan.pipeline
    parts.resources["ContainerCluster"] = {
        "Type": "AWS::ECS::Cluster",
        "Properties": {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]},
    }
    parts.resources["ContainerExecutionRole"] = _role(
        "ecs-tasks.amazonaws.com",
        f"sparkflow pipeline {pipeline}: pull the stage image and write the container stages' logs.",
        None,
        [{"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"}],
    )
    parts.resources["ContainerTaskRole"] = _role(
        "ecs-tasks.amazonaws.com", f"sparkflow pipeline {pipeline}: what its container stages may touch.", stage_policy
    )
    containers = limits.CONTAINER
    definitions = []
    for memory in sizes:
        cpus, _ = containers.size_for(memory)
        key = container_key(memory)
        definitions.append({"Ref": key})
        parts.resources[key] = {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": {"Fn::Sub": f"${{AWS::StackName}}-{memory}mb"},
                "Cpu": str(cpus * 1024),
                "Memory": str(memory),
                "NetworkMode": "awsvpc",
                "RequiresCompatibilities": ["FARGATE"],
                "RuntimePlatform": {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"},
                "EphemeralStorage": {"SizeInGiB": FARGATE_EPHEMERAL_GIB},
                "ExecutionRoleArn": {"Fn::GetAtt": ["ContainerExecutionRole", "Arn"]},
                "TaskRoleArn": {"Fn::GetAtt": ["ContainerTaskRole", "Arn"]},
                "ContainerDefinitions": [
                    {
                        "Name": CONTAINER_NAME,
                        "Image": {"Ref": "ImageUri"},
                        "Essential": True,
                        # The Lambda image's entry point is Lambda's; here the runtime reads SPARKFLOW_EVENT.
                        "EntryPoint": [PYTHON_IN_IMAGE, "-m", "sparkflow.runtime"],
                        "Environment": [
                            {"Name": name, "Value": value}
                            for name, value in {**environment, "SPARKFLOW_WORKDIR": "/tmp", "HOME": "/tmp"}.items()
                        ],
                        "LogConfiguration": {
                            "LogDriver": "awslogs",
                            "Options": {
                                "awslogs-group": log_group,
                                "awslogs-region": {"Ref": "AWS::Region"},
                                "awslogs-stream-prefix": "container",
                            },
                        },
                    }
                ],
            },
        }
        parts.substitutions[key] = {"Ref": key}
    parts.substitutions |= {
        "ContainerCluster": {"Fn::GetAtt": ["ContainerCluster", "Arn"]},
        "ContainerSubnets": {"Fn::Join": [",", {"Ref": "ContainerSubnets"}]},
        "ContainerSecurityGroups": {"Fn::Join": [",", {"Ref": "ContainerSecurityGroups"}]},
    }
    events = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
    parts.statements += [
        {"Sid": "RunContainerStages", "Effect": "Allow", "Action": ["ecs:RunTask"], "Resource": definitions},
        {
            "Sid": "WatchContainerStages",
            "Effect": "Allow",
            "Action": ["ecs:DescribeTasks", "ecs:StopTask"],
            "Resource": "*",
            "Condition": {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["ContainerCluster", "Arn"]}}},
        },
        {
            "Sid": "PassContainerRoles",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [
                {"Fn::GetAtt": ["ContainerExecutionRole", "Arn"]},
                {"Fn::GetAtt": ["ContainerTaskRole", "Arn"]},
            ],
        },
        {
            "Sid": "ContainerSyncRule",
            "Effect": "Allow",
            "Action": ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            "Resource": [{"Fn::Sub": f"{events}StepFunctionsGetEventsForECSTaskRule"}],
        },
    ]


def _serverless_spark(plan: Plan, stage_policy: dict[str, Any], parts: JobParts) -> None:
    parts.parameters |= {
        "EmrImageUri": {
            "Type": "String",
            "Description": "The EMR Serverless custom image built from this folder's emr/Dockerfile, in ECR.",
            "MinLength": 1,
        },
        "EmrEntryPoint": {
            "Type": "String",
            "Description": "Where this folder's emr/entry.py is uploaded (s3://bucket/key).",
            "AllowedPattern": "^s3://.+",
        },
    }
    pipeline = plan.pipeline
    parts.resources["EmrApplication"] = {
        "Type": "AWS::EMRServerless::Application",
        "Properties": {
            "Name": {"Fn::Sub": "${AWS::StackName}-spark"},
            "ReleaseLabel": EMR_RELEASE,
            "Type": "SPARK",
            "ImageConfiguration": {"ImageUri": {"Ref": "EmrImageUri"}},
            "AutoStartConfiguration": {"Enabled": True},
            "AutoStopConfiguration": {"Enabled": True, "IdleTimeoutMinutes": 15},
        },
    }
    parts.resources["EmrJobRole"] = _role(
        "emr-serverless.amazonaws.com",
        f"sparkflow pipeline {pipeline}: what its serverless Spark stages may touch.",
        stage_policy,
    )
    storage_root = "s3://${StorageBucket}/${StoragePrefix}/"
    parts.substitutions |= {
        "EmrApplicationId": {"Ref": "EmrApplication"},
        "EmrJobRoleArn": {"Fn::GetAtt": ["EmrJobRole", "Arn"]},
        "EmrEntryPoint": {"Ref": "EmrEntryPoint"},
        # The driver's environment: the storage root (the image sets the pipeline).
        "EmrSparkSubmitParameters": {
            "Fn::Sub": f"--conf spark.emr-serverless.driverEnv.SPARKFLOW_STORAGE_ROOT={storage_root}"
        },
    }
    application = {"Fn::GetAtt": ["EmrApplication", "Arn"]}
    events = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
    parts.statements += [
        {
            "Sid": "RunSparkStages",
            "Effect": "Allow",
            "Action": ["emr-serverless:StartJobRun"],
            "Resource": [application],
        },
        {
            "Sid": "WatchSparkStages",
            "Effect": "Allow",
            "Action": ["emr-serverless:GetJobRun", "emr-serverless:CancelJobRun"],
            "Resource": [{"Fn::Join": ["", [application, "/jobruns/*"]]}],
        },
        {
            "Sid": "PassSparkRole",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [{"Fn::GetAtt": ["EmrJobRole", "Arn"]}],
        },
        {
            "Sid": "SparkSyncRule",
            "Effect": "Allow",
            "Action": ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            "Resource": [{"Fn::Sub": f"{events}StepFunctionsGetEventsForEMRServerlessJobRule"}],
        },
    ]
