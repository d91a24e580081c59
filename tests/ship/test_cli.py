"""`sparkflow package / deploy / start / status` through click's CliRunner, against moto's server (boto3's
default clients reach it through AWS_ENDPOINT_URL, as a user's would reach AWS)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.loading import load_pipeline
from tests.aws_moto import LambdaDouble, MotoAws
from tests.runtime.configs import write_plan
from tests.ship.conftest import compiled
from tests.ship.test_deploy import BUCKET, IMAGE, bucket, function_named, runtime_handler

pytestmark = pytest.mark.moto


def test_package_writes_the_build_context(tmp_path: Path) -> None:
    item = compiled("wordcount")
    result = CliRunner().invoke(
        main,
        [
            "package",
            str(item.path),
            "--target",
            "aws",
            "--out",
            str(tmp_path),
            "--input",
            "books=s3://in-bucket/books/",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"to {tmp_path}" in result.stdout
    assert 'CMD ["sparkflow.runtime.aws.handler"]' in (tmp_path / "Dockerfile").read_text(encoding="utf-8")
    assert "s3://in-bucket/books/" in (tmp_path / "template.yaml").read_text(encoding="utf-8")


def test_package_names_what_is_wrong(tmp_path: Path) -> None:
    item = compiled("wordcount")
    result = CliRunner().invoke(main, ["package", str(item.path), "--target", "gcp", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "gs:// storage root" in result.stderr
    result = CliRunner().invoke(main, ["package", str(item.path), "--target", "awz", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "aws" in result.stderr
    result = CliRunner().invoke(main, ["package", str(item.path), "--input", "pages=s3://b/p/", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no source named pages" in result.stderr


@pytest.mark.spark
def test_deploy_start_follow_and_status(
    moto_aws: MotoAws, lambda_double: LambdaDouble, monkeypatch: Any, tmp_path: Path
) -> None:
    item = compiled("shouting")
    bucket(moto_aws)
    key = f"inputs/{uuid.uuid4().hex[:8]}/lines.txt"
    moto_aws.client("s3").upload_file(str(item.path.parent / "data/lines.txt"), BUCKET, key)
    lines = f"s3://{BUCKET}/{key}"
    stack = f"cli-{uuid.uuid4().hex[:8]}"
    root = f"s3://{BUCKET}/{stack}/"
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_aws.endpoint)
    runner = CliRunner()
    deploy_args = ["deploy", str(item.path), "--target", "aws", "--stack", stack, "--image-uri", IMAGE]
    deploy_args += ["--out", str(tmp_path / "build")]
    deployed = runner.invoke(main, [*deploy_args, "--storage-root", root, "--input", f"lines={lines}"])
    assert deployed.exit_code == 0, deployed.output
    arn = deployed.stdout.strip()
    assert arn.endswith(f":stateMachine:{stack}")
    assert "create through change set" in deployed.stderr and "CREATE_COMPLETE" in deployed.stderr
    again = runner.invoke(main, [*deploy_args, "--storage-root", root, "--input", f"lines={lines}"])
    assert again.exit_code == 0 and again.stdout.strip() == arn and f"stack {stack}: no changes" in again.stderr

    variables = function_named(moto_aws, stack, 2048)["Configuration"]["Environment"]
    plan = write_plan(load_pipeline(str(item.path)), tmp_path / "plan")
    for name, value in {**variables["Variables"], "SPARKFLOW_PIPELINE": str(item.path), "SPARKFLOW_PLAN": plan}.items():
        monkeypatch.setenv(name, value)
    lambda_double.delay = 0
    lambda_double.handler = runtime_handler

    started = runner.invoke(main, ["start", str(item.path), "--stack", stack, "--input", f"lines={lines}"])
    assert started.exit_code == 0, started.output
    [output] = [line for line in started.stdout.splitlines() if line.startswith("output ")]
    assert output.startswith(f"output longest: {root}shouting/") and output.endswith("/longest/")
    assert "shout" in started.stderr and "done" in started.stderr

    quiet = runner.invoke(main, ["start", str(item.path), "--stack", stack, "--input", "lines=s3://elsewhere/x.txt"])
    assert quiet.exit_code == 1, quiet.output
    assert "stage shout failed: ConfinementError: " in quiet.stderr and "s3://elsewhere/x.txt" in quiet.stderr

    no_follow = runner.invoke(
        main, ["start", str(item.path), "--stack", stack, "--input", "lines=s3://elsewhere/x.txt", "--no-follow"]
    )
    assert no_follow.exit_code == 0
    execution = no_follow.stdout.strip()
    assert f":execution:{stack}:" in execution
    shown = runner.invoke(main, ["status", execution])
    while "RUNNING" in shown.stdout:
        shown = runner.invoke(main, ["status", execution])
    assert shown.exit_code == 1
    assert "shout" in shown.stdout and "longest" in shown.stdout and "pending" in shown.stdout
    assert "stage shout failed: ConfinementError" in shown.stderr

    deleted = runner.invoke(main, ["delete", str(item.path), "--stack", stack])
    assert (
        deleted.exit_code == 0 and deleted.stdout == f"deleted stack {stack} (its storage and values table are kept)\n"
    )
    gone = runner.invoke(main, ["delete", str(item.path), "--stack", stack])
    assert gone.exit_code == 2 and f"no stack named '{stack}'" in gone.stderr


def test_deploy_without_an_image_or_a_good_stack_name_says_how_to_fix_it(moto_aws: MotoAws, monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_aws.endpoint)
    pipeline = str(compiled("shouting").path)
    runner = CliRunner()
    no_image = runner.invoke(main, ["deploy", pipeline, "--storage-root", f"s3://{BUCKET}/p/"])
    assert no_image.exit_code == 2 and "error: --target aws needs --image-uri: build the" in no_image.stderr
    bad_stack = runner.invoke(main, ["deploy", pipeline, "--stack", "my_stack", "--image-uri", IMAGE])
    assert bad_stack.exit_code == 2 and "error: stack name 'my_stack': use a letter then" in bad_stack.stderr
    bad_parameter = runner.invoke(main, ["deploy", pipeline, "--image-uri", IMAGE, "--parameter", "Subnets"])
    assert bad_parameter.exit_code == 2 and "'Subnets': write NAME=VALUE" in bad_parameter.stderr


def test_start_without_a_deployed_stack_says_how_to_fix_it(moto_aws: MotoAws, monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_aws.endpoint)
    item = compiled("shouting")
    result = CliRunner().invoke(main, ["start", str(item.path), "--stack", "nothing-here"])
    assert result.exit_code == 2
    assert "no stack named 'nothing-here' (so no state machine to run)" in result.stderr
    assert "sparkflow deploy" in result.stderr


def test_package_warns_that_a_local_source_needs_a_cloud_location(tmp_path: Path) -> None:
    from tests.examples import example

    result = CliRunner().invoke(main, ["package", str(example("wordcount")), "--out", str(tmp_path / "build")])
    assert result.exit_code == 0, result.output
    assert (
        f"warning: {example('wordcount')}:10: source 'books' is the local path 'data/books/', which deployed "
        "functions cannot read: pass --input books=s3://... (or gs://...) here"
    ) in result.output
    given = ["package", str(example("wordcount")), "--out", str(tmp_path / "b2"), "--input", "books=s3://b/books/"]
    assert "warning: " not in CliRunner().invoke(main, given).output


def test_aws_commands_without_a_region_or_credentials_say_so_in_one_line(monkeypatch: Any, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # nothing asks an instance metadata service
    pipeline = str(compiled("shouting").path)
    runner = CliRunner()

    no_region = runner.invoke(main, ["start", pipeline, "--stack", "shouting"])
    assert no_region.exit_code == 2
    assert no_region.stderr == (
        "error: no AWS region: pass --region (e.g. --region eu-west-1), set AWS_REGION, or choose a --profile that "
        "has one\n"
    )
    no_credentials = runner.invoke(main, ["start", pipeline, "--stack", "shouting", "--region", "eu-west-1"])
    assert no_credentials.exit_code == 2 and no_credentials.stderr.startswith("error: no AWS credentials: run ")
    assert len(no_credentials.stderr.splitlines()) == 1
    # status takes the region from the execution's ARN: it gets as far as the credentials.
    execution = "arn:aws:states:eu-west-1:123456789012:execution:shouting:run-1"
    from_arn = runner.invoke(main, ["status", execution])
    assert from_arn.exit_code == 2 and from_arn.stderr.startswith("error: no AWS credentials: "), from_arn.stderr
    profile = runner.invoke(main, ["status", execution, "--profile", "nobody"])
    assert profile.exit_code == 2 and profile.stderr.startswith("error: the AWS profile 'nobody' is not configured")


def test_every_command_reaches_a_target_through_the_registry_alone(monkeypatch: Any, tmp_path: Path) -> None:
    from sparkflow import targets
    from tests.ship import recording_target

    monkeypatch.setitem(targets._REGISTRY, "recorder", "tests.ship.recording_target")
    monkeypatch.setattr(recording_target.TARGET, "calls", [])
    pipeline, runner = str(compiled("shouting").path), CliRunner()
    options = ["--target", "recorder", "--input", "lines=s3://in/x.txt"]

    packaged = runner.invoke(main, ["package", pipeline, "--out", str(tmp_path), *options])
    assert packaged.exit_code == 0 and packaged.stdout == f"packaged shouting into {tmp_path}\n", packaged.output
    deployed = runner.invoke(main, ["deploy", pipeline, "--storage-root", "s3://b/p/", "--stack", "s", *options])
    assert deployed.exit_code == 0 and deployed.stdout == "deployed:shouting\n", deployed.output
    started = runner.invoke(main, ["start", pipeline, *options])
    assert started.exit_code == 0 and "output shout: s3://x/" in started.stdout, started.output
    shown = runner.invoke(main, ["status", "execution:shouting", "--target", "recorder"])
    assert shown.exit_code == 0 and "run-1: SUCCEEDED" in shown.stdout, shown.output
    deleted = runner.invoke(main, ["delete", pipeline, "--target", "recorder", "--stack", "s"])
    assert deleted.exit_code == 0 and deleted.stdout == "deleted:shouting\n", deleted.output
    calls = recording_target.TARGET.calls
    assert [name for name, _ in calls] == ["package", "deploy", "start", "status", "status", "status", "delete"]
    assert all(given.inputs == {"lines": "s3://in/x.txt"} for name, given in calls if name not in ("status", "delete"))
    assert calls[-1][1].stack == "s"
    assert calls[1][1].storage_root == "s3://b/p/" and calls[1][1].stack == "s"


def test_resume_and_logs_reach_a_target_through_the_registry_alone(monkeypatch: Any) -> None:
    from sparkflow import targets
    from tests.ship import recording_target

    monkeypatch.setitem(targets._REGISTRY, "recorder", "tests.ship.recording_target")
    monkeypatch.setattr(recording_target.TARGET, "calls", [])
    pipeline, runner = str(compiled("shouting").path), CliRunner()
    resumed = runner.invoke(main, ["start", pipeline, "--target", "recorder", "--resume", "run-1", "--no-follow"])
    assert resumed.exit_code == 0 and resumed.stdout == "execution:run-1-resume-1\n", resumed.output
    shown = runner.invoke(main, ["logs", pipeline, "run-1", "--target", "recorder", "--stage", "shout"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == "1970-01-01T00:00:00.250Z  shout            INFO    stage start\n"
    raw = runner.invoke(main, ["logs", pipeline, "run-1", "--target", "recorder", "--json"])
    assert json.loads(raw.stdout)["message"] == "stage start", raw.output
    calls = recording_target.TARGET.calls
    assert [name for name, _ in calls] == ["resume", "logs", "logs"]
    assert calls[1][1].run_id == "run-1" and calls[1][1].nodes == ("shout",) and calls[2][1].nodes is None


def test_resume_refuses_a_run_id_or_inputs_beside_it() -> None:
    pipeline, runner = str(compiled("shouting").path), CliRunner()
    with_id = runner.invoke(main, ["start", pipeline, "--resume", "run-1", "--run-id", "run-2"])
    assert with_id.exit_code == 2
    assert "--resume run-1 runs the run again with its own run id and the inputs it started with: drop --run-id" in (
        with_id.stderr
    )
    with_input = runner.invoke(main, ["start", pipeline, "--resume", "run-1", "--input", "lines=s3://b/x.txt"])
    assert with_input.exit_code == 2 and "drop --input (start a new run to read other inputs)" in with_input.stderr


def test_logs_refuse_an_unknown_stage_or_target(tmp_path: Path) -> None:
    pipeline, runner = str(compiled("wordcount").path), CliRunner()
    stage = runner.invoke(main, ["logs", pipeline, "r1", "--stage", "count", "--storage", str(tmp_path)])
    assert stage.exit_code == 2
    assert stage.stderr == (
        "error: --stage count: pipeline 'wordcount' has no stage 'count' (stages: counts, top, words, publish)\n"
    )
    target = runner.invoke(main, ["logs", pipeline, "r1", "--target", "lokal"])
    assert target.exit_code == 2
    assert target.stderr == "error: unknown target 'lokal': did you mean 'local'? (targets: aws, gcp, local)\n"
    missing = runner.invoke(main, ["logs", pipeline, "r1", "--storage", str(tmp_path)])
    assert missing.exit_code == 2
    assert missing.stderr == (
        f"error: run r1: there is no run 'r1' of pipeline 'wordcount' under {tmp_path}; give the run id "
        "`sparkflow run` printed, and --storage if it wrote elsewhere\n"
    )
    gcp = runner.invoke(main, ["logs", pipeline, "r1", "--target", "gcp"])
    assert gcp.exit_code == 2
    assert gcp.stderr == "error: --target gcp needs --project and --region (where the run was started)\n"


def test_starting_a_run_on_gcp_asks_where_the_workflow_is() -> None:
    result = CliRunner().invoke(main, ["start", str(compiled("shouting").path), "--target", "gcp"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --target gcp needs --project and --region (where the workflow was")
