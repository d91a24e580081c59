"""A scheduled pipeline's Cloud Scheduler job: at each time of the pipeline's schedule it calls the Workflows
executions API for the pipeline's workflow, with the argument ``sparkflow start`` gives a run, authenticated by an
OAuth token of the service account the user names (it needs ``roles/workflows.invoker``).

(https://cloud.google.com/scheduler/docs/tut-workflows,
https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions/create)

``job_document`` is the job as the Cloud Scheduler REST API (v1) takes it, which ``package`` writes and ``deploy``
creates or updates with the official ``google-cloud-scheduler`` client, imported on first use.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sparkflow.plan import Plan, StartSchedule
from sparkflow.targets.gcp.cron import unix_cron
from sparkflow.targets.runs import run_input

if TYPE_CHECKING:
    from google.cloud.scheduler_v1 import CloudSchedulerClient

EXECUTIONS_API = "https://workflowexecutions.googleapis.com/v1"
OAUTH_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TIME_ZONE = "Etc/UTC"  # the schedule is declared in UTC, as EventBridge Scheduler reads it on AWS
# The fields deploy compares and updates (what a user's schedule, inputs or service account change).
_UPDATED = ("description", "schedule", "time_zone", "http_target")


def job_name(pipeline: str, project: str, region: str) -> str:
    """The job's resource name: ``<pipeline>-schedule`` beside the workflow (a job id takes letters, digits, '-'
    and '_', as a pipeline name does)."""
    return f"projects/{project}/locations/{region}/jobs/{pipeline}-schedule"


def job_document(
    plan: Plan, schedule: StartSchedule, project: str, region: str, service_account: str, inputs: Mapping[str, str]
) -> dict[str, Any]:
    """The job in the REST API's JSON form (``body`` is base64, as proto3 JSON writes bytes).

    Raises:
        PackageError: the schedule has no unix-cron equivalent (names the pipeline's line).
    """
    workflow = f"projects/{project}/locations/{region}/workflows/{plan.pipeline}"
    body = json.dumps({"argument": run_input(inputs)}).encode()
    return {
        "name": job_name(plan.pipeline, project, region),
        "description": f"sparkflow pipeline {plan.pipeline}: starts a run on {schedule.expression} (UTC).",
        "schedule": unix_cron(schedule),
        "timeZone": TIME_ZONE,
        "httpTarget": {
            "uri": f"{EXECUTIONS_API}/{workflow}/executions",
            "httpMethod": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": base64.b64encode(body).decode(),
            "oauthToken": {"serviceAccountEmail": service_account, "scope": OAUTH_SCOPE},
        },
    }


def apply_job(document: Mapping[str, Any], *, client: CloudSchedulerClient | None = None) -> str:
    """Create the job, or update the fields that differ (nothing when none does); return its name.

    Raises:
        DeployError: the API refused or failed a call.
    """
    from google.api_core import exceptions
    from google.cloud import scheduler_v1

    from sparkflow.targets.gcp.deploy import DeployError

    scheduler = client if client is not None else scheduler_v1.CloudSchedulerClient()
    wanted = scheduler_v1.Job.from_json(json.dumps(document))
    name = str(document["name"])
    try:
        try:
            current = scheduler.get_job(name=name)
        except exceptions.NotFound:
            scheduler.create_job(parent=name.rsplit("/jobs/", 1)[0], job=wanted)
            return name
        changed = [field for field in _UPDATED if getattr(current, field) != getattr(wanted, field)]
        if changed:
            scheduler.update_job(job=wanted, update_mask={"paths": changed})
    except exceptions.GoogleAPICallError as error:
        raise DeployError(f"deploying the schedule job {name} failed: {error.message or error}") from error
    return name


def delete_job(name: str, *, client: CloudSchedulerClient | None = None) -> bool:
    """Delete the job ``name``; False when there was none.

    Raises:
        DeployError: the API refused or failed the deletion.
    """
    from google.api_core import exceptions
    from google.cloud import scheduler_v1

    from sparkflow.targets.gcp.deploy import DeployError

    scheduler = client if client is not None else scheduler_v1.CloudSchedulerClient()
    try:
        scheduler.delete_job(name=name)
    except exceptions.NotFound:
        return False
    except exceptions.GoogleAPICallError as error:
        raise DeployError(f"deleting the schedule job {name} failed: {error.message or error}") from error
    return True
