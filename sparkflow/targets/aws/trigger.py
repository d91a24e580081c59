"""The stack's EventBridge rule of a pipeline declared with ``trigger=sf.on_new_objects(source)``: each S3 ``Object
Created`` event of the watched bucket and key prefix starts the state machine with the run input ``sparkflow start
--input source=s3://<bucket>/<key>`` would send (an ``InputTransformer`` fills in the event's bucket and key), through
a role of its own that may do nothing else.

S3 sends these events only from a bucket whose EventBridge notifications are on; the bucket is the user's, so the
stack does not change it and ``deploy`` / ``package`` say how to switch them on.

(https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparkflow.plan import Plan, StartTrigger
from sparkflow.targets.aws.iam import start_only_role
from sparkflow.targets.runs import run_input
from sparkflow.triggers import WatchedFolder, deployed_folder

TRIGGER = "TriggerRule"
TRIGGER_ROLE = "TriggerRole"
# The event's fields the target input is built from (the event's shape: ev-events.html above).
EVENT_PATHS = {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"}


def watched(plan: Plan, trigger: StartTrigger, inputs: Mapping[str, str], storage_root: str | None) -> WatchedFolder:
    """The S3 folder the rule watches (raises PackageError at the trigger's line when it cannot)."""
    return deployed_folder(plan, trigger, inputs, "s3", storage_root)


def enable_events_hint(folder: WatchedFolder) -> str:
    """What to tell the user: S3 sends no event to EventBridge until the bucket says so."""
    return (
        f"the trigger starts a run for each new object under {folder.uri} once bucket {folder.bucket} sends its events "
        "to EventBridge: switch that on in the bucket's Properties (Amazon EventBridge: On), or with `aws s3api "
        f"put-bucket-notification-configuration --bucket {folder.bucket} --notification-configuration "
        "'{\"EventBridgeConfiguration\": {}}'` (that call replaces the bucket's notification configuration: add any "
        "notifications it already has)"
    )


def trigger_resources(
    plan: Plan, trigger: StartTrigger, state_machine: str, inputs: Mapping[str, str], storage_root: str | None = None
) -> dict[str, Any]:
    """The rule and its role, starting the state machine whose logical id is ``state_machine``."""
    folder = watched(plan, trigger, inputs, storage_root)
    detail: dict[str, Any] = {"bucket": {"name": [folder.bucket]}}
    if folder.prefix:
        detail["object"] = {"key": [{"prefix": folder.prefix}]}
    # The other sources are read where a started run reads them (deploy's --input); the new object replaces this one.
    template = run_input({**inputs, trigger.source: "s3://<bucket>/<key>"})
    return {
        TRIGGER_ROLE: start_only_role(plan.pipeline, "events.amazonaws.com", "trigger", state_machine),
        TRIGGER: {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Description": f"sparkflow pipeline {plan.pipeline}: starts a run for each new object under "
                f"{folder.uri}.",
                "State": "ENABLED",
                "EventPattern": {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail},
                "Targets": [
                    {
                        "Id": "start-run",
                        "Arn": {"Ref": state_machine},
                        "RoleArn": {"Fn::GetAtt": [TRIGGER_ROLE, "Arn"]},
                        # Step Functions names the execution (a UUID), which becomes the run's id.
                        "InputTransformer": {"InputPathsMap": dict(EVENT_PATHS), "InputTemplate": template},
                    }
                ],
            },
        },
    }
