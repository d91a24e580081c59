"""`package --target aws` for stages placed on a container (ECS Fargate) and on serverless Spark (EMR
Serverless): the template passes cfn-lint, fills every placeholder of the definition, sizes each task definition
as the stage was placed, grants the state machine exactly what the .sync integrations need, and the build context
holds the EMR image and entry point; `deploy` (functions only) refuses such a pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.targets.aws.package import package
from sparkflow.targets.aws.template import template_text
from tests.aws_moto import placeholders
from tests.ship.test_package import grants, key

PLACEMENT = Path(__file__).resolve().parents[1] / "resources" / "placement.py"


@pytest.fixture(scope="module")
def compiled() -> tuple[Any, Any, str]:
    pipeline = load_pipeline(str(PLACEMENT))
    return pipeline, plan_pipeline(pipeline, "aws"), compile_pipeline(pipeline, "aws")


def test_template_passes_cfn_lint_and_fills_every_placeholder(compiled: tuple[Any, Any, str]) -> None:
    _, plan, definition = compiled
    text = template_text(plan, definition)
    assert [str(match) for match in lint(text)] == []
    document = yaml.safe_load(text)
    substitutions = document["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert set(substitutions) == placeholders(definition)
    assert sorted(
        name for name, value in document["Resources"].items() if value["Type"] == "AWS::Lambda::Function"
    ) == [
        "StageFunction2048MB"  # report only: the other stages are not functions
    ]


def test_task_definitions_are_sized_as_placed(compiled: tuple[Any, Any, str]) -> None:
    _, plan, definition = compiled
    resources = yaml.safe_load(template_text(plan, definition))["Resources"]
    sizes = {
        name: (value["Properties"]["Cpu"], value["Properties"]["Memory"])
        for name, value in resources.items()
        if value["Type"] == "AWS::ECS::TaskDefinition"
    }
    assert sizes == {"StageContainer16384MB": ("2048", "16384"), "StageContainer61440MB": ("8192", "61440")}
    (container,) = resources["StageContainer61440MB"]["Properties"]["ContainerDefinitions"]
    assert container["Name"] == "stage" and container["EntryPoint"] == [
        "/var/lang/bin/python3",
        "-m",
        "sparkflow.runtime",
    ]
    assert resources["StageContainer61440MB"]["Properties"]["EphemeralStorage"] == {"SizeInGiB": 200}
    assert resources["EmrApplication"]["Properties"]["ImageConfiguration"] == {"ImageUri": {"Ref": "EmrImageUri"}}


def test_state_machine_may_run_the_jobs_and_nothing_more(compiled: tuple[Any, Any, str]) -> None:
    _, plan, definition = compiled
    found = grants(yaml.safe_load(template_text(plan, definition)), "StateMachineRole")
    none = key(None)
    events = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
    application = {"Fn::GetAtt": ["EmrApplication", "Arn"]}
    expected = {
        ("ecs:RunTask", key({"Ref": "StageContainer16384MB"}), none),
        ("ecs:RunTask", key({"Ref": "StageContainer61440MB"}), none),
        ("iam:PassRole", key({"Fn::GetAtt": ["ContainerExecutionRole", "Arn"]}), none),
        ("iam:PassRole", key({"Fn::GetAtt": ["ContainerTaskRole", "Arn"]}), none),
        ("iam:PassRole", key({"Fn::GetAtt": ["EmrJobRole", "Arn"]}), none),
        ("emr-serverless:StartJobRun", key(application), none),
        ("emr-serverless:GetJobRun", key({"Fn::Join": ["", [application, "/jobruns/*"]]}), none),
        ("emr-serverless:CancelJobRun", key({"Fn::Join": ["", [application, "/jobruns/*"]]}), none),
    }
    cluster = key({"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["ContainerCluster", "Arn"]}}})
    expected |= {(action, key("*"), cluster) for action in ("ecs:DescribeTasks", "ecs:StopTask")}
    for rule in ("StepFunctionsGetEventsForECSTaskRule", "StepFunctionsGetEventsForEMRServerlessJobRule"):
        for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule"):
            expected.add((action, key({"Fn::Sub": f"{events}{rule}"}), none))
    assert expected <= found
    assert {
        grant for grant in found if grant[0].split(":")[0] in ("ecs", "emr-serverless", "iam", "events")
    } == expected


def test_build_context_holds_the_emr_image_and_entry(compiled: tuple[Any, Any, str], tmp_path: Path) -> None:
    pipeline, plan, definition = compiled
    package(pipeline, plan, definition, tmp_path)
    dockerfile = (tmp_path / "emr" / "Dockerfile").read_text()
    assert "FROM --platform=linux/amd64 public.ecr.aws/emr-serverless/spark/emr-7.5.0:latest" in dockerfile
    assert dockerfile.rstrip().endswith("USER hadoop:hadoop")
    assert_cluster_requirements_leave_out_pyspark(dockerfile, tmp_path / "requirements.txt")
    assert "ENV SPARKFLOW_PIPELINE=/app/project/tests/resources/placement.py" in dockerfile
    entry = (tmp_path / "emr" / "entry.py").read_text()
    assert "from sparkflow.runtime.cluster import main" in entry
    compile(entry, "entry.py", "exec")


def assert_cluster_requirements_leave_out_pyspark(dockerfile: str, requirements: Path) -> None:
    """The cluster image's requirements are the image's without pyspark (the platform brings Spark): the Dockerfile's
    own grep, run on the requirements.txt beside it, leaves no pyspark line, and only that line goes."""
    import re
    import subprocess

    (pattern,) = re.findall(r"grep -v -E '([^']+)'", dockerfile)
    lines = requirements.read_text().splitlines()
    kept = subprocess.run(["grep", "-v", "-E", pattern], input="\n".join(lines) + "\n", capture_output=True, text=True)
    assert [line for line in lines if line.startswith("pyspark")], "the image pins pyspark"
    assert kept.stdout.splitlines() == [line for line in lines if not line.startswith(("pyspark==", "pyspark["))]
