"""Every example's Workflows YAML, executed by workflows-emulator with every ``http.post`` answered in-process by
the sparkflow runtime's HTTP entry (the WSGI app Cloud Run serves), writes exactly what `sparkflow run` writes."""

from __future__ import annotations

import contextvars
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.http import app
from sparkflow.runtime.local import run_plan
from sparkflow.targets.gcp import emit as gcp_emit
from sparkflow.targets.gcp.emit import EXECUTION_ID_ENV, SERVICE_URL_ENV, STORAGE_ROOT_ENV
from tests.examples import PARAMS, example, long_but
from tests.runtime.configs import write_plan
from tests.runtime.reference import committed_rows, reference_outputs, rows

pytestmark = pytest.mark.spark
SERVICE_URL = "https://sparkflow-runtime-abc123-ew.a.run.app"


class CloudRunService:
    """Stands in for the Cloud Run service: each call is POSTed to the runtime's WSGI app in this process."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.plans: set[str] = set()  # the Plan digests the events named
        self.errors: list[str] = []  # the runtime's answers to refused calls, for the test's failure message

    def __call__(self, method: str, url: str, timeout: float = 300, body: Any = None, **_: Any) -> dict[str, Any]:
        assert (method, url) == ("POST", SERVICE_URL)
        data = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "CONTENT_LENGTH": str(len(data)),
            "CONTENT_TYPE": "application/json",
            "wsgi.input": io.BytesIO(data),
        }
        status: list[str] = []
        answer = b"".join(app(environ, lambda line, headers: status.append(line)))
        code = int(status[0].split()[0])
        self.calls.append((body.get("node", body.get("phase")), code))
        self.plans.add(body["run"].get("plan", "none"))
        if code != 200:
            self.errors.append(answer.decode())
        document = json.loads(answer)
        if code != 200:
            from workflows_emulator.utils import WorkflowError

            raise WorkflowError(  # what Workflows raises for an error status (HttpError, with the answer's body)
                message=f"HTTP server responded with error code {code}",
                tags=["HttpError"],
                code=code,
                headers={"Content-Type": "application/json"},
                body=document,
            )
        return {"code": code, "headers": {"Content-Type": "application/json"}, "body": document}


def execute(text: str, service: CloudRunService, monkeypatch: pytest.MonkeyPatch, args: Any) -> Any:
    import workflows_emulator.lib.http_utils as http_utils
    import workflows_emulator.main as emulator

    monkeypatch.setattr(http_utils, "request", service)
    monkeypatch.setattr(emulator, "sleep", lambda seconds: None)
    # A fresh context per execution: the emulator keeps variables in context variables (see tests/gcp/conftest.py).
    return contextvars.Context().run(emulator.execute_workflow, yaml.safe_load(text), {"args": args})


def deploy_env(monkeypatch: pytest.MonkeyPatch, path: Path, root: Path, run_id: str) -> None:
    for name, value in {
        EXECUTION_ID_ENV: run_id,
        STORAGE_ROOT_ENV: f"{root}/",  # the workflow's and the runtime's root: the same variable
        SERVICE_URL_ENV: SERVICE_URL,
        "SPARKFLOW_PIPELINE": str(path),
        "SPARKFLOW_PLAN": write_plan(load_pipeline(str(path)), root.parent / "plan", "gcp"),
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("path", long_but("wordcount", "clickstream", "top-words"))
def test_workflow_runs_the_runtime(spark: Any, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An example with parameters runs with values other than their defaults (``args`` = ``{"params": ...}``),
    and gives what one plain PySpark job with the same values gives."""
    pipeline = load_pipeline(str(path))
    root = tmp_path / "gcs"
    deploy_env(monkeypatch, path, root, "2b0c6d9e-0000-4000-8000-00000000000a")
    import workflows_emulator.main as emulator

    plan = plan_pipeline(pipeline, "gcp")
    job_env(monkeypatch, plan)  # whole stages that read more than a Cloud Run function holds run as container jobs
    jobs = CloudRunJobs(job=None)
    monkeypatch.setattr(emulator.StepCall, "execute_connector", staticmethod(jobs))
    service = CloudRunService()
    values = PARAMS.get(path.parent.name, {})
    try:
        output = execute(
            compile_pipeline(pipeline, "gcp"), service, monkeypatch, {"params": values} if values else None
        )
    except Exception as error:
        raise AssertionError(f"the workflow failed; the runtime answered: {service.errors}") from error
    called = {node for node, _ in service.calls} | jobs.nodes
    assert called == {task.id for task in plan.tasks} | {"publish"}
    assert service.plans == {plan.digest}  # every event named the Plan, and the runtime checked it
    local = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path / "local"), params=values)
    assert local.params == {**{name: p.default for name, p in pipeline.trace().params.items()}, **values}
    expected = reference_outputs(spark, pipeline, values) if values else {}
    for sink, location in output["outputs"].items():
        assert location.startswith(f"{root}/{pipeline.name}/{output['run_id']}/")
        assert committed_rows(spark, location) == committed_rows(spark, local.outputs[sink]), sink
        if values:  # the plain PySpark job with the same values
            assert committed_rows(spark, location) == rows(expected[sink]), sink


def test_refused_input_fails_the_workflow_naming_the_stage(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = example("wordcount")
    deploy_env(monkeypatch, path, tmp_path / "gcs", "2b0c6d9e-0000-4000-8000-00000000000b")
    service = CloudRunService()
    from workflows_emulator.utils import WorkflowError

    with pytest.raises(WorkflowError, match=r"stage counts of pipeline wordcount failed: .*error code 403") as failure:
        execute(compile_pipeline(load_pipeline(str(path)), "gcp"), service, monkeypatch, {"sources": {"books": "/etc"}})
    assert "'/etc' is outside the storage root" in json.dumps(failure.value.payload["cause"], default=str)
    assert service.calls == [("counts", 403)], "a 4xx answer is not retried (words runs inside counts' tasks)"


class CloudRunJobs:
    """Stands in for the Cloud Run jobs connector: runs ``taskCount`` tasks of the job in this process, each
    through the runtime's job entry with its own ``CLOUD_RUN_TASK_INDEX``. ``job``: the only job it expects (None:
    any job of the project, such as a container stage's)."""

    def __init__(self, job: str | None = "sparkflow-stages") -> None:
        self.job = job
        self.runs: list[tuple[str, int]] = []
        self.nodes: set[str] = set()

    def __call__(self, rendered_step: dict[str, Any]) -> dict[str, Any]:
        from sparkflow.runtime import cloudrun

        assert rendered_step["call"] == "googleapis.run.v2.projects.locations.jobs.run"
        args = rendered_step["args"]
        assert args["name"].startswith("projects/demo-project/locations/europe-west1/jobs/")
        assert self.job is None or args["name"].endswith(f"/jobs/{self.job}")
        overrides = args["body"]["overrides"]
        (env,) = overrides["containerOverrides"][0]["env"]
        assert env["name"] == cloudrun.EVENT_VARIABLE
        count = int(overrides["taskCount"])
        event = json.loads(env["value"])
        self.runs.append((event.get("phase", "whole"), count))
        self.nodes.add(event["node"])
        for index in range(count):
            cloudrun.run_task({cloudrun.EVENT_VARIABLE: env["value"], cloudrun.INDEX_VARIABLE: str(index)})
        return {"name": "operations/run", "done": True, "response": {"succeededCount": count}}


def job_env(monkeypatch: pytest.MonkeyPatch, plan: Any) -> None:
    """The project, the fan-out job and a job per container size, as a deploy sets them."""
    for name, value in {
        "GOOGLE_CLOUD_PROJECT_ID": "demo-project",
        "GOOGLE_CLOUD_LOCATION": "europe-west1",
        "SPARKFLOW_JOB": "sparkflow-stages",
        **{
            f"SPARKFLOW_CONTAINER_JOB_{task.memory_mb}MB": f"sparkflow-{task.memory_mb}mb"
            for task in plan.tasks
            if task.placement == "container"
        },
    }.items():
        monkeypatch.setenv(name, value)


def test_many_chunks_run_as_a_cloud_run_job(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import workflows_emulator.main as emulator

    path = example("clickstream")
    pipeline = load_pipeline(str(path))
    deploy_env(monkeypatch, path, tmp_path / "gcs", "2b0c6d9e-0000-4000-8000-00000000000c")
    job_env(monkeypatch, plan_pipeline(pipeline, "gcp"))
    jobs = CloudRunJobs(job=None)
    monkeypatch.setattr(emulator.StepCall, "execute_connector", staticmethod(jobs))
    # A parallel for of at most 3 iterations (20 when deployed) keeps the run small: the events file (~18 KB) in
    # chunks of 4 KB is more chunks than that.
    monkeypatch.setattr(gcp_emit, "PARALLEL_FOR_MAX", 3)
    service = CloudRunService()
    try:
        output = execute(compile_pipeline(pipeline, "gcp"), service, monkeypatch, {"chunk_bytes": 4096})
    except Exception as error:
        raise AssertionError(f"the workflow failed; the runtime answered: {service.errors}") from error
    assert ("map", jobs.runs[0][1]) == jobs.runs[0] and jobs.runs[0][1] > 3, jobs.runs
    # What one chunk per stage gives: any chunking gives the same rows.
    local = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path / "local"))
    for sink, location in output["outputs"].items():
        assert committed_rows(spark, location) == committed_rows(spark, local.outputs[sink]), sink
