"""A triggered pipeline on GCP: the workflow turns the CloudEvent Eventarc passes it into the run's sources (run in
workflows-emulator with a real ``google.cloud.storage.object.v1.finalized`` event), and ends without a run for an
object outside the watched folder; ``package`` writes the Eventarc trigger, and ``deploy`` / ``delete`` create,
update and delete it with the official ``google-cloud-eventarc`` client against a local stand-in of the Eventarc REST
API (the requests' fields asserted), beside the workflow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.targets.gcp.emit import TRIGGER_FOLDER_ENV, TRIGGER_SOURCES_ENV
from tests.gcp.conftest import RUN_ID, Execute, FakeEventarcApi, FakeWorkflowsApi, StageDouble, compiled

ARRIVALS = Path(__file__).resolve().parents[1] / "ship" / "resources" / "arrivals" / "pipeline.py"
PLACE = "projects/proj-1/locations/europe-west1"
TRIGGER = f"{PLACE}/triggers/arrivals-objects"
WORKFLOW = f"{PLACE}/workflows/arrivals"
ACCOUNT = "events@proj-1.iam.gserviceaccount.com"


def cloud_event(bucket: str, name: str) -> dict[str, Any]:
    """The argument Workflows gives an execution Eventarc starts for a new object: the CloudEvent in JSON, its data the
    Cloud Storage object (https://cloud.google.com/eventarc/docs/workflows/cloudevents)."""
    return {
        "data": {
            "bucket": bucket,
            "name": name,
            "contentType": "text/plain",
            "generation": "1733230000000000",
            "size": "24",
            "timeCreated": "2026-12-03T13:00:00.000Z",
            "kind": "storage#object",
        },
        "datacontenttype": "application/json",
        "id": "9876543210",
        "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "specversion": "1.0",
        "subject": f"objects/{name}",
        "time": "2026-12-03T13:00:00.000Z",
        "type": "google.cloud.storage.object.v1.finalized",
    }


@pytest.fixture
def triggered(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    plan, text = compiled(ARRIVALS)
    monkeypatch.setenv(TRIGGER_FOLDER_ENV, "gs://landing/books/")
    monkeypatch.setenv(TRIGGER_SOURCES_ENV, json.dumps({"other": "gs://landing/other/"}))
    return plan, text


def test_a_new_object_under_the_folder_becomes_the_runs_source(triggered: tuple[Any, str], workflows: Execute) -> None:
    plan, text = triggered
    double = StageDouble(plan)
    result = workflows(text, double, cloud_event("landing", "books/2026/12-03.txt"))
    assert double.problems == []
    assert double.calls == ["shout"]
    (event,) = double.events
    wanted = {"sources": {"other": "gs://landing/other/", "books": "gs://landing/books/2026/12-03.txt"}}
    assert event["run"]["params"] == wanted
    assert result["run_id"] == RUN_ID and set(result["outputs"]) == {"shout"}


@pytest.mark.parametrize(
    ("bucket", "name"),
    [("landing", "elsewhere/new.txt"), ("landing", "books/sub/"), ("landing", "book"), ("landing", "books")],
)
def test_an_object_outside_the_folder_ends_the_execution_without_a_run(
    triggered: tuple[Any, str], workflows: Execute, bucket: str, name: str
) -> None:
    plan, text = triggered
    double = StageDouble(plan)
    result = workflows(text, double, cloud_event(bucket, name))
    assert result == {"run_id": RUN_ID, "skipped": f"gs://{bucket}/{name}"}
    assert double.calls == [] and double.published == []


def test_a_started_run_of_a_triggered_pipeline_reads_what_it_is_given(
    triggered: tuple[Any, str], workflows: Execute
) -> None:
    plan, text = triggered
    double = StageDouble(plan)
    workflows(text, double, {"sources": {"books": "gs://landing/books/by-hand.txt"}})
    assert [event["run"]["params"] for event in double.events] == [
        {"sources": {"books": "gs://landing/books/by-hand.txt"}}
    ]


def test_package_writes_the_trigger_deploy_creates(tmp_path: Path) -> None:
    args = ["package", str(ARRIVALS), "--target", "gcp", "--out", str(tmp_path), "--storage-root", "gs://b/sf"]
    result = CliRunner().invoke(main, [*args, "--input", "books=gs://landing/books/"])
    assert result.exit_code == 0, result.output
    assert "the Eventarc trigger that starts a run for each new object under gs://landing/books/" in result.stdout
    trigger = json.loads((tmp_path / "eventarc-trigger.json").read_text())
    assert trigger["name"] == "projects/PROJECT_ID/locations/REGION/triggers/arrivals-objects"
    assert trigger["serviceAccount"] == "SERVICE_ACCOUNT_EMAIL"
    refused = CliRunner().invoke(main, args)  # the declared s3:// folder: no Cloud Storage event comes from there
    assert refused.exit_code != 0
    assert "is in S3, but this target is triggered by Cloud Storage events: pass --input books=gs://" in refused.output


def test_deploy_creates_updates_and_delete_removes_the_trigger(
    workflows_api: tuple[FakeWorkflowsApi, Any],
    eventarc_api: tuple[FakeEventarcApi, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from google.cloud import eventarc_v1, workflows_v1

    workflows, workflows_client = workflows_api
    eventarc, eventarc_client = eventarc_api
    monkeypatch.setattr(workflows_v1, "WorkflowsClient", lambda: workflows_client)
    monkeypatch.setattr(eventarc_v1, "EventarcClient", lambda: eventarc_client)
    args = ["deploy", str(ARRIVALS), "--target", "gcp", "--project", "proj-1", "--region", "europe-west1"]
    args += ["--service-url", "https://stages-abc.a.run.app", "--storage-root", "gs://b/sf"]
    args += ["--input", "books=gs://landing/books/"]

    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert "--trigger-service-account (the pipeline declares a trigger)" in refused.stderr
    assert workflows.requests == [] and eventarc.requests == []

    created = CliRunner().invoke(main, [*args, "--trigger-service-account", ACCOUNT])
    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == WORKFLOW
    assert f"Eventarc trigger {TRIGGER}: a run for each new object under gs://landing/books/" in created.stderr
    deployed = workflows.workflows[WORKFLOW]
    assert deployed["labels"] == {"sparkflow-trigger": "eventarc"}
    assert deployed["userEnvVars"]["SPARKFLOW_TRIGGER_FOLDER"] == "gs://landing/books/"
    assert json.loads(deployed["userEnvVars"]["SPARKFLOW_TRIGGER_SOURCES"]) == {}
    (get, (method, path, query, body)) = eventarc.requests
    assert get[:2] == ("GET", f"/v1/{TRIGGER}")
    assert (method, path, query["triggerId"]) == ("POST", f"/v1/{PLACE}/triggers", ["arrivals-objects"])
    assert sorted((item["attribute"], item["value"]) for item in body["eventFilters"]) == [
        ("bucket", "landing"),
        ("type", "google.cloud.storage.object.v1.finalized"),
    ]
    assert body["destination"] == {"workflow": WORKFLOW} and body["serviceAccount"] == ACCOUNT

    eventarc.requests.clear()
    again = CliRunner().invoke(main, [*args, "--trigger-service-account", ACCOUNT])
    assert again.exit_code == 0, again.output
    assert [request[0] for request in eventarc.requests] == ["GET"]  # nothing changed, nothing written

    eventarc.requests.clear()
    moved = [*args[:-1], "books=gs://landing-2/books/"]
    changed = CliRunner().invoke(main, [*moved, "--trigger-service-account", ACCOUNT])
    assert changed.exit_code == 0, changed.output
    (_, (method, path, query, _)) = eventarc.requests
    assert (method, path, query["updateMask"]) == ("PATCH", f"/v1/{TRIGGER}", ["eventFilters"])
    assert {"attribute": "bucket", "value": "landing-2"} in eventarc.triggers[TRIGGER]["eventFilters"]

    # The trigger removed from the pipeline: deploy deletes it and the workflow's label.
    untriggered = tmp_path / "pipeline.py"
    untriggered.write_text(ARRIVALS.read_text().replace(', trigger=sf.on_new_objects("books")', ""))
    removed = CliRunner().invoke(main, [args[0], str(untriggered), *args[2:]])
    assert removed.exit_code == 0, removed.output
    assert "deleted the Eventarc trigger of arrivals" in removed.stderr
    assert eventarc.triggers == {} and workflows.workflows[WORKFLOW].get("labels") == {}

    CliRunner().invoke(main, [*args, "--trigger-service-account", ACCOUNT])
    assert TRIGGER in eventarc.triggers
    place = ["--project", "proj-1", "--region", "europe-west1"]
    deleted = CliRunner().invoke(main, ["delete", str(ARRIVALS), "--target", "gcp", *place])
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == f"deleted {WORKFLOW} and {TRIGGER}"
    assert eventarc.triggers == {} and workflows.workflows == {}
