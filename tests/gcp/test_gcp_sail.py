"""Sail stages on GCP: a workflow executed by workflows-emulator, every ``http.post`` answered by the runtime in a
worker process prepared for the engine the packaged Cloud Run service names (``SPARKFLOW_ENGINE=sail``), writes the
rows ``sparkflow run --engine sail`` writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.results import locate, read_table
from tests.examples import example
from tests.gcp.test_gcp_resume import CloudRunService
from tests.gcp.test_gcp_runtime import CloudRunJobs, deploy_env, execute, job_env


def rows(path: Path, node: str, storage: str, run_id: str) -> list[dict[str, Any]]:
    found = read_table(locate(str(path), node, storage=storage, run_id=run_id)).to_pylist()
    return sorted(found, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def test_a_sail_service_called_by_the_workflow_gives_the_rows_of_the_local_sail_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = example("wordcount")
    build = tmp_path / "build"
    packaged = CliRunner().invoke(
        main,
        [
            "package",
            str(path),
            "--target",
            "gcp",
            "--engine",
            "sail",
            "--out",
            str(build),
            "--storage-root",
            "gs://b/sf",
        ],
    )
    assert packaged.exit_code == 0, packaged.output
    service_yaml = yaml.safe_load((build / "service.yaml").read_text())
    env = {item["name"]: item["value"] for item in service_yaml["spec"]["template"]["spec"]["containers"][0]["env"]}
    local = CliRunner().invoke(
        main, ["run", str(path), "--engine", "sail", "--storage", str(tmp_path / "local"), "--json"]
    )
    assert local.exit_code == 0, local.output
    root = tmp_path / "gcs"
    deploy_env(monkeypatch, path, root, "2b0c6d9e-0000-4000-8000-00000000000b")
    service = CloudRunService(env["SPARKFLOW_ENGINE"])
    pipeline = load_pipeline(str(path))
    plan = plan_pipeline(pipeline, "gcp")
    import workflows_emulator.main as emulator

    job_env(monkeypatch, plan)  # top reads more than a 1 GB Cloud Run function holds: a container job runs it
    jobs = CloudRunJobs(job=None)
    monkeypatch.setattr(emulator.StepCall, "execute_connector", staticmethod(jobs))
    output = execute(compile_pipeline(pipeline, "gcp"), service, monkeypatch, None)
    answered = {node for node, _, status in service.answered if status == "committed"} | jobs.nodes
    assert answered == {t.id for t in plan.tasks} | {None}
    for task in plan.tasks:
        in_the_cloud = rows(path, task.id, f"{root}/", output["run_id"])
        assert in_the_cloud and in_the_cloud == rows(
            path, task.id, str(tmp_path / "local"), json.loads(local.stdout)["run_id"]
        )
