"""Stages placed on a container and on serverless Spark, on GCP: the workflow runs the first as a Cloud Run job
execution of one task and the second as a Dataproc Serverless batch, both through their connectors. Executed by
workflows-emulator with the connectors answered in-process by the runtime's job entry and its serverless Spark
entry (and every http.post by the Cloud Run service app), the outputs equal `sparkflow run`'s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from sparkflow.targets.gcp.deploy import needed_env
from tests.gcp.conftest import SCHEMA
from tests.gcp.test_gcp_runtime import CloudRunService, deploy_env, execute
from tests.placement_data import write_inputs
from tests.runtime.reference import committed_rows

PLACEMENT = Path(__file__).resolve().parents[1] / "resources" / "placement.py"
PROJECT, LOCATION = "demo-project", "europe-west1"
DEPLOYED = {
    "GOOGLE_CLOUD_PROJECT_ID": PROJECT,
    "GOOGLE_CLOUD_LOCATION": LOCATION,
    "SPARKFLOW_CONTAINER_JOB_32768MB": "placement-32768mb",
    "SPARKFLOW_DATAPROC_ENTRY": "gs://code/sparkflow_entry.py",
    "SPARKFLOW_DATAPROC_IMAGE": "europe-docker.pkg.dev/demo-project/sparkflow/spark:1",
    "SPARKFLOW_DATAPROC_SERVICE_ACCOUNT": "stages@demo-project.iam.gserviceaccount.com",
}


class Connectors:
    """Stands in for the Cloud Run jobs and Dataproc batches connectors, running the real entries here."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []

    def __call__(self, step: dict[str, Any]) -> dict[str, Any]:
        from sparkflow.runtime import cloudrun, cluster

        args = step["args"]
        if step["call"] == "googleapis.run.v2.projects.locations.jobs.run":
            assert args["name"] == f"projects/{PROJECT}/locations/{LOCATION}/jobs/placement-32768mb"
            overrides = args["body"]["overrides"]
            assert overrides["taskCount"] == 1
            (env,) = overrides["containerOverrides"][0]["env"]
            node = json.loads(env["value"])["node"]
            self.runs.append(("job", node))
            cloudrun.run_task({cloudrun.EVENT_VARIABLE: env["value"], cloudrun.INDEX_VARIABLE: "0"})
            return {"name": "operations/run", "done": True, "response": {"succeededCount": 1}}
        assert step["call"] == "googleapis.dataproc.v1.projects.locations.batches.create"
        assert args["parent"] == f"projects/{PROJECT}/locations/{LOCATION}"
        body = args["body"]
        assert body["pysparkBatch"]["mainPythonFileUri"] == DEPLOYED["SPARKFLOW_DATAPROC_ENTRY"]
        assert body["runtimeConfig"]["containerImage"] == DEPLOYED["SPARKFLOW_DATAPROC_IMAGE"]
        (event,) = body["pysparkBatch"]["args"]
        node = json.loads(event)["node"]
        self.runs.append(("batch", node))
        if cluster.main([event]) != 0:
            from workflows_emulator.utils import WorkflowError

            raise WorkflowError(message=f"batch for {node} failed", tags=["OperationError"])
        return {"name": f"projects/{PROJECT}/locations/{LOCATION}/batches/{node}", "state": "SUCCEEDED"}


def test_definition_follows_the_workflows_schema_and_names_its_settings() -> None:
    text = compile_pipeline(load_pipeline(str(PLACEMENT)), "gcp")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(yaml.safe_load(text))
    ]
    assert errors == []
    assert needed_env(text) == [
        "SPARKFLOW_SERVICE_URL",
        "SPARKFLOW_STORAGE_ROOT",
        "SPARKFLOW_CONTAINER_JOB_32768MB",
        "SPARKFLOW_DATAPROC_ENTRY",
        "SPARKFLOW_DATAPROC_IMAGE",
        "SPARKFLOW_DATAPROC_SERVICE_ACCOUNT",
    ]


@pytest.mark.spark
def test_container_and_serverless_spark_stages_run_through_the_workflow(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workflows_emulator.main as emulator

    pipeline = load_pipeline(str(PLACEMENT))
    inputs = write_inputs(tmp_path / "data")
    deploy_env(monkeypatch, PLACEMENT, tmp_path / "gcs", "2b0c6d9e-0000-4000-8000-00000000000d")
    for name, value in {**DEPLOYED, "SPARKFLOW_ALLOWED_INPUTS": f"{tmp_path / 'data'}/"}.items():
        monkeypatch.setenv(name, value)
    connectors = Connectors()
    monkeypatch.setattr(emulator.StepCall, "execute_connector", staticmethod(connectors))
    service = CloudRunService()
    try:
        output = execute(compile_pipeline(pipeline, "gcp"), service, monkeypatch, {"sources": inputs})
    except Exception as error:
        raise AssertionError(f"the workflow failed; the runtime answered: {service.errors}") from error
    assert sorted(connectors.runs) == [("batch", "history"), ("batch", "sessions"), ("job", "visitors")]
    assert [node for node, _ in service.calls] == ["report", "publish"]
    local = run_plan(plan_pipeline(pipeline, "gcp"), pipeline, storage_root=str(tmp_path / "local"), inputs=inputs)
    report = output["outputs"]["report"]
    assert committed_rows(spark, report) == committed_rows(spark, local.outputs["report"])
