"""The CloudFormation template of a pipeline: its state machine (the checked-in definition, account values through
``DefinitionSubstitutions``), one Lambda function per distinct stage memory size (the definition's
``${StageFunction<N>MB}`` placeholders) running the stage image or, for an engine that ships as one (duckdb), a
.zip (:mod:`sparkflow.targets.aws.lambda_zip`), the container and serverless Spark stages' parts
(:mod:`sparkflow.targets.aws.jobs`), least-privilege roles, log groups and X-Ray tracing."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from sparkflow import engines
from sparkflow.plan import Plan
from sparkflow.runtime.protocol import PIPELINE_VARIABLE, PLAN_VARIABLE, WORKDIR_VARIABLE
from sparkflow.shipping.environment import function_environment
from sparkflow.targets.aws.iam import (
    MapRuns,
    assume_role_policy,
    stage_statements,
    state_machine_statements,
    uses_distributed_map,
)
from sparkflow.targets.aws.jobs import job_parts
from sparkflow.targets.aws.locations import S3Location, read_locations, sink_locations, storage_location
from sparkflow.targets.aws.schedule import SCHEDULE, schedule_resources
from sparkflow.targets.aws.stack import (
    EPHEMERAL_STORAGE_MB,
    HANDLER,
    KV_TABLE_KEY,
    LOG_RETENTION_DAYS,
    STORAGE_ROOT,
    ZIP_FILE,
    check_placeholders,
    declared_table,
    function_description,
    function_groups,
    function_key,
    function_timeout,
    has_values,
    stage_log_group,
)
from sparkflow.targets.aws.trigger import TRIGGER, trigger_resources


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


def _fn_sub(text: str) -> Any:
    return {"Fn::Sub": text} if "${" in text else text


def _get_att(logical_id: str, attribute: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def template(
    plan: Plan,
    definition_text: str,
    *,
    engine: str = engines.DEFAULT,
    inputs: Mapping[str, str] | None = None,
    zip_code: ZipCode | None = None,
) -> dict[str, Any]:
    """The CloudFormation template of ``plan`` as a plain dict (intrinsics in their long form).

    The functions run the stage image (``ImageUri``), or with ``zip_code`` a .zip deployment in S3
    (``CodeBucket``, ``CodeKey``), on ``engine`` (``SPARKFLOW_ENGINE`` when its process must be prepared for it:
    :func:`~sparkflow.shipping.environment.engine_environment`).
    """
    groups = function_groups(plan)
    # First: a folder the trigger cannot watch is named at the trigger's line, before what else is wrong with it.
    trigger = (
        {}
        if plan.start_trigger is None
        else trigger_resources(plan, plan.start_trigger, "StateMachine", inputs or {}, plan.storage)
    )
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
        # The values of runs are data: deleting or replacing the stack keeps the table (`sparkflow delete`).
        resources["ValuesTable"] = {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
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
            "LogGroupName": {"Fn::Sub": stage_log_group("${AWS::StackName}")},
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
    environment = function_environment(
        {"Fn::Sub": "s3://${StorageBucket}/${StoragePrefix}/"}, kv_uri, [location.uri for location in reads], engine
    )
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
        # What the image's Dockerfile sets.
        environment |= {
            PIPELINE_VARIABLE: zip_code.pipeline_spec,
            PLAN_VARIABLE: zip_code.plan_path,
            WORKDIR_VARIABLE: "/tmp",
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
    if plan.start_schedule is not None:
        resources |= schedule_resources(plan.pipeline, plan.start_schedule, "StateMachine", inputs or {})
        outputs["ScheduleArn"] = {"Description": "Starts runs on the pipeline's schedule.", "Value": _get_att(SCHEDULE)}
    if trigger:
        resources |= trigger
        outputs["TriggerRuleArn"] = {"Description": "Starts runs on new objects.", "Value": _get_att(TRIGGER)}
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
    plan: Plan,
    definition_text: str,
    *,
    engine: str = engines.DEFAULT,
    inputs: Mapping[str, str] | None = None,
    zip_code: ZipCode | None = None,
) -> str:
    """The template as YAML text: the same plan and definition always give the same bytes."""
    document = template(plan, definition_text, engine=engine, inputs=inputs, zip_code=zip_code)
    return yaml.dump(document, Dumper=_TemplateDumper, sort_keys=False, allow_unicode=True, width=120)
