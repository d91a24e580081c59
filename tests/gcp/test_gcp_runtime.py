"""Every example's Workflows YAML, executed by workflows-emulator with every ``http.post`` answered in-process by
the sparkflow runtime's HTTP entry (the WSGI app Cloud Run serves), writes exactly what `sparkflow run` writes."""

from __future__ import annotations

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
from sparkflow.targets.gcp.emit import EXECUTION_ID_ENV, SERVICE_URL_ENV, STORAGE_ROOT_ENV
from tests.examples import EXAMPLES, example, example_ids
from tests.runtime.reference import rows

pytestmark = pytest.mark.spark
SERVICE_URL = "https://sparkflow-runtime-abc123-ew.a.run.app"


class CloudRunService:
    """Stands in for the Cloud Run service: each call is POSTed to the runtime's WSGI app in this process."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

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
        self.calls.append((body["node"], code))
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
    return emulator.execute_workflow(yaml.safe_load(text), {"args": args})


def committed_rows(spark: Any, location: str) -> list[tuple[Any, ...]]:
    manifest = json.loads((Path(location) / "_COMMITTED.json").read_text())
    return rows(spark.read.parquet(*(str(Path(location) / name) for name in manifest["files"])))


def deploy_env(monkeypatch: pytest.MonkeyPatch, path: Path, root: Path, run_id: str) -> None:
    for name, value in {
        EXECUTION_ID_ENV: run_id,
        STORAGE_ROOT_ENV: f"{root}/",  # the workflow's and the runtime's root: the same variable
        SERVICE_URL_ENV: SERVICE_URL,
        "SPARKFLOW_PIPELINE": str(path),
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("path", EXAMPLES, ids=example_ids())
def test_workflow_runs_the_runtime(spark: Any, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = load_pipeline(str(path))
    root = tmp_path / "gcs"
    deploy_env(monkeypatch, path, root, "2b0c6d9e-0000-4000-8000-00000000000a")
    service = CloudRunService()
    output = execute(compile_pipeline(pipeline, "gcp"), service, monkeypatch, None)
    assert sorted(node for node, _ in service.calls) == sorted(task.id for task in plan_pipeline(pipeline, "gcp").tasks)
    local = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path / "local"))
    for sink, location in output["outputs"].items():
        assert location.startswith(f"{root}/{pipeline.name}/{output['run_id']}/")
        assert committed_rows(spark, location) == committed_rows(spark, local.outputs[sink]), sink


def test_refused_input_fails_the_workflow_naming_the_stage(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = example("wordcount")
    deploy_env(monkeypatch, path, tmp_path / "gcs", "2b0c6d9e-0000-4000-8000-00000000000b")
    service = CloudRunService()
    from workflows_emulator.utils import WorkflowError

    with pytest.raises(WorkflowError, match=r"stage words of pipeline wordcount failed: .*error code 403") as failure:
        execute(compile_pipeline(load_pipeline(str(path)), "gcp"), service, monkeypatch, {"sources": {"books": "/etc"}})
    assert "'/etc' is outside the storage root" in json.dumps(failure.value.payload["cause"], default=str)
    assert service.calls == [("words", 403)], "a 4xx answer is not retried"
