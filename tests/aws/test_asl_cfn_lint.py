"""AWS's own linter (cfn-lint) accepts the ASL of every example, and does report a broken definition."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint

from sparkflow.compiler import compile_pipeline
from sparkflow.loading import load_pipelines
from tests.aws_moto import placeholders
from tests.examples import EXAMPLES, example


def template(definition: dict[str, Any]) -> str:
    """A minimal CloudFormation template deploying ``definition``, its placeholders filled at deploy time."""
    substitutions = {
        name: "s3://bucket/sparkflow/" if name == "StorageRoot" else {"Fn::GetAtt": ["StageFunction", "Arn"]}
        for name in sorted(placeholders(json.dumps(definition)))
    }
    resources: dict[str, Any] = {
        "StageFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "PackageType": "Image",
                "Code": {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sparkflow:latest"},
                "Role": "arn:aws:iam::123456789012:role/sparkflow-stage",
                "MemorySize": 2048,
                "Timeout": 900,
            },
        },
        "StateMachine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "StateMachineType": "STANDARD",
                "RoleArn": "arn:aws:iam::123456789012:role/sparkflow-states",
                "Definition": definition,
                "DefinitionSubstitutions": substitutions,
            },
        },
    }
    return json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})


def problems(definition: dict[str, Any]) -> list[str]:
    return [str(match) for match in lint(template(definition))]


def example_definition(name: str) -> dict[str, Any]:
    [pipeline] = load_pipelines(str(example(name)))
    loaded: dict[str, Any] = json.loads(compile_pipeline(pipeline, "aws"))
    return loaded


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.parent.name)
def test_cfn_lint_accepts_every_example(path: Path) -> None:
    for pipeline in load_pipelines(str(path)):
        assert problems(json.loads(compile_pipeline(pipeline, "aws"))) == []


def test_cfn_lint_accepts_container_and_serverless_spark_stages() -> None:
    [pipeline] = load_pipelines(str(Path(__file__).resolve().parents[1] / "resources" / "placement.py"))
    definition = json.loads(compile_pipeline(pipeline, "aws"))
    resources = {state["Resource"] for state in _states(definition) if state["Type"] == "Task"}
    assert resources == {
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::ecs:runTask.sync",
        "arn:aws:states:::emr-serverless:startJobRun.sync",
    }
    assert problems(definition) == []


def _states(definition: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for state in definition["States"].values():
        found.append(state)
        for branch in state.get("Branches", ()):
            found += _states(branch)
    return found


def test_cfn_lint_reports_a_bad_state_type() -> None:
    broken = copy.deepcopy(example_definition("clickstream"))
    broken["States"]["clean-split"]["Type"] = "Tusk"
    found = problems(broken)
    assert any("E3601" in problem and "'Tusk' is not one of" in problem for problem in found), found


def test_cfn_lint_reports_a_start_pointing_nowhere() -> None:
    broken = copy.deepcopy(example_definition("clickstream"))
    broken["States"]["Parallel-1"]["Branches"][1]["StartAt"] = "nowhere"
    found = problems(broken)
    assert any("E3601" in problem and "'nowhere'" in problem for problem in found), found


def test_cfn_lint_reports_a_retry_without_errors() -> None:
    broken = copy.deepcopy(example_definition("wordcount"))
    del broken["States"]["counts-split"]["Retry"][0]["ErrorEquals"]
    found = problems(broken)
    assert any("E3601" in problem and "ErrorEquals" in problem for problem in found), found
