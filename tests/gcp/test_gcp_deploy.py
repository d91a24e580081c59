"""deploy() and delete() against a local stand-in for the Workflows REST API: create, update what changed, then
nothing; delete the workflow and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from sparkflow.errors import DefinitionError
from sparkflow.targets.gcp.deploy import DeployError, delete, deploy
from sparkflow.targets.gcp.package import resource_name
from tests.gcp.conftest import EXAMPLES, FakeWorkflowsApi, compiled

NAME = "projects/proj-1/locations/europe-west1/workflows/{}"
ENV = {
    "SPARKFLOW_SERVICE_URL": "https://runtime-abc-ew.a.run.app",
    "SPARKFLOW_STORAGE_ROOT": "gs://bucket/sparkflow",
    "SPARKFLOW_JOB": "wordcount-chunks",  # the examples fan out, so their workflows also run the job
    # clickstream's slow_threshold and slow_pages read more than a Cloud Run function holds: a container job
    "SPARKFLOW_CONTAINER_JOB_8192MB": "clickstream-8192mb",
}


def writes(api: FakeWorkflowsApi) -> list[tuple[str, str, dict[str, list[str]], Any]]:
    return [request for request in api.requests if request[0] != "GET"]


def test_create_then_update_then_nothing(workflows_api: tuple[FakeWorkflowsApi, Any]) -> None:
    api, client = workflows_api
    plan, text = compiled(EXAMPLES[0])
    name = NAME.format(plan.pipeline)
    other = NAME.format("someone_else")
    api.workflows[other] = {"name": other, "sourceContents": "main: {steps: []}", "revisionId": "000009-xyz"}
    before_other = dict(api.workflows[other])

    assert deploy(plan.pipeline, text, "proj-1", "europe-west1", ENV, client=client) == name
    ((method, path, query, body),) = writes(api)
    assert (method, path, query["workflowId"]) == (
        "POST",
        "/v1/projects/proj-1/locations/europe-west1/workflows",
        [plan.pipeline],
    )
    assert body["sourceContents"] == text
    assert body["userEnvVars"] == {**ENV, "SPARKFLOW_STORAGE_ROOT": "gs://bucket/sparkflow/"}  # one trailing '/'
    created_revision = api.workflows[name]["revisionId"]

    api.requests.clear()
    changed = {**ENV, "SPARKFLOW_SERVICE_URL": "https://runtime-def-ew.a.run.app"}
    assert deploy(plan.pipeline, text, "proj-1", "europe-west1", changed, client=client) == name
    ((method, path, query, body),) = writes(api)
    assert (method, path) == ("PATCH", f"/v1/{name}")
    assert query["updateMask"] == ["userEnvVars"]  # the source did not change, so it is not sent as changed
    assert api.workflows[name]["userEnvVars"]["SPARKFLOW_SERVICE_URL"] == "https://runtime-def-ew.a.run.app"
    assert api.workflows[name]["sourceContents"] == text
    assert api.workflows[name]["revisionId"] != created_revision

    api.requests.clear()
    assert deploy(plan.pipeline, text, "proj-1", "europe-west1", changed, client=client) == name
    assert [(method, path) for method, path, _, _ in api.requests] == [("GET", f"/v1/{name}")]

    api.requests.clear()
    new_text = text.replace("timeout: 900", "timeout: 600")
    deploy(plan.pipeline, new_text, "proj-1", "europe-west1", changed, client=client)
    ((method, path, query, body),) = writes(api)
    assert (method, query["updateMask"]) == ("PATCH", ["sourceContents"])
    assert api.workflows[name]["sourceContents"] == new_text

    assert api.workflows[other] == before_other
    assert set(api.workflows) == {name, other}


def test_a_fan_out_needs_its_job_name(workflows_api: tuple[FakeWorkflowsApi, Any]) -> None:
    api, client = workflows_api
    fans_out = 'main: {steps: [{run: {call: sys.get_env, args: {name: x}, result: y}}]}  # sys.get_env("SPARKFLOW_JOB")'
    without_job = {key: value for key, value in ENV.items() if key != "SPARKFLOW_JOB"}
    with pytest.raises(DefinitionError, match=r"'SPARKFLOW_JOB' is missing"):
        deploy("wordcount", fans_out, "proj-1", "europe-west1", without_job, client=client)
    assert api.requests == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPARKFLOW_SERVICE_URL": "https://x"}, "'SPARKFLOW_STORAGE_ROOT' is missing"),
        ({**ENV, "GOOGLE_CLOUD_PROJECT_ID": "p"}, "'GOOGLE_CLOUD_PROJECT_ID' is reserved"),
    ],
)
def test_bad_environment_is_refused_before_any_request(
    env: dict[str, str], message: str, workflows_api: tuple[FakeWorkflowsApi, Any]
) -> None:
    api, client = workflows_api
    with pytest.raises(DefinitionError, match=message):
        deploy("wordcount", "main: {}", "proj-1", "europe-west1", env, client=client)
    assert api.requests == []


def test_pipeline_name_that_is_no_workflow_id_is_refused(workflows_api: tuple[FakeWorkflowsApi, Any]) -> None:
    api, client = workflows_api
    with pytest.raises(DefinitionError, match="cannot be a workflow id"):
        deploy("trailing_", "main: {}", "proj-1", "europe-west1", ENV, client=client)
    assert api.requests == []


def test_api_errors_become_deploy_errors(workflows_api: tuple[FakeWorkflowsApi, Any]) -> None:
    _, client = workflows_api
    with pytest.raises(DeployError, match=r"deploying workflow projects/proj-1/locations/denied/workflows/wordcount "):
        deploy("wordcount", "main: {}", "proj-1", "denied", ENV, client=client)


@pytest.mark.parametrize(("project", "region"), [("proj-1", "europe-west1/../x"), ("Proj 1", "europe-west1")])
def test_malformed_project_or_region_is_refused(project: str, region: str) -> None:
    with pytest.raises(DefinitionError, match="project and region"):
        deploy("wordcount", "main: {}", project, region, ENV)


def test_a_pipeline_named_with_dashes_deploys_under_its_own_name(workflows_api: tuple[FakeWorkflowsApi, Any]) -> None:
    api, client = workflows_api
    (example,) = [path for path in EXAMPLES if path.parent.name == "daily-revenue"]
    plan, text = compiled(example)
    assert deploy(plan.pipeline, text, "proj-1", "europe-west1", ENV, client=client) == NAME.format("daily-revenue")
    assert api.workflows[NAME.format("daily-revenue")]["sourceContents"] == text
    assert resource_name("Daily_Revenue-stages") == "daily-revenue-stages"  # Cloud Run: lower case, digits, '-'


def test_delete_removes_the_workflow_and_only_it(workflows_api: tuple[FakeWorkflowsApi, Any]) -> None:
    api, client = workflows_api
    plan, text = compiled(EXAMPLES[0])
    name = deploy(plan.pipeline, text, "proj-1", "europe-west1", ENV, client=client)
    other = deploy("someone_else", text, "proj-1", "europe-west1", ENV, client=client)
    assert delete(plan.pipeline, "proj-1", "europe-west1", client=client) == name
    assert list(api.workflows) == [other]
    assert writes(api)[-1][:2] == ("DELETE", f"/v1/{name}")
    with pytest.raises(DeployError, match=r"no workflow projects/proj-1/.*nothing was deleted; pass the --project"):
        delete(plan.pipeline, "proj-1", "europe-west1", client=client)
    with pytest.raises(DeployError, match=r"deleting workflow projects/proj-1/locations/denied/.* permission denied"):
        delete(plan.pipeline, "proj-1", "denied", client=client)
    with pytest.raises(DefinitionError, match="project and region"):
        delete(plan.pipeline, "Proj 1", "europe-west1", client=client)
