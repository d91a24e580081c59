"""A triggered pipeline's Eventarc trigger: each new object (``google.cloud.storage.object.v1.finalized``) of the
watched bucket executes the pipeline's workflow with the event as its argument, authenticated as the service account
the user names (it needs ``roles/workflows.invoker`` and ``roles/eventarc.eventReceiver``; the project's Cloud Storage
service agent needs ``roles/pubsub.publisher``). Eventarc filters Cloud Storage events on the bucket only: the
workflow's ``run-event`` step keeps the objects under the watched folder (:mod:`sparkflow.targets.gcp.emit`).

(https://cloud.google.com/eventarc/docs/workflows/quickstart-storage,
https://cloud.google.com/eventarc/docs/reference/rest/v1/projects.locations.triggers)

``trigger_document`` is the trigger as the Eventarc REST API (v1) takes it, which ``package`` writes and ``deploy``
creates or updates with the official ``google-cloud-eventarc`` client, imported on first use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sparkflow.plan import Plan, StartTrigger
from sparkflow.targets.gcp.emit import OBJECT_FINALIZED, TRIGGER_FOLDER_ENV, TRIGGER_SOURCES_ENV
from sparkflow.triggers import WatchedFolder, deployed_folder

if TYPE_CHECKING:
    from google.cloud.eventarc_v1 import EventarcClient

# The fields deploy compares and updates (what the watched bucket or the service account change).
_UPDATED = ("event_filters", "service_account", "destination")
_OPERATION_TIMEOUT_S = 300


def watched(plan: Plan, trigger: StartTrigger, inputs: Mapping[str, str], storage_root: str | None) -> WatchedFolder:
    """The Cloud Storage folder the trigger watches (raises PackageError at the trigger's line when it cannot)."""
    return deployed_folder(plan, trigger, inputs, "gs", storage_root)


def trigger_env(plan: Plan, trigger: StartTrigger, folder: WatchedFolder, inputs: Mapping[str, str]) -> dict[str, str]:
    """The workflow's variables ``run-event`` reads: the watched folder, and where the other sources are read."""
    others = {name: uri for name, uri in sorted(inputs.items()) if name != trigger.source}
    return {TRIGGER_FOLDER_ENV: folder.uri, TRIGGER_SOURCES_ENV: json.dumps(others)}


def trigger_name(pipeline: str, project: str, region: str) -> str:
    """The trigger's resource name: ``<pipeline>-objects`` beside the workflow (lower case, '-' for '_')."""
    return f"projects/{project}/locations/{region}/triggers/{pipeline.replace('_', '-').lower()}-objects"


def trigger_document(
    plan: Plan, folder: WatchedFolder, project: str, region: str, service_account: str
) -> dict[str, Any]:
    """The trigger in the REST API's JSON form."""
    return {
        "name": trigger_name(plan.pipeline, project, region),
        "eventFilters": [
            {"attribute": "type", "value": OBJECT_FINALIZED},
            {"attribute": "bucket", "value": folder.bucket},
        ],
        "serviceAccount": service_account,
        "destination": {"workflow": f"projects/{project}/locations/{region}/workflows/{plan.pipeline}"},
    }


def apply_trigger(document: Mapping[str, Any], *, client: EventarcClient | None = None) -> str:
    """Create the trigger, or update the fields that differ (nothing when none does); return its name.

    Raises:
        DeployError: the API refused or failed a call.
    """
    from google.api_core import exceptions
    from google.cloud import eventarc_v1

    from sparkflow.targets.gcp.deploy import DeployError

    eventarc = client if client is not None else eventarc_v1.EventarcClient()
    wanted = eventarc_v1.Trigger.from_json(json.dumps(document))
    name = str(document["name"])
    parent, trigger_id = name.rsplit("/triggers/", 1)
    try:
        try:
            current = eventarc.get_trigger(name=name)
        except exceptions.NotFound:
            request = {"parent": parent, "trigger": wanted, "trigger_id": trigger_id, "validate_only": False}
            _wait(eventarc.create_trigger(request=request))
            return name
        changed = [field for field in _UPDATED if _compared(current, field) != _compared(wanted, field)]
        if changed:
            _wait(
                eventarc.update_trigger(
                    request={"trigger": wanted, "update_mask": {"paths": changed}, "validate_only": False}
                )
            )
    except exceptions.GoogleAPICallError as error:
        raise DeployError(f"deploying the Eventarc trigger {name} failed: {error.message or error}") from error
    return name


def _wait(operation: Any) -> None:
    """Block until a long-running operation is done; raises the API's error if it failed."""
    operation.result(timeout=_OPERATION_TIMEOUT_S)


def _compared(trigger: Any, field: str) -> Any:
    value = getattr(trigger, field)
    if field == "event_filters":  # an unordered list
        return sorted((item.attribute, item.value, item.operator) for item in value)
    return value


def delete_trigger(name: str, *, client: EventarcClient | None = None) -> bool:
    """Delete the trigger ``name``; False when there was none.

    Raises:
        DeployError: the API refused or failed the deletion.
    """
    from google.api_core import exceptions
    from google.cloud import eventarc_v1

    from sparkflow.targets.gcp.deploy import DeployError

    eventarc = client if client is not None else eventarc_v1.EventarcClient()
    try:
        _wait(eventarc.delete_trigger(request={"name": name, "validate_only": False}))
    except exceptions.NotFound:
        return False
    except exceptions.GoogleAPICallError as error:
        raise DeployError(f"deleting the Eventarc trigger {name} failed: {error.message or error}") from error
    return True
