"""A scheduled pipeline on GCP: its schedule as Cloud Scheduler's unix-cron (or a clear refusal), the job `package`
writes, and the job `deploy` creates, updates and deletes with the official client against a local stand-in of the
Cloud Scheduler REST API (the requests' fields asserted), beside the workflow."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.errors import Origin, PackageError
from sparkflow.plan import StartSchedule
from sparkflow.targets.gcp.cron import unix_cron
from tests.gcp.conftest import FakeSchedulerApi, FakeWorkflowsApi

NIGHTLY = Path(__file__).resolve().parents[1] / "ship" / "resources" / "nightly" / "pipeline.py"
PLACE = "projects/proj-1/locations/europe-west1"
JOB = f"{PLACE}/jobs/nightly-schedule"
WORKFLOW = f"{PLACE}/workflows/nightly"
ACCOUNT = "runs@proj-1.iam.gserviceaccount.com"


@pytest.mark.parametrize(
    ("expression", "cron"),
    [
        ("cron(0 3 * * ? *)", "0 3 * * *"),
        ("cron(15,45 */2 ? jan-jun mon-fri *)", "15,45 */2 * 1-6 1-5"),  # names as numbers, weekdays from 0
        ("cron(0/15 8-18 ? * 2-6 *)", "0-59/15 8-18 * * 1-5"),
        ("cron(30 6 1 * ? *)", "30 6 1 * *"),
        ("cron(0 3 ? * SUN,SAT *)", "0 3 * * 0,6"),
        ("rate(1 minute)", "* * * * *"),
        ("rate(15 minutes)", "*/15 * * * *"),
        ("rate(120 minutes)", "0 */2 * * *"),
        ("rate(6 hours)", "0 */6 * * *"),
        ("rate(24 hours)", "0 0 * * *"),
        ("rate(1 day)", "0 0 * * *"),
    ],
)
def test_schedules_as_unix_cron(expression: str, cron: str) -> None:
    assert unix_cron(StartSchedule(expression, Origin("pipeline.py", 12))) == cron


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("rate(7 minutes)", "every 7 minutes has no cron equivalent"),
        ("rate(2 days)", "every 2 days has no cron equivalent"),
        ("cron(0 3 L * ? *)", "day-of-month 'L' cannot be said"),
        ("cron(0 9 ? * 2#1 *)", "day-of-week '2#1' cannot be said"),
        ("cron(0 3 * * ? 2027)", "the year '2027' cannot be said"),
    ],
)
def test_what_unix_cron_cannot_say_is_refused_at_the_pipeline_line(expression: str, why: str) -> None:
    message = re.escape(f"pipeline.py:12: schedule={expression!r} cannot run on GCP: {why}") + ".*e.g. 'cron"
    with pytest.raises(PackageError, match=message):
        unix_cron(StartSchedule(expression, Origin("pipeline.py", 12)))


def test_package_writes_the_job_deploy_creates(tmp_path: Path) -> None:
    args = ["package", str(NIGHTLY), "--target", "gcp", "--out", str(tmp_path), "--storage-root", "gs://b/sf"]
    result = CliRunner().invoke(main, [*args, "--input", "lines=gs://data/lines/"])
    assert result.exit_code == 0, result.output
    assert "starts a run on cron(0 3 * * ? *) (unix-cron '0 3 * * *', UTC)" in result.stdout
    job = json.loads((tmp_path / "scheduler-job.json").read_text())
    assert job["name"] == "projects/PROJECT_ID/locations/REGION/jobs/nightly-schedule"
    assert job["httpTarget"]["oauthToken"]["serviceAccountEmail"] == "SERVICE_ACCOUNT_EMAIL"
    argument = json.loads(json.loads(base64.b64decode(job["httpTarget"]["body"]))["argument"])
    assert argument == {"sources": {"lines": "gs://data/lines/"}}


def test_deploy_creates_updates_and_delete_removes_the_job(
    workflows_api: tuple[FakeWorkflowsApi, Any],
    scheduler_api: tuple[FakeSchedulerApi, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from google.cloud import scheduler_v1, workflows_v1

    workflows, workflows_client = workflows_api
    scheduler, scheduler_client = scheduler_api
    monkeypatch.setattr(workflows_v1, "WorkflowsClient", lambda: workflows_client)
    monkeypatch.setattr(scheduler_v1, "CloudSchedulerClient", lambda: scheduler_client)
    args = ["deploy", str(NIGHTLY), "--target", "gcp", "--project", "proj-1", "--region", "europe-west1"]
    args += ["--service-url", "https://stages-abc.a.run.app", "--storage-root", "gs://b/sf"]
    args += ["--input", "lines=gs://data/lines/"]

    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert "--scheduler-service-account (the pipeline declares a schedule)" in refused.stderr
    assert workflows.requests == [] and scheduler.requests == []

    created = CliRunner().invoke(main, [*args, "--scheduler-service-account", ACCOUNT])
    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == WORKFLOW
    assert f"schedule job {JOB}: a run on 0 3 * * * (UTC)" in created.stderr
    assert workflows.workflows[WORKFLOW]["labels"] == {"sparkflow-schedule": "cloud-scheduler"}
    (get, (method, path, _, body)) = scheduler.requests
    assert get[:2] == ("GET", f"/v1/{JOB}")
    assert (method, path) == ("POST", f"/v1/{PLACE}/jobs")
    assert body["name"] == JOB and body["schedule"] == "0 3 * * *" and body["timeZone"] == "Etc/UTC"
    target = body["httpTarget"]
    assert target["uri"] == f"https://workflowexecutions.googleapis.com/v1/{WORKFLOW}/executions"
    # The REST transport sends enums as numbers (`$alt=json;enum-encoding=int`).
    assert target["httpMethod"] == scheduler_v1.HttpMethod.POST.value == 1
    assert target["headers"] == {"Content-Type": "application/json"}
    assert target["oauthToken"] == {
        "serviceAccountEmail": ACCOUNT,
        "scope": "https://www.googleapis.com/auth/cloud-platform",
    }
    # The Workflows executions API takes the run's argument as a JSON string: what `sparkflow start` sends.
    argument = json.loads(json.loads(base64.b64decode(target["body"]))["argument"])
    assert argument == {"sources": {"lines": "gs://data/lines/"}}

    scheduler.requests.clear()
    again = CliRunner().invoke(main, [*args, "--scheduler-service-account", ACCOUNT])
    assert again.exit_code == 0, again.output
    assert [request[0] for request in scheduler.requests] == ["GET"]  # nothing changed, nothing written

    scheduler.requests.clear()
    other = "other@proj-1.iam.gserviceaccount.com"
    changed = CliRunner().invoke(main, [*args, "--scheduler-service-account", other])
    assert changed.exit_code == 0, changed.output
    (_, (method, path, query, _)) = scheduler.requests
    assert (method, path, query["updateMask"]) == ("PATCH", f"/v1/{JOB}", ["httpTarget"])
    assert scheduler.jobs[JOB]["httpTarget"]["oauthToken"]["serviceAccountEmail"] == other

    # The schedule removed from the pipeline: deploy deletes the job and the workflow's label.
    unscheduled = tmp_path / "pipeline.py"
    unscheduled.write_text(NIGHTLY.read_text().replace(', schedule="cron(0 3 * * ? *)"', ""))
    removed = CliRunner().invoke(main, [args[0], str(unscheduled), *args[2:]])
    assert removed.exit_code == 0, removed.output
    assert "deleted the schedule job of nightly" in removed.stderr
    assert scheduler.jobs == {} and workflows.workflows[WORKFLOW].get("labels") == {}

    CliRunner().invoke(main, [*args, "--scheduler-service-account", ACCOUNT])
    assert JOB in scheduler.jobs
    place = ["--project", "proj-1", "--region", "europe-west1"]
    deleted = CliRunner().invoke(main, ["delete", str(NIGHTLY), "--target", "gcp", *place])
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == f"deleted {WORKFLOW} and {JOB}"
    assert scheduler.jobs == {} and workflows.workflows == {}


def test_a_schedule_gcp_cannot_run_is_refused_before_anything_is_sent(
    workflows_api: tuple[FakeWorkflowsApi, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from google.cloud import workflows_v1

    workflows, client = workflows_api
    monkeypatch.setattr(workflows_v1, "WorkflowsClient", lambda: client)
    every_other_day = tmp_path / "pipeline.py"
    every_other_day.write_text(NIGHTLY.read_text().replace("cron(0 3 * * ? *)", "rate(2 days)"))
    line = next(n for n, text in enumerate(every_other_day.read_text().splitlines(), 1) if "rate(2 days)" in text)
    args = ["deploy", str(every_other_day), "--target", "gcp", "--project", "proj-1", "--region", "europe-west1"]
    args += ["--service-url", "https://stages-abc.a.run.app", "--storage-root", "gs://b/sf"]
    result = CliRunner().invoke(main, [*args, "--scheduler-service-account", ACCOUNT])
    assert result.exit_code == 2
    assert f"{every_other_day}:{line}: schedule='rate(2 days)' cannot run on GCP: every 2 days" in result.stderr
    assert workflows.requests == []
