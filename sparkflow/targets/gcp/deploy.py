"""Create, update or delete a pipeline's workflow with the official ``google-cloud-workflows`` client.

Idempotent: the workflow is read first; it is created when missing, updated only in the fields that differ
(source, environment variables), and left alone when both already match, so deploying twice in a row makes
no new revision. Nothing but that one workflow is read or written.

>>> deploy("wordcount", text, "my-project", "europe-west1",
...        {"SPARKFLOW_SERVICE_URL": "https://...run.app", "SPARKFLOW_STORAGE_ROOT": "gs://bucket/sparkflow/"})
... # doctest: +SKIP
'projects/my-project/locations/europe-west1/workflows/wordcount'

The client is imported on first use: compiling never needs it. Install it with ``pip install sparkflow[gcp]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sparkflow.errors import DefinitionError, SparkflowError
from sparkflow.layout import with_slash
from sparkflow.targets.gcp.emit import DEPLOY_ENV, STORAGE_ROOT_ENV

if TYPE_CHECKING:
    from google.cloud.workflows_v1 import WorkflowsClient

# Workflow ids: "Must contain only letters, numbers, underscores and hyphens. Must start with a letter. Must be
# between 1-64 characters. Must end with a number or a letter."
# (https://cloud.google.com/workflows/docs/reference/rest/v1/projects.locations.workflows/create)
_WORKFLOW_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?$")
# Project ids: 6 to 30 lowercase letters, digits and hyphens, starting with a letter
# (https://cloud.google.com/resource-manager/docs/creating-managing-projects); locations like "europe-west1".
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
# User-defined environment variables: keys "can't be an empty string" nor start with "GOOGLE_" or "WORKFLOWS_"
# (https://cloud.google.com/workflows/docs/use-environment-variables#reserved-names).
_RESERVED_ENV_PREFIXES = ("GOOGLE_", "WORKFLOWS_")
# The label of a workflow deployed with a Cloud Scheduler job: a later deploy without a schedule, and delete, know
# from it that there is a job to delete (labels: lower case letters, digits, '_' and '-').
SCHEDULED_LABEL = ("sparkflow-schedule", "cloud-scheduler")
# The same for a triggered pipeline's Eventarc trigger.
TRIGGERED_LABEL = ("sparkflow-trigger", "eventarc")
# Long-running create/update operations usually finish in seconds; this bounds a stuck one.
_OPERATION_TIMEOUT_S = 300


class DeployError(SparkflowError, RuntimeError):
    """The Workflows API refused or failed a deployment."""


def deploy(
    pipeline_name: str,
    definition_text: str,
    project: str,
    region: str,
    env: Mapping[str, str],
    *,
    labels: Mapping[str, str] | None = None,
    client: WorkflowsClient | None = None,
) -> str:
    """Create the workflow ``pipeline_name`` in ``project``/``region``, or bring it up to date.

    Args:
        pipeline_name: the workflow id (the pipeline's name).
        definition_text: the compiled ``.workflows.yaml`` text, deployed as it is.
        project: the Google Cloud project id.
        region: the Workflows location, e.g. ``europe-west1``.
        env: user-defined environment variables; must hold every name the definition reads
            (``SPARKFLOW_SERVICE_URL``, ``SPARKFLOW_STORAGE_ROOT``). The storage root gets its one trailing ``/``.
            They replace the workflow's variables as a whole.
        labels: the workflow's labels (sparkflow marks a scheduled pipeline's workflow with
            :data:`SCHEDULED_LABEL`), replacing its labels as a whole.
        client: a ``WorkflowsClient`` to use (tests point one at a local endpoint); by default one with the
            application default credentials.

    Returns:
        The workflow's resource name, ``projects/P/locations/R/workflows/ID``.

    Raises:
        DefinitionError: a bad workflow id or environment, before anything is sent.
        DeployError: the API refused or failed a call.
    """
    wanted_env = _checked_env(env, definition_text)
    if not _WORKFLOW_ID.match(pipeline_name):
        raise DefinitionError(
            f"pipeline {pipeline_name!r} cannot be a workflow id (letters, digits, '_' and '-', starting with a "
            "letter, ending with a letter or digit, at most 64 characters): rename the pipeline"
        )
    _check_place(project, region)
    from google.api_core import exceptions
    from google.cloud import workflows_v1

    workflows = client if client is not None else workflows_v1.WorkflowsClient()
    parent = f"projects/{project}/locations/{region}"
    name = f"{parent}/workflows/{pipeline_name}"
    wanted_labels = dict(labels or {})
    try:
        try:
            current = workflows.get_workflow(name=name)
        except exceptions.NotFound:
            workflow = workflows_v1.Workflow(
                source_contents=definition_text, user_env_vars=wanted_env, labels=wanted_labels
            )
            _wait(workflows.create_workflow(parent=parent, workflow=workflow, workflow_id=pipeline_name))
            return name
        changed = []
        if current.source_contents != definition_text:
            changed.append("source_contents")
        if dict(current.user_env_vars) != wanted_env:
            changed.append("user_env_vars")
        if dict(current.labels) != wanted_labels:
            changed.append("labels")
        if changed:
            workflow = workflows_v1.Workflow(
                name=name, source_contents=definition_text, user_env_vars=wanted_env, labels=wanted_labels
            )
            _wait(workflows.update_workflow(request={"workflow": workflow, "update_mask": {"paths": changed}}))
    except exceptions.GoogleAPICallError as error:
        raise DeployError(f"deploying workflow {name} failed: {error.message or error}") from error
    return name


def labels_of(
    pipeline_name: str, project: str, region: str, *, client: WorkflowsClient | None = None
) -> dict[str, str]:
    """The labels of the deployed workflow ``pipeline_name`` (empty when there is none): whether a schedule job was
    deployed with it (:data:`SCHEDULED_LABEL`).

    Raises:
        DeployError: the API refused or failed the reading.
    """
    _check_place(project, region)
    from google.api_core import exceptions
    from google.cloud import workflows_v1

    workflows = client if client is not None else workflows_v1.WorkflowsClient()
    name = f"projects/{project}/locations/{region}/workflows/{pipeline_name}"
    try:
        return dict(workflows.get_workflow(name=name).labels)
    except exceptions.NotFound:
        return {}
    except exceptions.GoogleAPICallError as error:
        raise DeployError(f"reading workflow {name} failed: {error.message or error}") from error


def delete(pipeline_name: str, project: str, region: str, *, client: WorkflowsClient | None = None) -> str:
    """Delete the workflow ``pipeline_name`` (and with it its executions' history); return its resource name.
    Nothing else is touched: the Cloud Run service and jobs were deployed with gcloud, and the data stays.

    Raises:
        DefinitionError: a malformed project or region, before anything is sent.
        DeployError: there is no such workflow, or the API refused or failed the deletion.
    """
    _check_place(project, region)
    from google.api_core import exceptions
    from google.cloud import workflows_v1

    workflows = client if client is not None else workflows_v1.WorkflowsClient()
    name = f"projects/{project}/locations/{region}/workflows/{pipeline_name}"
    try:
        _wait(workflows.delete_workflow(name=name))
    except exceptions.NotFound:
        raise DeployError(
            f"no workflow {name}: nothing was deleted; pass the --project and --region it was deployed to"
        ) from None
    except exceptions.GoogleAPICallError as error:
        raise DeployError(f"deleting workflow {name} failed: {error.message or error}") from error
    return name


def _check_place(project: str, region: str) -> None:
    if not (_PROJECT.match(project) and _REGION.match(region)):
        raise DefinitionError(
            f"project and region must be a Google Cloud project id and location (e.g. 'my-project' and "
            f"'europe-west1'), got {project!r} and {region!r}"
        )


def _wait(operation: Any) -> None:
    """Block until a long-running create or update is done; raises the API's error if it failed."""
    operation.result(timeout=_OPERATION_TIMEOUT_S)


def needed_env(definition_text: str) -> list[str]:
    """The user-defined variables a definition reads (``sys.get_env``; Workflows' own GOOGLE_* ones aside):
    always the service URL and storage root; the Cloud Run jobs of fan-outs and container stages, and the
    Dataproc settings of serverless Spark stages, where the definition has them."""
    read = {name for name in _GET_ENV.findall(definition_text) if not name.startswith(_RESERVED_ENV_PREFIXES)}
    return [*DEPLOY_ENV, *sorted(read - set(DEPLOY_ENV))]


_GET_ENV = re.compile(r'sys\.get_env\("([^"]+)"\)')


def _checked_env(env: Mapping[str, str], definition_text: str) -> dict[str, str]:
    needed = needed_env(definition_text)
    problems = [f"{key!r} is reserved" for key in env if not key or key.startswith(_RESERVED_ENV_PREFIXES)]
    problems += [f"{key!r} must be a string" for key, value in env.items() if not isinstance(value, str)]
    problems += [f"{key!r} is missing" for key in needed if not env.get(key)]
    if problems:
        raise DefinitionError(
            f"workflow environment: {'; '.join(problems)}: pass {', '.join(needed)} "
            f"and no name that is empty or starts with {' or '.join(_RESERVED_ENV_PREFIXES)}"
        )
    checked = dict(env)
    # The workflow appends paths to the storage root, so it must end in exactly one '/'.
    checked[STORAGE_ROOT_ENV] = with_slash(checked[STORAGE_ROOT_ENV])
    return checked
