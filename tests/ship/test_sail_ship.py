"""Shipping Sail stages to AWS: ``package --engine sail`` writes an image without Java whose functions run every stage
on Sail, its template passes cfn-lint, what the Sail functions cannot run as declared is refused before anything is
written, and a deployed Sail stack runs under moto's Step Functions interpreter, each Lambda invocation answered by
the real runtime in a process prepared for Sail, to the same rows as ``sparkflow run --engine sail``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.errors import PackageError
from sparkflow.loading import load_pipeline
from sparkflow.results import locate, read_table
from sparkflow.shipping.requirements import pyspark_version
from sparkflow.targets.aws.package import package
from sparkflow.targets.aws.template import template_text
from sparkflow.targets.aws.watch import follow, start
from tests.aws_moto import LambdaDouble, MotoAws
from tests.examples import long_but
from tests.ship.conftest import Compiled, compiled
from tests.ship.test_deploy import BUCKET, IMAGE, deployed, function_named, image_deploy, stack

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def functions(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [value["Properties"] for value in document["Resources"].values() if value["Type"] == "AWS::Lambda::Function"]


def test_the_sail_image_has_no_java_and_runs_every_stage_on_sail(wordcount: Compiled, tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    package(wordcount.pipeline, wordcount.plan, wordcount.definition, context, engine="sail")
    dockerfile = (context / "Dockerfile").read_text(encoding="utf-8")
    lines = dockerfile.splitlines()
    assert "FROM --platform=linux/amd64 public.ecr.aws/lambda/python:3.12" in lines
    for absent in ("java", "corretto", "spark_home", "jsa", "xshare", "spark_submit_opts", "spark_local_dirs"):
        assert absent not in dockerfile.lower(), absent
    assert "ENV SPARKFLOW_ENGINE=sail" in lines
    assert "ENV SPARKFLOW_PIPELINE=/var/task/project/examples/wordcount/pipeline.py" in lines
    assert "ENV SPARKFLOW_WORKDIR=/tmp HOME=/tmp" in lines and lines[-1] == 'CMD ["sparkflow.runtime.aws.handler"]'
    assert "Regenerate with `sparkflow package --engine sail`" in lines[0]
    order = [dockerfile.index(step) for step in ("pip install", "COPY sparkflow/", "SPARKFLOW_ENGINE", "CMD")]
    assert order == sorted(order)
    requirements = (context / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert f"pyspark-client=={pyspark_version()}" in requirements and "pyspark-client==4.2.0" in requirements
    assert "pysail==0.7.2" in requirements
    names = [re.split(r"[\[=]", line)[0].lower() for line in requirements]
    assert not {"pyspark", "sqlframe", "duckdb"} & set(names), names  # Spark's jars, DuckDB's engine: not here
    assert {"pyarrow", "pandas", "s3fs", "jsonschema", "boto3"} <= set(names)  # the Connect client's and the runtime's
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][0-9A-Za-z.]*", line) for line in requirements), requirements
    for source in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        assert (context / source).exists(), source
    template = (context / "template.yaml").read_text(encoding="utf-8")
    assert template == template_text(wordcount.plan, wordcount.definition, engine="sail")
    document = yaml.safe_load(template)
    assert set(document["Parameters"]) == {"ImageUri", "StorageBucket", "StoragePrefix"}
    for properties in functions(document):
        assert properties["PackageType"] == "Image" and properties["Code"] == {"ImageUri": {"Ref": "ImageUri"}}
        assert properties["Environment"]["Variables"]["SPARKFLOW_ENGINE"] == "sail"


def test_the_spark_image_installs_neither_sail_nor_duckdb(wordcount: Compiled, tmp_path: Path) -> None:
    package(wordcount.pipeline, wordcount.plan, wordcount.definition, tmp_path)
    requirements = (tmp_path / "requirements.txt").read_text(encoding="utf-8").splitlines()
    names = {re.split(r"[\[=]", line)[0].lower() for line in requirements}
    assert "pyspark" in names and not {"pysail", "pyspark-client", "sqlframe", "duckdb"} & names
    assert "SPARKFLOW_ENGINE" not in (tmp_path / "Dockerfile").read_text(encoding="utf-8")  # each stage's own engine


@pytest.mark.parametrize("path", long_but("wordcount", "clickstream"))
def test_cfn_lint_reports_nothing_for_the_sail_template_of_every_example(path: Path) -> None:
    item = compiled(path.parent.name)
    inputs = {source.name: f"s3://data/{source.name}/" for source in item.plan.sources}
    for given in (None, inputs):
        text = template_text(item.plan, item.definition, engine="sail", inputs=given)
        assert [str(match) for match in lint(text)] == []


def test_container_stages_run_the_sail_image_on_sail() -> None:
    """A container runs the stage image with the functions' environment: SPARKFLOW_ENGINE too."""
    placed = load_pipeline(str(RESOURCES / "placement.py"))  # visitors, sessions: containers
    document = yaml.safe_load(
        template_text(plan_pipeline(placed, "aws"), compile_pipeline(placed, "aws"), engine="sail")
    )
    containers = [
        container
        for value in document["Resources"].values()
        if value["Type"] == "AWS::ECS::TaskDefinition"
        for container in value["Properties"]["ContainerDefinitions"]
    ]
    assert containers
    for container in containers:
        assert {"Name": "SPARKFLOW_ENGINE", "Value": "sail"} in container["Environment"]


def test_what_sail_functions_would_not_run_as_declared_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    engines = str(RESOURCES / "pipeline_engine.py")
    on_duckdb = load_pipeline(engines, "on_duckdb")  # counts declares spark, top duckdb; the pipeline duckdb
    out = tmp_path / "out"
    plan, definition = plan_pipeline(on_duckdb, "aws"), compile_pipeline(on_duckdb, "aws")
    with pytest.raises(PackageError) as refused:
        package(on_duckdb, plan, definition, out, engine="sail")
    message = str(refused.value)
    assert re.search(r"stage\(s\) top \(.*pipeline_engine.py:\d+\) declare engine='duckdb', which functions", message)
    assert re.search(r"stage\(s\) counts \(.*pipeline_engine.py:\d+\) declare engine='spark'", message)
    assert "drop engine= there, or package with --engine spark" in message
    assert "words" not in message  # the pipeline's engine= is what --engine replaces
    with pytest.raises(PackageError, match=r"stage\(s\) words \(.*\), top \(.*\) run on engine 'duckdb', which the"):
        package(on_duckdb, plan, definition, out)  # a Spark image runs each stage on its own engine
    placed = load_pipeline(str(RESOURCES / "placement.py"))
    with pytest.raises(PackageError, match=r"stage\(s\) history \(.*placement.py:\d+\) are placed on serverless Spark"):
        package(placed, plan_pipeline(placed, "aws"), compile_pipeline(placed, "aws"), out, engine="sail")
    assert not out.exists()


def test_the_command_line_names_the_sail_mistakes(tmp_path: Path) -> None:
    pipeline = str(compiled("wordcount").path)
    runner = CliRunner()
    out = tmp_path / "out"
    zipped = runner.invoke(main, ["package", pipeline, "--engine", "sail", "--python", "3.12", "--out", str(out)])
    assert zipped.exit_code == 2
    assert "error: --python builds a Lambda .zip (--engine duckdb); --engine sail ships as an image: drop --python" in (
        zipped.stderr
    )
    no_image = runner.invoke(
        main, ["deploy", pipeline, "--engine", "sail", "--storage-root", "s3://b/p/", "--out", str(out)]
    )
    assert no_image.exit_code == 2
    assert (
        "error: --target aws needs --image-uri: build the Dockerfile `sparkflow package --engine sail` writes, push it "
        "to ECR and pass its URI (or deploy a Lambda zip with --engine duckdb)"
    ) in no_image.stderr
    assert not out.exists()


@pytest.mark.moto
def test_deploy_creates_sail_functions_running_the_image(moto_aws: MotoAws) -> None:
    item = compiled("wordcount")
    name = stack()
    arn, lines = image_deploy(moto_aws, item, name, engine="sail")
    assert arn.endswith(f":stateMachine:{name}") and any("CREATE_COMPLETE" in line for line in lines), lines
    for memory in sorted({task.memory_mb for task in item.plan.tasks}):
        function = function_named(moto_aws, name, memory)
        assert function["Code"]["ImageUri"] == IMAGE
        assert function["Configuration"]["Environment"]["Variables"] == {
            "SPARKFLOW_STORAGE_ROOT": f"s3://{BUCKET}/{name}/",
            "SPARKFLOW_ENGINE": "sail",
        }


def rows(path: Path, node: str, storage: str, run_id: str) -> list[dict[str, Any]]:
    found = read_table(locate(str(path), node, storage=storage, run_id=run_id)).to_pylist()
    return sorted(found, key=lambda row: json.dumps(row, sort_keys=True, default=str))


@pytest.mark.moto
@pytest.mark.parametrize("name", ["wordcount", "clickstream"])
def test_a_sail_stack_run_by_step_functions_gives_the_rows_of_the_local_sail_run(
    name: str, moto_aws: MotoAws, lambda_double: LambdaDouble, monkeypatch: Any, tmp_path: Path
) -> None:
    item = compiled(name)
    local = CliRunner().invoke(
        main, ["run", str(item.path), "--engine", "sail", "--storage", str(tmp_path / "local"), "--json"]
    )
    assert local.exit_code == 0, local.output
    local_run = json.loads(local.stdout)["run_id"]
    arn, root, sources = deployed(moto_aws, lambda_double, monkeypatch, item, engine="sail")
    execution = start(arn, sources, clients=moto_aws.client)
    final = follow(execution, clients=moto_aws.client, interval_s=0.2, timeout_s=300)
    assert final.status == "SUCCEEDED", (final.error, final.cause, final.stages)
    assert {call.node for call in lambda_double.calls} == {task.id for task in item.plan.tasks} | {"publish"}
    assert final.outputs == {sink: f"{root}{item.plan.pipeline}/{final.run_id}/{sink}/" for sink in item.plan.outputs}
    datasets = [task.id for task in item.plan.tasks if task.output == "dataset"]
    assert datasets
    for node in datasets:
        in_the_cloud = rows(item.path, node, root, final.run_id)
        assert in_the_cloud and in_the_cloud == rows(item.path, node, str(tmp_path / "local"), local_run), node
