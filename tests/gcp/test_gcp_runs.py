"""`sparkflow start` and `status` on GCP, with the official `ExecutionsClient` against a local stand-in of the
Workflow Executions API that runs the compiled workflow in workflows-emulator: the run's argument, its state while
it runs, its outputs once it succeeded, the failed stage and its error once it failed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.targets.gcp.watch import follow
from tests.gcp.conftest import RESOURCES, RUN_ID, STORAGE, StageDouble, compiled, http_error

SHOUTING = Path(__file__).resolve().parents[1] / "ship" / "resources" / "shouting" / "pipeline.py"
WORKFLOW = "projects/proj-1/locations/europe-west1/workflows/shouting"
EXECUTION = f"{WORKFLOW}/executions/{RUN_ID}"
PLACE = ["--project", "proj-1", "--region", "europe-west1"]


@pytest.fixture
def served(executions_api: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``serve(double)``: the stand-in serving the shouting workflow, the CLI's ExecutionsClient pointed at it."""
    from google.cloud.workflows import executions_v1

    plan, text = compiled(SHOUTING)

    def serve(**failures: Any) -> Any:
        api, client = executions_api({WORKFLOW: text}, StageDouble(plan, failures=failures))
        monkeypatch.setattr(executions_v1, "ExecutionsClient", lambda: client)
        return api, client

    return serve


def test_start_then_status_while_running_then_the_outputs(served: Any) -> None:
    api, client = served()
    api.gate = "longest"
    started = CliRunner().invoke(
        main, ["start", str(SHOUTING), "--target", "gcp", *PLACE, "--input", "lines=gs://in/lines.txt", "--no-follow"]
    )
    assert started.exit_code == 0, started.output
    assert started.stdout.strip() == EXECUTION
    ((method, request),) = api.requests
    assert (method, request.parent) == ("CreateExecution", WORKFLOW)
    assert json.loads(request.execution.argument) == {"sources": {"lines": "gs://in/lines.txt"}}

    assert api.reached.wait(timeout=60)  # `shout` done, `longest` held at the gate
    running = CliRunner().invoke(main, ["status", EXECUTION, "--target", "gcp", "--json"])
    assert running.exit_code == 0, running.output
    now = json.loads(running.stdout)
    assert (now["status"], now["run_id"]) == ("RUNNING", RUN_ID)
    assert [(stage["name"], stage["state"]) for stage in now["stages"]] == [("longest", "running")]

    api.release.set()
    final = follow(EXECUTION, client=client, interval_s=0.01, timeout_s=60)
    assert final.succeeded and final.outputs == {"longest": f"{STORAGE}shouting/{RUN_ID}/longest/"}
    assert api.double.problems == [] and api.double.calls == ["shout", "longest"]
    # The argument reached the run: every event carries the sources the run was started with.
    assert all(event["run"]["params"] == {"sources": {"lines": "gs://in/lines.txt"}} for event in api.double.events)
    done = CliRunner().invoke(main, ["status", EXECUTION, "--target", "gcp"])
    assert done.exit_code == 0 and f"output longest: {STORAGE}shouting/{RUN_ID}/longest/" in done.stdout


def test_status_shows_the_estimate_of_each_stage_beside_the_measured_seconds(served: Any) -> None:
    from sparkflow.estimate import cloud_seconds, estimate_plan
    from sparkflow.loading import load_pipeline

    served()
    started = CliRunner().invoke(main, ["start", str(SHOUTING), "--target", "gcp", *PLACE, "--json"])
    assert started.exit_code == 0, started.output
    ended = json.loads(started.stdout)  # start follows the run and shows the estimates itself
    shown = CliRunner().invoke(main, ["status", EXECUTION, "--target", "gcp", "--pipeline", str(SHOUTING), "--json"])
    assert shown.exit_code == 0, shown.output
    final = json.loads(shown.stdout)
    assert final["timings"] == ended["timings"] and final["estimated_seconds"] == ended["estimated_seconds"]
    pipeline = load_pipeline(str(SHOUTING))
    plan, _ = compiled(SHOUTING)
    planned = estimate_plan(plan, pipeline, "gcp", {})  # what `sparkflow plan --target gcp` shows
    assert {name: round(timing["estimated_seconds"], 1) for name, timing in final["timings"].items()} == {
        item.name: round(item.work.seconds, 1) for item in planned.stages if item.work is not None
    }
    assert final["estimated_seconds"] == round(cloud_seconds(plan, pipeline, "gcp", {}).run, 3)
    assert round(final["estimated_seconds"], 1) == round(planned.seconds, 1)
    # An execution lists no ended steps: a stage's own seconds are not known on GCP, the run's are.
    assert {timing["seconds"] for timing in final["timings"].values()} == {None}
    assert final["seconds"] is not None and 0 < final["seconds"] < 60
    table = CliRunner().invoke(main, ["status", EXECUTION, "--target", "gcp", "--pipeline", str(SHOUTING)])
    assert re.search(r"┃ stage +┃ measured ┃ estimated ┃", table.stdout), table.stdout
    assert re.search(r"│ longest +│ +│ +3\.8 │", table.stdout), table.stdout


def test_a_failed_run_names_the_stage_and_its_error(served: Any) -> None:
    api, _ = served(longest=[http_error(500)] * 10)
    result = CliRunner().invoke(main, ["start", str(SHOUTING), "--target", "gcp", *PLACE, "--json"])
    assert result.exit_code == 1, result.output
    final = json.loads(result.stdout)
    assert final["status"] == "FAILED" and final["execution"] == EXECUTION
    message = "stage longest of pipeline shouting failed: HTTP server responded with error code 500"
    assert final["error"] == "StageFailed" and final["cause"] == message
    assert [(stage["name"], stage["state"], stage["cause"]) for stage in final["stages"]] == [
        ("longest", "failed", message)
    ]
    assert api.double.problems == [] and api.double.calls.count("longest") == 3  # 1 + its 2 retries
    shown = CliRunner().invoke(main, ["status", EXECUTION, "--target", "gcp"])
    assert shown.exit_code == 1 and f"stage longest failed: StageFailed: {message}" in shown.stderr


def test_what_gcp_cannot_do_or_find_is_said(served: Any) -> None:
    served()
    chosen = CliRunner().invoke(main, ["start", str(SHOUTING), "--target", "gcp", *PLACE, "--run-id", "r1"])
    assert chosen.exit_code == 2 and "--run-id cannot be chosen on GCP: Workflows names each execution" in chosen.stderr
    nowhere = CliRunner().invoke(main, ["start", str(SHOUTING), "--target", "gcp"])
    assert nowhere.exit_code == 2 and "--target gcp needs --project and --region" in nowhere.stderr
    wrong = CliRunner().invoke(
        main, ["start", str(SHOUTING), "--target", "gcp", "--project", "proj-1", "--region", "us-east1"]
    )
    assert wrong.exit_code == 2
    assert "starting a run of projects/proj-1/locations/us-east1/workflows/shouting: not found" in wrong.stderr
    arn = CliRunner().invoke(main, ["status", "arn:aws:states:us-east-1:1:execution:x:y", "--target", "gcp"])
    assert (
        arn.exit_code == 2
        and "is not a Workflows execution: pass the name `sparkflow start --target gcp`" in arn.stderr
    )


def test_a_stage_failing_in_a_parallel_branch_is_named(executions_api: Any) -> None:
    from sparkflow.targets.gcp.watch import start

    plan, text = compiled(RESOURCES / "shapes.py", "deep")
    workflow = "projects/proj-1/locations/europe-west1/workflows/deep"
    api, client = executions_api({workflow: text}, StageDouble(plan, failures={"tag_3": [http_error(503)] * 10}))
    execution = start("deep", "proj-1", "europe-west1", {}, client=client)
    final = follow(execution, client=client, interval_s=0.01, timeout_s=60)
    assert final.status == "FAILED" and "UnhandledBranchError" in str(final.error)
    (failed,) = final.failed_stages()
    assert (
        failed.name == "tag_3" and failed.cause is not None and failed.cause.startswith("stage tag_3 of pipeline deep")
    )
    assert api.double.problems == []
