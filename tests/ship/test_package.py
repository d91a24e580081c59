"""`package` for AWS: the CloudFormation template passes cfn-lint, grants exactly what the stages need, and the
Dockerfile holds what the image needs; the build context is complete and the same on every run."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint

from sparkflow.errors import PackageError
from sparkflow.shipping.requirements import pyspark_version
from sparkflow.targets.aws.package import package
from sparkflow.targets.aws.template import template, template_text
from tests.examples import EXAMPLES, example_ids, long_but
from tests.ship.conftest import Compiled, compiled

# The only actions granted on "*": AWS supports no resource-level permissions for them.
# Step Functions log delivery (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html) and X-Ray
# (https://docs.aws.amazon.com/step-functions/latest/dg/xray-iam.html).
STAR_RESOURCE_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
}
STORAGE_OBJECTS = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${StorageBucket}/${StoragePrefix}/*"}
STORAGE_BUCKET = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${StorageBucket}"}
STORAGE_PREFIXES = [{"Fn::Sub": "${StoragePrefix}"}, {"Fn::Sub": "${StoragePrefix}/*"}]


def key(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True).strip()


def grants(document: dict[str, Any], role: str) -> set[tuple[str, str, str]]:
    """(action, resource, condition) of every statement of ``role``'s inline policies, intrinsics as text."""
    found: set[tuple[str, str, str]] = set()
    for policy in document["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow" and set(statement) <= {
                "Sid",
                "Effect",
                "Action",
                "Resource",
                "Condition",
            }, statement
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                for resource in resources:
                    found.add((action, key(resource), key(statement.get("Condition"))))
    return found


def loaded(item: Compiled, **options: Any) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(template_text(item.plan, item.definition, **options))
    return document


@pytest.mark.parametrize("path", long_but("wordcount", "clickstream", "revenue"))
def test_cfn_lint_reports_nothing_for_every_example(path: Path) -> None:
    item = compiled(path.parent.name)
    text = template_text(item.plan, item.definition, inputs={s.name: f"s3://data/{s.name}/" for s in item.plan.sources})
    assert [str(match) for match in lint(text)] == []
    assert [str(match) for match in lint(template_text(item.plan, item.definition))] == []


def test_cfn_lint_does_report_a_broken_template(wordcount: Compiled) -> None:
    document = template(wordcount.plan, wordcount.definition)
    document["Resources"]["StageFunction2048MB"]["Properties"]["PackageType"] = "Images"
    del document["Resources"]["StateMachine"]["Properties"]["RoleArn"]
    found = [str(match) for match in lint(yaml.safe_dump(document))]
    assert any("E3030" in problem and "'Images' is not one of" in problem for problem in found), found
    assert any("RoleArn" in problem for problem in found), found


@pytest.mark.parametrize("path", EXAMPLES, ids=example_ids())
def test_state_machine_role_invokes_exactly_the_functions(path: Path) -> None:
    item = compiled(path.parent.name)
    document = loaded(item)
    functions = sorted(k for k, v in document["Resources"].items() if v["Type"] == "AWS::Lambda::Function")
    memories = sorted({task.memory_mb for task in item.plan.tasks})
    assert functions == sorted(f"StageFunction{memory}MB" for memory in memories)
    none = key(None)
    expected = {("lambda:InvokeFunction", key({"Fn::GetAtt": [name, "Arn"]}), none) for name in functions}
    expected |= {(action, key("*"), none) for action in STAR_RESOURCE_ACTIONS}
    if '"Mode": "DISTRIBUTED"' in item.definition:
        # A Distributed Map runs child executions of its own state machine and keeps items/results in storage.
        states = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"
        expected.add(("states:StartExecution", key({"Fn::Sub": f"{states}:stateMachine:${{AWS::StackName}}"}), none))
        for action in ("states:DescribeExecution", "states:StopExecution"):
            expected.add((action, key({"Fn::Sub": f"{states}:execution:${{AWS::StackName}}/*"}), none))
        for action in ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"):
            expected.add((action, key(STORAGE_OBJECTS), none))
    assert grants(document, "StateMachineRole") == expected


@pytest.mark.parametrize("path", EXAMPLES, ids=example_ids())
def test_stage_role_touches_only_storage_sources_sinks_table_and_logs(path: Path) -> None:
    item = compiled(path.parent.name)
    inputs = {source.name: f"s3://inputs-bucket/{source.name}/" for source in item.plan.sources}
    document = loaded(item, inputs=inputs)
    none = key(None)
    storage_condition = key({"StringLike": {"s3:prefix": STORAGE_PREFIXES}})
    expected = {
        ("s3:GetObject", key(STORAGE_OBJECTS), none),
        ("s3:PutObject", key(STORAGE_OBJECTS), none),
        ("s3:ListBucket", key(STORAGE_BUCKET), storage_condition),
        # The publish task deletes the run's working files: only under the storage root's _work/.
        (
            "s3:DeleteObject",
            key({"Fn::Sub": "arn:${AWS::Partition}:s3:::${StorageBucket}/${StoragePrefix}/_work/*"}),
            none,
        ),
        ("logs:CreateLogStream", key({"Fn::GetAtt": ["StageLogGroup", "Arn"]}), none),
        ("logs:PutLogEvents", key({"Fn::GetAtt": ["StageLogGroup", "Arn"]}), none),
    }
    for name in inputs:
        expected.add(("s3:GetObject", key({"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::inputs-bucket/{name}/*"}), none))
        condition = key({"StringLike": {"s3:prefix": [name, f"{name}/*"]}})
        expected.add(("s3:ListBucket", key({"Fn::Sub": "arn:${AWS::Partition}:s3:::inputs-bucket"}), condition))
    for sink in item.plan.sinks:  # relative: a folder under the storage prefix; publishing may replace its files
        folder = "${StoragePrefix}/" + sink.uri.strip("/") + "/"
        objects = key({"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::${{StorageBucket}}/{folder}*"})
        expected |= {(action, objects, none) for action in ("s3:DeleteObject", "s3:GetObject", "s3:PutObject")}
        prefixes = [{"Fn::Sub": folder.rstrip("/")}, {"Fn::Sub": f"{folder}*"}]
        expected.add(("s3:ListBucket", key(STORAGE_BUCKET), key({"StringLike": {"s3:prefix": prefixes}})))
    if any(task.output == "value" for task in item.plan.tasks):
        expected |= {
            ("dynamodb:GetItem", key({"Fn::GetAtt": ["ValuesTable", "Arn"]}), none),
            ("dynamodb:PutItem", key({"Fn::GetAtt": ["ValuesTable", "Arn"]}), none),
        }
    assert grants(document, "StageRole") == expected
    for action, resource, _ in grants(document, "StageRole") | grants(document, "StateMachineRole"):
        assert "*" not in action
        assert resource != key("*") or action in STAR_RESOURCE_ACTIONS
    roles = [k for k, v in document["Resources"].items() if v["Type"].startswith("AWS::IAM::")]
    assert sorted(roles) == ["StageRole", "StateMachineRole"]  # no other policy or role grants anything
    variables = document["Resources"][f"StageFunction{item.plan.tasks[0].memory_mb}MB"]["Properties"]["Environment"]
    assert variables["Variables"]["SPARKFLOW_ALLOWED_INPUTS"] == ",".join(
        sorted(inputs.values(), key=list(inputs.values()).index)
    )


def test_template_wires_the_definition_functions_and_logging(wordcount: Compiled) -> None:
    document = loaded(wordcount)
    resources = document["Resources"]
    machine = resources["StateMachine"]["Properties"]
    assert machine["DefinitionString"] == wordcount.definition
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", machine["DefinitionString"]))
    memories = {task.memory_mb for task in wordcount.plan.tasks}
    assert memories >= {1024, 2048}
    assert (
        set(machine["DefinitionSubstitutions"])
        == placeholders
        == {"StorageRoot", *(f"StageFunction{m}MB" for m in memories)}
    )
    assert machine["DefinitionSubstitutions"]["StageFunction1024MB"] == {"Fn::GetAtt": ["StageFunction1024MB", "Arn"]}
    assert machine["DefinitionSubstitutions"]["StorageRoot"] == {"Fn::Sub": "s3://${StorageBucket}/${StoragePrefix}/"}
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] in {"ALL", "ERROR"}
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert resources["StateMachineLogGroup"]["Type"] == "AWS::Logs::LogGroup"
    small = resources["StageFunction1024MB"]["Properties"]
    assert (small["PackageType"], small["MemorySize"], small["Code"]) == (
        "Image",
        1024,
        {"ImageUri": {"Ref": "ImageUri"}},
    )
    assert small["Timeout"] == max(t.timeout_s for t in wordcount.plan.tasks if t.memory_mb == 1024)
    assert small["EphemeralStorage"] == {"Size": 10240}
    variables = small["Environment"]["Variables"]
    assert variables == {"SPARKFLOW_STORAGE_ROOT": {"Fn::Sub": "s3://${StorageBucket}/${StoragePrefix}/"}}
    assert document["Parameters"]["StorageBucket"]["Default"] == "my-bucket"
    assert document["Parameters"]["StoragePrefix"]["Default"] == "sparkflow"
    assert set(document["Parameters"]) == {"ImageUri", "StorageBucket", "StoragePrefix"}


def test_timeout_is_the_longest_stage_of_the_function(wordcount: Compiled) -> None:
    # counts (2048 MB) and top (1 GB) made to share one function: its timeout is the longer of theirs.
    tasks = tuple(
        dataclasses.replace(task, memory_mb=2048, timeout_s=600 if task.id == "top" else task.timeout_s)
        for task in wordcount.plan.tasks
    )
    plan = dataclasses.replace(wordcount.plan, tasks=tasks)
    definition = wordcount.definition.replace("${StageFunction1024MB}", "${StageFunction2048MB}")
    document: dict[str, Any] = yaml.safe_load(template_text(plan, definition))
    assert document["Resources"]["StageFunction2048MB"]["Properties"]["Timeout"] == 900  # counts still 900
    plan = dataclasses.replace(plan, tasks=tuple(dataclasses.replace(t, timeout_s=300) for t in tasks))
    document = yaml.safe_load(template_text(plan, definition))
    assert document["Resources"]["StageFunction2048MB"]["Properties"]["Timeout"] == 300


def test_declared_dynamodb_table_is_a_parameter_and_the_only_table_granted() -> None:
    item = compiled("clickstream")
    plan = dataclasses.replace(item.plan, kv="dynamodb://my-values")
    document: dict[str, Any] = yaml.safe_load(template_text(plan, item.definition))
    assert "ValuesTable" not in document["Resources"]
    assert document["Parameters"]["KvTable"]["Default"] == "my-values"
    table = {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${KvTable}"}
    dynamo = {g for g in grants(document, "StageRole") if g[0].startswith("dynamodb:")}
    assert dynamo == {("dynamodb:GetItem", key(table), key(None)), ("dynamodb:PutItem", key(table), key(None))}
    assert [str(match) for match in lint(yaml.safe_dump(document))] == []


def test_what_cannot_work_on_aws_is_refused(wordcount: Compiled) -> None:
    item = compiled("clickstream")
    with pytest.raises(PackageError, match=r"kv='sqlite:///x.db'.*declare kv='dynamodb://table-name'"):
        template_text(dataclasses.replace(item.plan, kv="sqlite:///x.db"), item.definition)
    with pytest.raises(PackageError, match=r"no source named pages .*\(sources: books\)"):
        template_text(wordcount.plan, wordcount.definition, inputs={"pages": "s3://b/p/"})
    with pytest.raises(PackageError, match=r"source 'books' 'gs://b/books/' is not an S3 location"):
        template_text(wordcount.plan, wordcount.definition, inputs={"books": "gs://b/books/"})
    with pytest.raises(PackageError, match=r"has no prefix: use a folder of the bucket, e\.g\. s3://bucket/sparkflow/"):
        template_text(dataclasses.replace(wordcount.plan, storage="s3://bucket/"), wordcount.definition)
    stale = wordcount.definition.replace("${StageFunction1024MB}", "${StageFunction512MB}")
    with pytest.raises(PackageError, match=r"placeholders sparkflow does not fill \(StageFunction512MB\)"):
        template_text(wordcount.plan, stale)


def test_build_context_is_complete_and_the_dockerfile_has_what_the_image_needs(
    wordcount: Compiled, tmp_path: Path
) -> None:
    written = package(wordcount.pipeline, wordcount.plan, wordcount.definition, tmp_path / "ctx")
    context = tmp_path / "ctx"
    assert {Path(p).name for p in written} >= {"Dockerfile", "template.yaml", "requirements.txt", "pipeline.py"}
    assert all(Path(p).is_file() for p in written)
    dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    lines = dockerfile.splitlines()
    assert "FROM --platform=linux/amd64 public.ecr.aws/lambda/python:3.12" in lines
    assert re.search(r"^RUN dnf install -y java-17-amazon-corretto-headless\b", dockerfile, re.M)
    assert lines[-1] == 'CMD ["sparkflow.runtime.aws.handler"]'
    assert "ENV SPARKFLOW_PIPELINE=/var/task/project/examples/wordcount/pipeline.py" in lines
    # The /dev/fd-free launcher and the class-data-sharing archive, trained at build time and used at run time.
    assert "install_spark_home('/opt/spark')" in dockerfile and "ENV SPARK_HOME=/opt/spark" in lines
    assert "train_cds_archive('/opt/spark/spark.jsa')" in dockerfile
    assert 'SPARK_SUBMIT_OPTS="-XX:SharedArchiveFile=/opt/spark/spark.jsa -Xshare:on"' in dockerfile
    assert 'ENV SPARK_SUBMIT_OPTS="-XX:SharedArchiveFile=/opt/spark/spark.jsa -Xshare:auto -Xlog:cds*=error"' in lines
    order = [
        dockerfile.index(step) for step in ("dnf install", "pip install", "install_spark_home", "train_cds", "CMD")
    ]
    assert order == sorted(order)
    assert (context / "project/examples/wordcount/pipeline.py").read_bytes() == wordcount.path.read_bytes()
    assert (context / "sparkflow/runtime/aws.py").is_file()
    assert (context / "sparkflow/runtime/schemas/event-1.schema.json").is_file()
    assert not list(context.rglob("__pycache__")) and not list(context.rglob(".git"))
    requirements = (context / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert f"pyspark[connect]=={pyspark_version()}" in requirements and "pyspark[connect]==4.2.0" in requirements
    for source in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        assert (context / source).exists(), source
    assert (context / "template.yaml").read_text(encoding="utf-8") == template_text(
        wordcount.plan, wordcount.definition
    )


def test_packaging_twice_gives_the_same_bytes(wordcount: Compiled, tmp_path: Path) -> None:
    first = package(wordcount.pipeline, wordcount.plan, wordcount.definition, tmp_path / "a")
    second = package(wordcount.pipeline, wordcount.plan, wordcount.definition, tmp_path / "b")
    assert [Path(p).relative_to(tmp_path / "a") for p in first] == [Path(p).relative_to(tmp_path / "b") for p in second]
    for one, two in zip(first, second, strict=True):
        assert Path(one).read_bytes() == Path(two).read_bytes(), one
    (tmp_path / "a/project/stale.txt").write_text("old", encoding="utf-8")
    assert package(wordcount.pipeline, wordcount.plan, wordcount.definition, tmp_path / "a") == first
    assert not (tmp_path / "a/project/stale.txt").exists()
