"""`sparkflow package --target gcp` and `sparkflow deploy --target gcp` from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.plan import Plan
from sparkflow.shipping.requirements import pyspark_version
from sparkflow.targets.gcp.package import cpu_for
from tests.examples import example
from tests.gcp.conftest import FakeWorkflowsApi
from tests.ship.test_package_jobs import assert_cluster_requirements_leave_out_pyspark


def package(name: str, out: Path, *extra: str) -> Any:
    args = ["package", str(example(name)), "--target", "gcp", "--out", str(out), "--storage-root", "gs://b/sf", *extra]
    return CliRunner().invoke(main, args)


def test_package_writes_image_service_and_job(tmp_path: Path) -> None:
    result = package("wordcount", tmp_path, "--image-uri", "europe-docker.pkg.dev/p/r/wordcount:v1")
    assert result.exit_code == 0, result.output
    dockerfile = (tmp_path / "Dockerfile").read_text()
    for needed in (
        "FROM --platform=linux/amd64 python:3.11-slim",
        "openjdk-17-jre-headless",
        'CMD ["python", "-m", "sparkflow.runtime", "serve"]',
        "train_cds_archive",
        "ENV SPARKFLOW_PIPELINE=/app/project/examples/wordcount/pipeline.py\n",  # where COPY project/ puts it
        "ENV SPARKFLOW_PLAN=/app/project/sparkflow-plan.json\n",
        "COPY project/ /app/project/",
    ):
        assert needed in dockerfile, needed
    shipped = Plan.from_json((tmp_path / "project" / "sparkflow-plan.json").read_text())
    assert shipped.digest == plan_pipeline(load_pipeline(str(example("wordcount"))), "gcp").digest
    service = yaml.safe_load((tmp_path / "service.yaml").read_text())
    spec = service["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert (service["kind"], spec["containerConcurrency"], spec["timeoutSeconds"]) == ("Service", 1, 900)
    assert container["image"] == "europe-docker.pkg.dev/p/r/wordcount:v1"
    assert container["resources"]["limits"] == {"memory": "2048Mi", "cpu": "1"}
    assert {"name": "SPARKFLOW_STORAGE_ROOT", "value": "gs://b/sf/"} in container["env"]
    assert "SPARKFLOW_ENGINE" not in {item["name"] for item in container["env"]}  # Spark: each stage's own engine
    job = yaml.safe_load((tmp_path / "job.yaml").read_text())
    (task,) = job["spec"]["template"]["spec"]["template"]["spec"]["containers"]
    assert task["command"] == ["python", "-m", "sparkflow.runtime", "job"]
    assert job["metadata"]["name"] == "wordcount-chunks"
    assert (tmp_path / "project" / "examples" / "wordcount" / "pipeline.py").is_file()
    assert (tmp_path / "sparkflow" / "runtime" / "cloudrun.py").is_file()


def test_package_for_sail_writes_an_image_without_java_whose_service_and_job_run_sail(tmp_path: Path) -> None:
    result = package("wordcount", tmp_path, "--engine", "sail")
    assert result.exit_code == 0, result.output
    dockerfile = (tmp_path / "Dockerfile").read_text()
    lines = dockerfile.splitlines()
    assert "FROM --platform=linux/amd64 python:3.11-slim" in lines
    for absent in ("java", "openjdk", "apt-get", "train_cds_archive", "spark_submit_opts", "spark_local_dirs"):
        assert absent not in dockerfile.lower(), absent
    for needed in (
        "ENV SPARKFLOW_ENGINE=sail",
        "ENV SPARKFLOW_PIPELINE=/app/project/examples/wordcount/pipeline.py",
        "ENV SPARKFLOW_WORKDIR=/tmp HOME=/tmp",
        'CMD ["python", "-m", "sparkflow.runtime", "serve"]',
    ):
        assert needed in lines, needed
    assert "Regenerate with `sparkflow package --target gcp --engine sail`" in lines[0]
    requirements = (tmp_path / "requirements.txt").read_text().splitlines()
    assert f"pyspark-client=={pyspark_version()}" in requirements and "pysail==0.7.2" in requirements
    assert not [line for line in requirements if line.startswith(("pyspark[", "pyspark==", "sqlframe", "duckdb"))]
    assert "gunicorn==27.0.1" in requirements and "gcsfs==2026.7.0" in requirements  # the service's, GCS's
    service = yaml.safe_load((tmp_path / "service.yaml").read_text())
    job = yaml.safe_load((tmp_path / "job.yaml").read_text())
    for container in (
        service["spec"]["template"]["spec"]["containers"][0],
        job["spec"]["template"]["spec"]["template"]["spec"]["containers"][0],
    ):
        assert {"name": "SPARKFLOW_ENGINE", "value": "sail"} in container["env"]
        assert {"name": "SPARKFLOW_STORAGE_ROOT", "value": "gs://b/sf/"} in container["env"]


def test_value_stages_get_a_firestore_kv_store(tmp_path: Path) -> None:
    assert package("clickstream", tmp_path).exit_code == 0
    (container,) = yaml.safe_load((tmp_path / "service.yaml").read_text())["spec"]["template"]["spec"]["containers"]
    assert {"name": "SPARKFLOW_KV", "value": "firestore://clickstream-values"} in container["env"]
    assert container["image"] == "IMAGE_URI"


def test_package_refuses_a_storage_root_cloud_run_cannot_use(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["package", str(example("wordcount")), "--target", "gcp", "--out", str(out)])
    assert result.exit_code == 2 and "need a gs:// storage root (got 's3://my-bucket/sparkflow/')" in result.stderr
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize(("memory", "cpus"), [(512, 1), (4096, 1), (4097, 2), (8193, 4), (16385, 6), (32768, 8)])
def test_cloud_run_cpu_follows_memory(memory: int, cpus: int) -> None:
    assert cpu_for(memory) == cpus


def test_deploy_command_creates_the_workflow(
    workflows_api: tuple[FakeWorkflowsApi, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud import workflows_v1

    api, client = workflows_api
    monkeypatch.setattr(workflows_v1, "WorkflowsClient", lambda: client)
    args = ["deploy", str(example("wordcount")), "--target", "gcp", "--project", "proj-1", "--region", "europe-west1"]
    args += ["--service-url", "https://stages-abc.a.run.app", "--storage-root", "gs://b/sf"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    name = "projects/proj-1/locations/europe-west1/workflows/wordcount"
    assert result.stdout.strip() == name
    assert api.workflows[name]["userEnvVars"] == {
        "SPARKFLOW_SERVICE_URL": "https://stages-abc.a.run.app",
        "SPARKFLOW_STORAGE_ROOT": "gs://b/sf/",
        "SPARKFLOW_JOB": "wordcount-chunks",
        "SPARKFLOW_CONTAINER_JOB_8192MB": "wordcount-8192mb",  # top's job: it reads more than a function holds
    }
    missing = CliRunner().invoke(main, ["deploy", str(example("wordcount")), "--target", "gcp"])
    assert missing.exit_code == 2 and "--project, --region, --service-url" in missing.stderr
    # The workflow calls the service whatever image it runs: Sail's deploys the same workflow; a zip engine has none.
    sail = CliRunner().invoke(main, [*args, "--engine", "sail"])
    assert sail.exit_code == 0 and sail.stdout.strip() == name, sail.output
    zipped = CliRunner().invoke(main, [*args, "--engine", "duckdb"])
    assert zipped.exit_code == 2 and "--engine duckdb builds a Lambda .zip: use --target aws" in zipped.stderr


def test_container_and_serverless_spark_stages_get_their_job_image_and_entry(tmp_path: Path) -> None:
    placement = Path(__file__).resolve().parents[1] / "resources" / "placement.py"
    args = ["package", str(placement), "--target", "gcp", "--out", str(tmp_path), "--storage-root", "gs://b/sf"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    # The service and the chunk job are sized for the function stages, not the 32 GiB container stage.
    (container,) = yaml.safe_load((tmp_path / "service.yaml").read_text())["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"memory": "2048Mi", "cpu": "1"}
    job = yaml.safe_load((tmp_path / "job-32768mb.yaml").read_text())
    assert job["metadata"]["name"] == "placement-32768mb"  # what `sparkflow deploy --target gcp` names by default
    spec = job["spec"]["template"]["spec"]["template"]["spec"]
    (task,) = spec["containers"]
    assert task["command"] == ["python", "-m", "sparkflow.runtime", "job"]
    assert task["resources"]["limits"] == {"memory": "32768Mi", "cpu": "8"}
    assert spec["timeoutSeconds"] == 900
    dockerfile = (tmp_path / "dataproc" / "Dockerfile").read_text()
    assert "useradd -u 1099" in dockerfile  # Dataproc mounts Spark
    assert_cluster_requirements_leave_out_pyspark(dockerfile, tmp_path / "requirements.txt")
    assert "ENV SPARKFLOW_PIPELINE=" in dockerfile and "COPY dataproc/entry.py" in dockerfile
    entry = (tmp_path / "dataproc" / "entry.py").read_text()
    assert "from sparkflow.runtime.cluster import main" in entry
    compile(entry, "entry.py", "exec")


def test_deploy_names_the_dataproc_settings_it_needs_and_takes_them_with_env(
    workflows_api: tuple[FakeWorkflowsApi, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud import workflows_v1

    api, client = workflows_api
    monkeypatch.setattr(workflows_v1, "WorkflowsClient", lambda: client)
    placement = Path(__file__).resolve().parents[1] / "resources" / "placement.py"
    args = ["deploy", str(placement), "--target", "gcp", "--project", "proj-1", "--region", "europe-west1"]
    args += ["--service-url", "https://stages-abc.a.run.app", "--storage-root", "gs://b/sf"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert "'SPARKFLOW_DATAPROC_ENTRY' is missing" in refused.stderr and api.workflows == {}
    dataproc = {
        "SPARKFLOW_DATAPROC_ENTRY": "gs://code/entry.py",
        "SPARKFLOW_DATAPROC_IMAGE": "europe-docker.pkg.dev/p/r/placement-spark:v1",
        "SPARKFLOW_DATAPROC_SERVICE_ACCOUNT": "stages@proj-1.iam.gserviceaccount.com",
    }
    result = CliRunner().invoke(main, [*args, *(f"--env={name}={value}" for name, value in dataproc.items())])
    assert result.exit_code == 0, result.output
    assert api.workflows["projects/proj-1/locations/europe-west1/workflows/placement"]["userEnvVars"] == {
        "SPARKFLOW_SERVICE_URL": "https://stages-abc.a.run.app",
        "SPARKFLOW_STORAGE_ROOT": "gs://b/sf/",
        "SPARKFLOW_CONTAINER_JOB_32768MB": "placement-32768mb",
        **dataproc,
    }
