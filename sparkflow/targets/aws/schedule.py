"""The stack's EventBridge Scheduler schedule of a pipeline declared with ``schedule=``: it starts the state machine
as ``sparkflow start`` does (the same input: the deployed ``--input`` locations), through a role of its own that
may do nothing else.

(https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html,
https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html#setting-up-execution-role)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sparkflow.plan import StartSchedule
from sparkflow.targets.runs import run_input

SCHEDULE = "Schedule"
SCHEDULE_ROLE = "ScheduleRole"


def schedule_resources(
    pipeline: str, schedule: StartSchedule, state_machine: str, inputs: Mapping[str, str]
) -> dict[str, Any]:
    """The schedule and its role, starting the state machine whose logical id is ``state_machine``."""
    start = {"Effect": "Allow", "Action": "states:StartExecution", "Resource": {"Ref": state_machine}}
    return {
        SCHEDULE_ROLE: {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": f"sparkflow pipeline {pipeline}: what its schedule may do (start a run, only).",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "scheduler.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            # Only schedules of this account may act as the role (the confused deputy problem).
                            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": "start-runs",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [start],
                        },
                    }
                ],
            },
        },
        SCHEDULE: {
            "Type": "AWS::Scheduler::Schedule",
            "Properties": {
                "Description": f"sparkflow pipeline {pipeline}: starts a run on {schedule.expression} (UTC).",
                "ScheduleExpression": schedule.expression,
                "ScheduleExpressionTimezone": "UTC",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "State": "ENABLED",
                "Target": {
                    "Arn": {"Ref": state_machine},
                    "RoleArn": {"Fn::GetAtt": [SCHEDULE_ROLE, "Arn"]},
                    # Step Functions names the execution (a UUID), which becomes the run's id.
                    "Input": run_input(inputs),
                },
            },
        },
    }
