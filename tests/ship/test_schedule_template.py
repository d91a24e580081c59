"""A scheduled pipeline's AWS template: an EventBridge Scheduler schedule starts the state machine with the input
`sparkflow start` sends, through a role only EventBridge Scheduler of this account may assume and that may only
start this state machine; the template passes cfn-lint."""

from __future__ import annotations

import json

import yaml
from cfnlint.api import lint

from sparkflow.targets.aws.template import template_text
from tests.ship.conftest import compiled
from tests.ship.test_package import grants, key


def test_the_schedule_starts_the_state_machine_through_a_role_that_can_do_nothing_else() -> None:
    item = compiled("nightly")
    inputs = {"lines": "s3://data/lines/2026/"}
    text = template_text(item.plan, item.definition, inputs=inputs)
    assert [str(match) for match in lint(text)] == []
    document = yaml.safe_load(text)
    schedule = document["Resources"]["Schedule"]
    assert schedule["Type"] == "AWS::Scheduler::Schedule"
    properties = schedule["Properties"]
    assert properties["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert properties["ScheduleExpressionTimezone"] == "UTC" and properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = properties["Target"]
    assert target["Arn"] == {"Ref": "StateMachine"}
    assert target["RoleArn"] == {"Fn::GetAtt": ["ScheduleRole", "Arn"]}
    assert json.loads(target["Input"]) == {"sources": inputs}  # what `sparkflow start --input lines=...` sends
    role = document["Resources"]["ScheduleRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert grants(document, "ScheduleRole") == {("states:StartExecution", key({"Ref": "StateMachine"}), key(None))}
    assert document["Outputs"]["ScheduleArn"]["Value"] == {"Fn::GetAtt": ["Schedule", "Arn"]}

    without_inputs = yaml.safe_load(template_text(item.plan, item.definition))
    assert json.loads(without_inputs["Resources"]["Schedule"]["Properties"]["Target"]["Input"]) == {"sources": {}}


def test_an_unscheduled_pipeline_has_no_schedule() -> None:
    item = compiled("shouting")
    resources = yaml.safe_load(template_text(item.plan, item.definition))["Resources"]
    assert not {"Schedule", "ScheduleRole"} & set(resources)
    assert not [name for name, value in resources.items() if value["Type"] == "AWS::Scheduler::Schedule"]
