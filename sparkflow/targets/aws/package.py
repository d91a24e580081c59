"""Build context for AWS: a Lambda container image (Dockerfile) and a CloudFormation template.

``package(pipeline, plan, definition_text, out_dir)`` writes into ``out_dir``:

* ``Dockerfile`` (from ``templates/Dockerfile.j2``): the AWS Lambda Python 3.11 base image, Amazon Corretto 17
  headless, sparkflow's runtime dependencies pinned as sparkflow's own metadata pins them (pyspark included),
  sparkflow itself (``sparkflow/``) and the user's project (``project/``), the pipeline the image serves
  (``SPARKFLOW_PIPELINE``) and the runtime handler as ``CMD``; ``SPARK_HOME`` made by :func:`install_spark_home`
  (Spark's launch without ``/dev/fd``) and a class-data-sharing archive made by :func:`train_cds_archive`;
* ``requirements.txt``: those pinned dependencies;
* ``template.yaml``: the state machine (the checked-in definition, account values through
  ``DefinitionSubstitutions``), one Lambda function per distinct stage memory size (the definition's
  ``${StageFunction<N>MB}`` placeholders), least-privilege roles, log groups, X-Ray tracing.

Spark ships as an image, not a zip: pyspark alone is over Lambda's 250 MB unzipped limit for zips. A pipeline on
the duckdb engine can ship as a plain .zip instead (:mod:`sparkflow.targets.aws.lambda_zip`); :func:`template`
then describes zip functions (``zip_code``).

The IAM statements are built here once, from resource ARNs given as values, and used both by the template
(ARNs as CloudFormation intrinsics) and by :mod:`sparkflow.targets.aws.deploy` (ARNs as strings).

>>> package(pipeline, plan, definition_text, "build/aws")  # doctest: +SKIP
['build/aws/Dockerfile', ..., 'build/aws/template.yaml']
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import SparkflowError
from sparkflow.layout import with_slash
from sparkflow.plan import Plan, PlanTask
from sparkflow.targets.aws.jobs import EMR_RELEASE, job_parts, uses_serverless_spark
from sparkflow.targets.templating import render

BASE_IMAGE = "public.ecr.aws/lambda/python:3.11"
# The python3.11 base image is Amazon Linux 2: its package manager is yum, and Corretto 17 is in its repository.
JAVA_INSTALL = "yum install -y java-17-amazon-corretto-headless && yum clean all && rm -rf /var/cache/yum"
HANDLER = "sparkflow.runtime.aws.handler"
ZIP_FILE = "function.zip"  # the .zip deployment of the duckdb engine (sparkflow.targets.aws.lambda_zip)
TASK_ROOT = "/var/task"
PROJECT_DIR = "project"
# The compiled Plan, shipped beside the project's code; the runtime finds it through SPARKFLOW_PLAN.
PLAN_FILE = "sparkflow-plan.json"
# Inputs are fetched to local disk before Spark reads them: give the functions all the /tmp Lambda allows
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-ephemeral-storage.html); it costs little.
EPHEMERAL_STORAGE_MB = 10240
LOG_RETENTION_DAYS = 30
STORAGE_ROOT = "StorageRoot"
KV_TABLE_KEY = "key"

# Step Functions' log delivery and X-Ray actions support no resource-level permissions: AWS requires "*"
# (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html, .../xray-iam.html).
LOG_DELIVERY_ACTIONS = [
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
]
XRAY_ACTIONS = [
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
]

_EXCLUDED_DIRS = {"__pycache__", "node_modules", "build", "dist", "site-packages"}
_S3 = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^$]*)$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class PackageError(SparkflowError, ValueError):
    """The pipeline cannot be packaged or deployed as asked (a location, a KV store, a definition)."""


@dataclass(frozen=True)
class ZipCode:
    """The functions' code as a Lambda .zip deployment (:mod:`sparkflow.targets.aws.lambda_zip`), not an image.

    Attributes:
        runtime: the Lambda runtime, e.g. ``python3.12``.
        key: the default S3 key of the uploaded zip (the ``CodeKey`` parameter).
        pipeline_spec: ``SPARKFLOW_PIPELINE`` (in an image it is the Dockerfile's).
        plan_path: ``SPARKFLOW_PLAN``, where the zip holds the Plan.
    """

    runtime: str
    key: str
    pipeline_spec: str
    plan_path: str


@dataclass(frozen=True)
class S3Location:
    """An S3 location: a folder when ``key`` is empty or ends with ``/``, else one object."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3(uri: str, what: str) -> S3Location:
    """``s3://bucket/key`` as a location; ``what`` names it in the error."""
    match = _S3.match(uri)
    if not match:
        raise PackageError(
            f"{what} {uri!r} is not an S3 location: write s3://bucket/prefix/ (a lowercase bucket name, no '$')"
        )
    return S3Location(match["bucket"], match["key"])


def storage_location(root: str) -> S3Location:
    """The storage root as bucket + prefix; the prefix may not be empty (the functions' grant is that prefix)."""
    location = parse_s3(with_slash(root), "storage root")
    if not location.key.strip("/"):
        raise PackageError(
            f"storage root {root!r} has no prefix: use a folder of the bucket, e.g. s3://{location.bucket}/sparkflow/"
        )
    return S3Location(location.bucket, location.key.strip("/"))


def function_groups(plan: Plan) -> dict[int, list[PlanTask]]:
    """Stages on functions by memory size (one Lambda function each), smallest first; placeholder order of the
    definition. The run's publish task runs on one of them (or on a function of its own when every stage runs
    on a container). (Container and serverless Spark stages: :mod:`sparkflow.targets.aws.jobs`.)"""
    groups: dict[int, list[PlanTask]] = {}
    for task in plan.tasks:
        if task.placement == "function":
            groups.setdefault(task.memory_mb, []).append(task)
    groups.setdefault(plan.publish.memory_mb, [])
    return dict(sorted(groups.items()))


def function_key(memory_mb: int) -> str:
    """The placeholder name (and the template's logical id) of the function for ``memory_mb``."""
    return f"StageFunction{memory_mb}MB"


def function_timeout(plan: Plan, memory_mb: int) -> int:
    """The longest the function of ``memory_mb`` may run: the longest of what runs on it."""
    timeouts = [task.timeout_s for task in function_groups(plan)[memory_mb]]
    if plan.publish.memory_mb == memory_mb:
        timeouts.append(plan.publish.timeout_s)
    return max(timeouts)


def function_description(plan: Plan, memory_mb: int) -> str:
    """What the function of ``memory_mb`` runs, for the console."""
    runs = [task.id for task in function_groups(plan)[memory_mb]]
    if plan.publish.memory_mb == memory_mb:
        runs.append("publishing")
    return f"sparkflow pipeline {plan.pipeline}: {', '.join(runs)} ({memory_mb} MB)"


def has_values(plan: Plan) -> bool:
    return any(task.output == "value" for task in plan.tasks)


def declared_table(plan: Plan) -> str | None:
    """The DynamoDB table the pipeline declares with ``kv=``, None when it declares none.

    Raises:
        PackageError: the pipeline has value stages and a KV store Lambda functions cannot share.
    """
    if not has_values(plan) or plan.kv is None:
        return None
    scheme, _, table = plan.kv.partition("://")
    if scheme != "dynamodb" or not table:
        raise PackageError(
            f"pipeline {plan.pipeline!r} has value stages and kv={plan.kv!r}, which Lambda functions cannot share: "
            "declare kv='dynamodb://table-name' or leave kv unset to get a table with the stack"
        )
    return table


def read_locations(plan: Plan, inputs: Mapping[str, str] | None = None) -> list[S3Location]:
    """Where the functions may read sources: every S3 source location, ``inputs`` (name -> URI) replacing the
    declared ones. Local sources (e.g. ``data/books/``) give no grant: pass their S3 location in ``inputs``, or
    upload them under the storage prefix, which the functions may always read."""
    inputs = dict(inputs or {})
    unknown = sorted(set(inputs) - {source.name for source in plan.sources})
    if unknown:
        known = ", ".join(source.name for source in plan.sources)
        raise PackageError(f"no source named {', '.join(unknown)} in pipeline {plan.pipeline!r} (sources: {known})")
    locations: list[S3Location] = []
    for source in plan.sources:
        uri = inputs.get(source.name, source.uri)
        if source.name in inputs or uri.startswith("s3://"):
            location = parse_s3(uri, f"source {source.name!r}")
            if location not in locations:
                locations.append(location)
    return locations


def sink_locations(plan: Plan, storage: S3Location) -> list[S3Location]:
    """Where the functions publish: every sink's S3 folder (a relative one lies under the storage prefix).

    Raises:
        PackageError: a sink at a local path, or on another store: a deployed pipeline publishes to S3.
    """
    locations: list[S3Location] = []
    for sink in plan.sinks:
        if sink.uri.startswith("s3://"):
            location = parse_s3(with_slash(sink.uri), f"sink {sink.name!r}")
        elif "://" not in sink.uri and not sink.uri.startswith("/"):
            location = S3Location(storage.bucket, f"{storage.key}/{sink.uri.strip('/')}/")
        else:
            raise PackageError(
                f"sink {sink.name!r} ({sink.origin}) is at {sink.uri!r}: a pipeline deployed to AWS publishes to S3; "
                "declare an s3:// location, or a path relative to the storage root"
            )
        if location not in locations:
            locations.append(location)
    return locations


# ---- IAM statements, shared by the template and deploy ---------------------------------------------------

Sub = Callable[[str], Any]


@dataclass(frozen=True)
class MapRuns:
    """What a definition with Distributed Map states needs its state machine to do besides invoking functions.

    Attributes:
        state_machine_arn: its own ARN (a Distributed Map starts child executions of its state machine).
        executions_arn: the ARN pattern of those child executions (``...:execution:NAME/*``).
        storage_objects_arn: the storage prefix's objects (ItemReader reads the chunk lists there, ResultWriter
            writes the map results there).
    """

    state_machine_arn: Any
    executions_arn: Any
    storage_objects_arn: Any


def uses_distributed_map(definition_text: str) -> bool:
    """Whether the definition has a Map state in DISTRIBUTED mode (anywhere, branches included)."""

    def visit(value: Any) -> bool:
        if isinstance(value, dict):
            config = value.get("ProcessorConfig")
            if isinstance(config, dict) and config.get("Mode") == "DISTRIBUTED":
                return True
            return any(visit(item) for item in value.values())
        if isinstance(value, list):
            return any(visit(item) for item in value)
        return False

    return visit(json.loads(definition_text))


def state_machine_statements(function_arns: list[Any], map_runs: MapRuns | None = None) -> list[dict[str, Any]]:
    """The state machine may invoke exactly these functions, deliver its logs, send traces and, with Distributed
    Map states, run its own child executions and read and write their item and result files in the storage prefix
    (https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "InvokeStageFunctions",
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": function_arns,
        },
    ]
    if map_runs is not None:
        statements += [
            {
                "Sid": "StartMapRuns",
                "Effect": "Allow",
                "Action": ["states:StartExecution"],
                "Resource": [map_runs.state_machine_arn],
            },
            {
                "Sid": "ManageMapRuns",
                "Effect": "Allow",
                "Action": ["states:DescribeExecution", "states:StopExecution"],
                "Resource": [map_runs.executions_arn],
            },
            {
                "Sid": "MapItemsAndResults",
                "Effect": "Allow",
                "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"],
                "Resource": [map_runs.storage_objects_arn],
            },
        ]
    statements += [
        {"Sid": "DeliverExecutionLogs", "Effect": "Allow", "Action": LOG_DELIVERY_ACTIONS, "Resource": "*"},
        {"Sid": "SendTraces", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": "*"},
    ]
    return statements


def stage_statements(
    sub: Sub,
    storage: S3Location,
    reads: list[S3Location],
    table_arn: Any | None,
    log_group_arn: Any,
    writes: list[S3Location] | None = None,
) -> list[dict[str, Any]]:
    """The functions may read and write the storage prefix, read the sources, publish to the sinks (read, write and,
    to replace a Parquet folder, delete under each), use the KV table, write logs.

    Args:
        sub: turns a string with ``${AWS::Partition}`` (and, in templates, ``${Parameter}``) into a value.
        storage: bucket and prefix (no trailing ``/``) of the storage root.
        reads: source locations.
        table_arn: the KV table, when the pipeline has value stages.
        writes: sink folders (see :func:`sink_locations`).
        log_group_arn: the functions' log group (its ``:*`` form covers its streams).
    """
    s3 = "arn:${AWS::Partition}:s3:::"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadWriteStorage",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [sub(f"{s3}{storage.bucket}/{storage.key}/*")],
        },
        {
            "Sid": "ListStorage",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [sub(f"{s3}{storage.bucket}")],
            "Condition": {"StringLike": {"s3:prefix": [sub(storage.key), sub(f"{storage.key}/*")]}},
        },
    ]
    for number, location in enumerate(reads, start=1):
        folder = not location.key or location.key.endswith("/")
        pattern = f"{location.key}*" if folder else location.key
        prefixes = [location.key.rstrip("/"), f"{location.key}*"] if folder else [location.key]
        statements.append(
            {
                "Sid": f"ReadSource{number}",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [sub(f"{s3}{location.bucket}/{pattern}")],
            }
        )
        statements.append(
            {
                "Sid": f"ListSource{number}",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [sub(f"{s3}{location.bucket}")],
                "Condition": {"StringLike": {"s3:prefix": [prefix for prefix in prefixes if prefix]}},
            }
        )
    for number, location in enumerate(writes or (), start=1):
        statements.append(
            {
                "Sid": f"PublishSink{number}",
                "Effect": "Allow",
                "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                "Resource": [sub(f"{s3}{location.bucket}/{location.key}*")],
            }
        )
        statements.append(
            {
                "Sid": f"ListSink{number}",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [sub(f"{s3}{location.bucket}")],
                "Condition": {"StringLike": {"s3:prefix": [sub(location.key.rstrip("/")), sub(f"{location.key}*")]}},
            }
        )
    if table_arn is not None:
        statements.append(
            {
                "Sid": "UseValuesTable",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                "Resource": [table_arn],
            }
        )
    statements.append(
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group_arn],
        }
    )
    return statements


def assume_role_policy(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def check_placeholders(plan: Plan, definition_text: str, also: Iterable[str] = ()) -> None:
    """Every ``${Name}`` of the definition is one sparkflow fills (``also``: those of its job stages); else the
    definition is not this plan's."""
    known = {STORAGE_ROOT, *(function_key(memory) for memory in function_groups(plan)), *also}
    unknown = sorted(set(_PLACEHOLDER.findall(definition_text)) - known)
    if unknown:
        raise PackageError(
            f"the definition of {plan.pipeline!r} has placeholders sparkflow does not fill ({', '.join(unknown)}): "
            "it is stale or not this pipeline's; run `sparkflow compile` and package again"
        )


# ---- the CloudFormation template -------------------------------------------------------------------------


def _fn_sub(text: str) -> Any:
    return {"Fn::Sub": text} if "${" in text else text


def _get_att(logical_id: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def template(
    plan: Plan, definition_text: str, *, inputs: Mapping[str, str] | None = None, zip_code: ZipCode | None = None
) -> dict[str, Any]:
    """The CloudFormation template of ``plan`` as a plain dict (intrinsics in their long form).

    The functions run the stage image (``ImageUri``), or with ``zip_code`` a .zip deployment in S3
    (``CodeBucket``, ``CodeKey``) with the duckdb engine.
    """
    groups = function_groups(plan)
    reads = read_locations(plan, inputs)
    parameters: dict[str, Any] = {}
    if zip_code is None:
        parameters["ImageUri"] = {
            "Type": "String",
            "Description": "The stage image built from this folder's Dockerfile, in ECR (repository:tag or @digest).",
            "MinLength": 1,
        }
    else:
        parameters["CodeBucket"] = {
            "Type": "String",
            "Description": f"The bucket {ZIP_FILE} of this folder is uploaded to (in the stack's region).",
            "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        }
        parameters["CodeKey"] = {
            "Type": "String",
            "Description": f"The key of the uploaded {ZIP_FILE} (the default names it by its digest).",
            "Default": zip_code.key,
            "MinLength": 1,
        }
    parameters |= {
        "StorageBucket": {
            "Type": "String",
            "Description": "The bucket of the storage root every run writes under.",
            "AllowedPattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        },
        "StoragePrefix": {
            "Type": "String",
            "Description": "The folder of the storage root in the bucket, without leading or trailing '/'.",
            "AllowedPattern": "^[^/](.*[^/])?$",
        },
    }
    if plan.storage and plan.storage.startswith("s3://"):
        declared = storage_location(plan.storage)
        parameters["StorageBucket"]["Default"] = declared.bucket
        parameters["StoragePrefix"]["Default"] = declared.key
    resources: dict[str, Any] = {}
    table = declared_table(plan)
    table_arn: Any | None = None
    kv_uri: Any | None = None
    if has_values(plan) and table is not None:
        parameters["KvTable"] = {
            "Type": "String",
            "Description": "The DynamoDB table of the pipeline's values (partition key 'key', a string).",
            "Default": table,
        }
        table_arn = {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${KvTable}"}
        kv_uri = {"Fn::Sub": "dynamodb://${KvTable}"}
    elif has_values(plan):
        resources["ValuesTable"] = {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": KV_TABLE_KEY, "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": KV_TABLE_KEY, "KeyType": "HASH"}],
            },
        }
        table_arn = _get_att("ValuesTable")
        kv_uri = {"Fn::Sub": "dynamodb://${ValuesTable}"}

    resources["StageLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": {"Fn::Sub": "/aws/lambda/${AWS::StackName}-stages"},
            "RetentionInDays": LOG_RETENTION_DAYS,
        },
    }
    storage = S3Location("${StorageBucket}", "${StoragePrefix}")
    resources["StageRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"sparkflow pipeline {plan.pipeline}: what its stage functions may touch.",
            "AssumeRolePolicyDocument": assume_role_policy("lambda.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "stages",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": stage_statements(
                            _fn_sub, storage, reads, table_arn, _get_att("StageLogGroup"), sink_locations(plan, storage)
                        ),
                    },
                }
            ],
        },
    }
    environment: dict[str, Any] = {
        "SPARKFLOW_STORAGE_ROOT": {"Fn::Sub": "s3://${StorageBucket}/${StoragePrefix}/"},
    }
    if kv_uri is not None:
        environment["SPARKFLOW_KV"] = kv_uri
    if reads:
        environment["SPARKFLOW_ALLOWED_INPUTS"] = ",".join(location.uri for location in reads)
    # Containers run the same image (whose Dockerfile sets the pipeline) with the same environment.
    jobs = job_parts(
        plan,
        copy.deepcopy(resources["StageRole"]["Properties"]["Policies"][0]["PolicyDocument"]),
        copy.deepcopy(environment),
        {"Ref": "StageLogGroup"},
    )
    check_placeholders(plan, definition_text, jobs.substitutions)
    parameters |= jobs.parameters
    resources |= jobs.resources
    code: dict[str, Any] = {"PackageType": "Image", "Code": {"ImageUri": {"Ref": "ImageUri"}}}
    if zip_code is not None:
        # What the image's Dockerfile sets, and the engine: a zip has no Spark.
        environment |= {
            "SPARKFLOW_ENGINE": "duckdb",
            "SPARKFLOW_PIPELINE": zip_code.pipeline_spec,
            "SPARKFLOW_PLAN": zip_code.plan_path,
            "SPARKFLOW_WORKDIR": "/tmp",
            "HOME": "/tmp",
        }
        code = {
            "PackageType": "Zip",
            "Runtime": zip_code.runtime,
            "Handler": HANDLER,
            "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
        }
    for memory in groups:
        resources[function_key(memory)] = {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Description": function_description(plan, memory),
                **code,
                "Architectures": ["x86_64"],
                "Role": _get_att("StageRole"),
                "MemorySize": memory,
                "Timeout": function_timeout(plan, memory),
                "EphemeralStorage": {"Size": EPHEMERAL_STORAGE_MB},
                "Environment": {"Variables": copy.deepcopy(environment)},
                "LoggingConfig": {"LogGroup": {"Ref": "StageLogGroup"}},
            },
        }
    resources["StateMachineLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            # Under /aws/vendedlogs/ so log delivery does not grow the account's logs resource policy per group.
            "LogGroupName": {"Fn::Sub": "/aws/vendedlogs/states/${AWS::StackName}"},
            "RetentionInDays": LOG_RETENTION_DAYS,
        },
    }
    function_arns = [_get_att(function_key(memory)) for memory in groups]
    map_runs = None
    if uses_distributed_map(definition_text):
        # Built from the stack name, not Ref StateMachine: the state machine depends on this role already.
        map_runs = MapRuns(
            {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}"},
            {"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}/*"},
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${StorageBucket}/${StoragePrefix}/*"},
        )
    resources["StateMachineRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"sparkflow pipeline {plan.pipeline}: what its state machine may call.",
            "AssumeRolePolicyDocument": assume_role_policy("states.amazonaws.com"),
            "Policies": [
                {
                    "PolicyName": "state-machine",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": state_machine_statements(function_arns, map_runs) + jobs.statements,
                    },
                }
            ],
        },
    }
    substitutions: dict[str, Any] = {STORAGE_ROOT: {"Fn::Sub": "s3://${StorageBucket}/${StoragePrefix}/"}}
    substitutions.update({function_key(memory): _get_att(function_key(memory)) for memory in groups})
    substitutions.update(jobs.substitutions)
    resources["StateMachine"] = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "StateMachineName": {"Ref": "AWS::StackName"},
            "StateMachineType": "STANDARD",
            "RoleArn": _get_att("StateMachineRole"),
            "DefinitionString": definition_text,
            "DefinitionSubstitutions": substitutions,
            "LoggingConfiguration": {
                "Level": "ERROR",
                "IncludeExecutionData": False,
                "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": _get_att("StateMachineLogGroup")}}],
            },
            "TracingConfiguration": {"Enabled": True},
        },
    }
    outputs: dict[str, Any] = {
        "StateMachineArn": {"Description": "Start runs here.", "Value": {"Ref": "StateMachine"}},
    }
    for memory in groups:
        outputs[f"{function_key(memory)}Arn"] = {"Value": _get_att(function_key(memory))}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            f"sparkflow pipeline {plan.pipeline} ({plan.source_file}): state machine, stage functions, roles, logs. "
            "Generated by `sparkflow package`."
        ),
        "Parameters": parameters,
        "Resources": resources,
        "Outputs": outputs,
    }


class _TemplateDumper(yaml.SafeDumper):
    """safe_dump's dumper, writing multi-line strings (the definition) as literal blocks people can read, and
    never anchors and aliases (CloudFormation rejects YAML aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TemplateDumper.add_representer(str, _represent_str)


def template_text(
    plan: Plan, definition_text: str, *, inputs: Mapping[str, str] | None = None, zip_code: ZipCode | None = None
) -> str:
    """The template as YAML text: the same plan and definition always give the same bytes."""
    document = template(plan, definition_text, inputs=inputs, zip_code=zip_code)
    return yaml.dump(document, Dumper=_TemplateDumper, sort_keys=False, allow_unicode=True, width=120)


# ---- the image -------------------------------------------------------------------------------------------


def runtime_requirements() -> list[str]:
    """sparkflow's own dependencies as its metadata pins them (no extras): what the image installs."""
    requirements = importlib.metadata.requires("sparkflow") or []
    return [requirement for requirement in requirements if ";" not in requirement]


def pyspark_version() -> str:
    for requirement in runtime_requirements():
        name, separator, version = requirement.partition("==")
        if name.strip().lower() == "pyspark" and separator:
            return version.strip()
    raise PackageError("sparkflow's metadata pins no pyspark version: reinstall sparkflow (pip install -e .)")


def project_root(pipeline: Pipeline, plan: Plan) -> Path:
    """The user's project: the folder ``plan.source_file`` is relative to (nearest pyproject.toml or .git)."""
    absolute = Path(pipeline.origin.file).resolve()
    relative = Path(plan.source_file)
    if absolute.parts[-len(relative.parts) :] == relative.parts:
        return Path(*absolute.parts[: -len(relative.parts)])
    return absolute.parent


def pipeline_spec(pipeline: Pipeline, plan: Plan, folder: str = f"{TASK_ROOT}/{PROJECT_DIR}") -> str:
    """What ``SPARKFLOW_PIPELINE`` says in the image (or, with ``folder`` the zip's root, in a zip function): the
    file, and the attribute when the file has several."""
    path = f"{folder}/{plan.source_file}"
    module = _module_of(pipeline)
    if module is None:
        return path
    found = [value for value in vars(module).values() if isinstance(value, Pipeline)]
    if len({id(value) for value in found}) <= 1:
        return path
    names = sorted(name for name, value in vars(module).items() if value is pipeline)
    if not names:
        raise PackageError(f"{plan.source_file}: pipeline {plan.pipeline!r} is not a module attribute")
    return f"{path}:{names[0]}"


def plan_path(folder: str = f"{TASK_ROOT}/{PROJECT_DIR}") -> str:
    """What ``SPARKFLOW_PLAN`` says in the image (or, with ``folder`` the zip's root, in a zip function)."""
    return f"{folder}/{PLAN_FILE}"


def write_plan(plan: Plan, folder: Path) -> str:
    """Write ``plan`` as shipped (:data:`PLAN_FILE`) into ``folder``; return its path."""
    path = folder / PLAN_FILE
    path.write_text(plan.to_json(), encoding="utf-8", newline="\n")
    return str(path)


def _module_of(pipeline: Pipeline) -> Any:
    target = os.path.realpath(pipeline.origin.file)
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.realpath(file) == target and any(v is pipeline for v in vars(module).values()):
            return module
    return None


SPARK_HOME_IN_IMAGE = "/opt/spark"
LAUNCHER_BIN = Path(__file__).resolve().parent / "templates" / "spark-home" / "bin"


def install_spark_home(folder: str | os.PathLike[str], pyspark_dir: str | os.PathLike[str] | None = None) -> Path:
    """Make ``folder`` a SPARK_HOME whose launch needs no ``/dev/fd``; return it.

    Spark's ``bin/spark-class`` reads the launch command through bash process substitution (``< <(...)``), which
    needs ``/dev/fd``: AWS Lambda has none, so PySpark's JVM would never start there. ``folder`` gets
    sparkflow's ``bin/spark-submit`` and ``bin/spark-class`` (the same steps, the command read from a temporary
    file instead) and links ``jars`` and ``python`` to pyspark's own. With ``SPARK_HOME=folder`` PySpark launches
    through it. The image runs this at build time; the tests start Spark through it here.
    """
    if pyspark_dir is None:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            raise PackageError("pyspark is not installed: install sparkflow's dependencies first")
        pyspark_dir = next(iter(spec.submodule_search_locations))
    home = Path(folder)
    (home / "bin").mkdir(parents=True, exist_ok=True)
    for script in sorted(LAUNCHER_BIN.iterdir()):
        target = home / "bin" / script.name
        shutil.copyfile(script, target)
        target.chmod(0o755)
    for name in ("jars", "python"):
        link = home / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(Path(pyspark_dir) / name, target_is_directory=True)
    return home


CDS_ARCHIVE_IN_IMAGE = f"{SPARK_HOME_IN_IMAGE}/spark.jsa"


def train_cds_archive(archive: str | os.PathLike[str]) -> Path:
    """Write a JDK class-data-sharing archive of Spark's start-up and a small stage to ``archive``; return it.

    Starts the runtime's own SparkSession (same classpath and JVM options as a stage) with
    ``-XX:ArchiveClassesAtExit`` in ``SPARK_SUBMIT_OPTS`` (the driver JVM's options; ``JAVA_TOOL_OPTIONS``
    would also hit the short launcher JVM, whose classpath differs), reads CSV, JSON lines and text, groups,
    writes and reads Parquet, then stops Spark and closes the JVM's stdin so that the JVM exits normally: the
    archive is written only then. Run it in a fresh process (the image build does): the options apply when the
    session starts. Stages use it with ``-XX:SharedArchiveFile=archive`` (``SPARK_SUBMIT_OPTS`` in the image).

    Raises:
        PackageError: the JVM did not write the archive.
    """
    import tempfile

    target = Path(archive).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Classes of signed jars cannot be archived: the JVM warns once per class; only errors are worth showing.
    os.environ["SPARK_SUBMIT_OPTS"] = f"-XX:ArchiveClassesAtExit={target} -Xlog:cds*=error"
    from sparkflow.runtime import spark as engine

    session = engine.session(2048)
    with tempfile.TemporaryDirectory(prefix="sparkflow-cds-") as scratch:
        folder = Path(scratch)
        (folder / "rows.csv").write_text(
            "key,value\n" + "".join(f"k{i % 7},{i}\n" for i in range(2000)), encoding="utf-8"
        )
        (folder / "rows.jsonl").write_text("".join(f'{{"key": "k{i % 5}", "value": {i}}}\n' for i in range(500)))
        rows = session.read.csv(str(folder / "rows.csv"), header=True, inferSchema=True)
        more = session.read.json(str(folder / "rows.jsonl"))
        lines = session.read.text(str(folder / "rows.csv"))
        joined = rows.unionByName(more).groupBy("key").count().crossJoin(lines.selectExpr("count(*) AS lines"))
        joined.write.parquet(str(folder / "out"))
        session.read.parquet(str(folder / "out")).orderBy("key").collect()
    process = session.sparkContext._gateway.proc
    session.stop()
    process.stdin.close()  # PySpark's JVM exits when its stdin closes: a normal exit writes the archive
    process.wait(timeout=300)
    if not target.is_file():
        raise PackageError(f"the JVM wrote no class-data-sharing archive at {target}: see its output above")
    return target


def dockerfile_text(pipeline: Pipeline, plan: Plan, *, project_requirements: str | None = None) -> str:
    return render(
        __file__,
        "Dockerfile.j2",
        pipeline=plan.pipeline,
        source_file=plan.source_file,
        base_image=BASE_IMAGE,
        java_install=JAVA_INSTALL,
        pyspark_version=pyspark_version(),
        task_root=TASK_ROOT,
        project_dir=PROJECT_DIR,
        project_requirements=project_requirements,
        pipeline_spec=pipeline_spec(pipeline, plan),
        plan_path=plan_path(),
        handler=HANDLER,
        spark_home=SPARK_HOME_IN_IMAGE,
        cds_archive=CDS_ARCHIVE_IN_IMAGE,
    )


def package(
    pipeline: Pipeline,
    plan: Plan,
    definition_text: str,
    out_dir: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str] | None = None,
) -> list[str]:
    """Write the build context of ``pipeline`` into ``out_dir``; return the paths written, sorted.

    Args:
        pipeline: the pipeline (its file locates the project copied into the image).
        plan: its Plan for the aws target.
        definition_text: its compiled ASL (the checked-in ``.asl.json``), embedded in the template as it is.
        out_dir: the build context folder; its ``project/`` and ``sparkflow/`` folders are replaced.
        inputs: source name -> S3 location the functions will read it from, when not the declared one.

    Raises:
        PackageError: a location or KV store that cannot work on AWS, or a definition that is not this plan's.
    """
    out = Path(out_dir)
    template_yaml = template_text(plan, definition_text, inputs=inputs)  # validates before anything is written
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    root = project_root(pipeline, plan)
    written += copy_tree(root, out / PROJECT_DIR, skip=out.resolve())
    written.append(write_plan(plan, out / PROJECT_DIR))
    written += copy_tree(Path(__file__).resolve().parents[2], out / "sparkflow", skip=out.resolve())
    requirements = "requirements.txt" if (root / "requirements.txt").is_file() else None
    files = {
        "Dockerfile": dockerfile_text(pipeline, plan, project_requirements=requirements),
        "requirements.txt": "".join(f"{line}\n" for line in runtime_requirements()),
        "template.yaml": template_yaml,
        ".dockerignore": "**/__pycache__\n**/*.pyc\n",
    }
    if uses_serverless_spark(plan):  # the EMR Serverless image and the job runs' entry point
        (out / "emr").mkdir(exist_ok=True)
        values = {
            "pipeline": plan.pipeline,
            "source_file": plan.source_file,
            "release": EMR_RELEASE,
            "app_root": "/app",
            "project_dir": PROJECT_DIR,
            "project_requirements": requirements,
            "pipeline_spec": pipeline_spec(pipeline, plan, "/app/project"),
            "plan_path": plan_path("/app/project"),
        }
        files["emr/Dockerfile"] = render(__file__, "Dockerfile.emr.j2", **values)
        files["emr/entry.py"] = render(__file__, "entry.py.j2", **values)
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(str(path))
    return sorted(written)


def copy_tree(source: Path, target: Path, *, skip: Path) -> list[str]:
    """Copy the sources of a project (no hidden folders, caches, virtual environments or build output)."""
    if target.exists():
        shutil.rmtree(target)
    written: list[str] = []
    for relative, path in tree_files(source, skip=skip):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        written.append(str(destination))
    return written


def tree_files(source: Path, *, skip: Path, also: Path | None = None) -> Iterator[tuple[str, Path]]:
    """(POSIX path relative to ``source``, file) of a project's sources, sorted: no hidden folders, caches, virtual
    environments or build output, nothing under ``skip`` or ``also``."""
    left_out = {skip, also}
    for folder, dirs, names in os.walk(source):
        here = Path(folder)
        dirs[:] = sorted(
            name
            for name in dirs
            if not name.startswith(".")
            and name not in _EXCLUDED_DIRS
            and not name.endswith(".egg-info")
            and not (here / name / "pyvenv.cfg").exists()
            and (here / name).resolve() not in left_out
        )
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                continue
            yield (here / name).relative_to(source).as_posix(), here / name


__all__ = ["PackageError", "dockerfile_text", "package", "template", "template_text"]
