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
from sparkflow.targets.aws.iam import start_only_role
from sparkflow.targets.runs import run_input

SCHEDULE = "Schedule"
SCHEDULE_ROLE = "ScheduleRole"


def schedule_resources(
    pipeline: str, schedule: StartSchedule, state_machine: str, inputs: Mapping[str, str]
) -> dict[str, Any]:
    """The schedule and its role, starting the state machine whose logical id is ``state_machine``."""
    return {
        SCHEDULE_ROLE: start_only_role(pipeline, "scheduler.amazonaws.com", "schedule", state_machine),
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
