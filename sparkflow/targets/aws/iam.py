"""Least-privilege IAM statements of a pipeline's roles, built from resource ARNs given as values (the template passes
CloudFormation intrinsics)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparkflow.layout import WORK
from sparkflow.targets.aws.locations import S3Location

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
    """The functions may read and write the storage prefix (and delete the working files under it), read the sources,
    publish to the sinks (read, write and, to replace a Parquet folder, delete under each), use the KV table, write
    logs.

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
        {
            # The publish task deletes the run's working files; nothing else of the storage root is ever deleted.
            "Sid": "DeleteWork",
            "Effect": "Allow",
            "Action": ["s3:DeleteObject"],
            "Resource": [sub(f"{s3}{storage.bucket}/{storage.key}/{WORK}/*")],
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


def start_only_role(pipeline: str, service: str, what: str, state_machine: str) -> dict[str, Any]:
    """An ``AWS::IAM::Role`` that only ``service`` (e.g. ``scheduler.amazonaws.com``) acting for this account may
    assume (``aws:SourceAccount``: the confused deputy problem), and that may only start the state machine whose
    logical id is ``state_machine``; ``what`` names its user in the description."""
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"sparkflow pipeline {pipeline}: what its {what} may do (start a run, only).",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": service},
                        "Action": "sts:AssumeRole",
                        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                    }
                ],
            },
            "Policies": [
                {
                    "PolicyName": "start-runs",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": "states:StartExecution", "Resource": {"Ref": state_machine}}
                        ],
                    },
                }
            ],
        },
    }
