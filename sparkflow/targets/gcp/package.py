"""`sparkflow package --target gcp`: the build context of the pipeline's Cloud Run image, and the Cloud Run
service and job that run it.

* ``Dockerfile``: Python 3.11, the engine's pinned runtime dependencies
  (:func:`~sparkflow.shipping.requirements.engine_requirements`), sparkflow and the project; for an engine on a JVM
  (Spark) Java 17 and a class-data-sharing archive of Spark's start-up, for Sail no Java and
  ``SPARKFLOW_ENGINE=sail``; ``CMD`` serves the runtime's HTTP entry.
* ``service.yaml`` (Cloud Run service, Knative Serving v1): what the workflow's ``http.post`` calls reach. One
  request per instance (a Spark stage uses the whole instance), memory and request timeout from the largest
  stage, the CPU that memory requires.
* ``job.yaml`` (Cloud Run job): what the workflow runs for a fan-out with many chunks; the same image with
  ``python -m sparkflow.runtime job``, ``taskCount`` set per execution by the workflow.
* ``lifecycle.json``: the storage bucket's lifecycle rule deleting what failed runs left under the storage root's
  ``_work/`` after some days (:mod:`sparkflow.targets.gcp.lifecycle`).
* ``job-<N>mb.yaml`` (Cloud Run jobs), one per memory size of the stages placed on a container: each execution
  runs one whole stage (one task), for up to 24 hours.
* ``dataproc/Dockerfile`` and ``dataproc/entry.py`` when stages are placed on serverless Spark: the custom
  container image of the Dataproc Serverless batches (without Spark: Dataproc mounts it) and their main file.

Both run the pipeline fixed in the image (``SPARKFLOW_PIPELINE``) with its storage root, KV store and engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sparkflow import engines
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import PackageError
from sparkflow.layout import WORK_EXPIRY_DAYS
from sparkflow.plan import Plan, PlanTask
from sparkflow.shipping.engine_fit import check_engine
from sparkflow.shipping.environment import function_environment
from sparkflow.shipping.image import engine_values
from sparkflow.shipping.project import DOCKERIGNORE, PROJECT_DIR, copy_project, pipeline_spec, plan_path, write_files
from sparkflow.shipping.requirements import pyspark_version, requirements_text
from sparkflow.targets.gcp.lifecycle import LIFECYCLE_FILE, lifecycle_text
from sparkflow.targets.templating import render

BASE_IMAGE = "python:3.11-slim"
JAVA_PACKAGE = "openjdk-17-jre-headless"
APP_ROOT = "/app"
PROJECT_ROOT = f"{APP_ROOT}/{PROJECT_DIR}"  # where the images hold the project's copy
CDS_ARCHIVE = "/opt/spark.jsa"
IMAGE_PLACEHOLDER = "IMAGE_URI"  # replaced by --image-uri, or by the user before `gcloud run ... replace`
# Cloud Run: "memory above 4 GiB requires at least 2 CPUs, above 8 GiB 4, above 16 GiB 6, above 24 GiB 8"
# (https://cloud.google.com/run/docs/configuring/services/memory-limits).
_CPU_FOR_MEMORY_MB = ((24_576, 8), (16_384, 6), (8_192, 4), (4_096, 2))
# Cloud Run job tasks may run up to 24 hours (https://cloud.google.com/run/docs/configuring/task-timeout).
JOB_TASK_TIMEOUT_S = 86_400


def resource_name(name: str) -> str:
    """A Cloud Run service or job name from a pipeline's (lower case letters, digits and '-')."""
    return name.replace("_", "-").lower()


def cpu_for(memory_mb: int) -> int:
    """The fewest CPUs Cloud Run allows with ``memory_mb`` (at least 1)."""
    return next((cpus for above, cpus in _CPU_FOR_MEMORY_MB if memory_mb > above), 1)


def _environment(storage_root: str, kv: str | None, inputs: Mapping[str, str], engine: str) -> list[dict[str, str]]:
    environment = function_environment(storage_root, kv or None, [inputs[name] for name in sorted(inputs)], engine)
    return [{"name": name, "value": value} for name, value in environment.items()]


def _functions(plan: Plan) -> list[PlanTask]:
    """The tasks the service and the chunk job run: every stage placed on a function (or else all, so that a
    pipeline of container stages alone still gets valid resources)."""
    return [task for task in plan.tasks if task.placement == "function"] or list(plan.tasks)


def _container(
    plan: Plan, image: str, env: list[dict[str, str]], command: list[str] | None, memory: int | None = None
) -> dict[str, Any]:
    memory = memory or max(task.memory_mb for task in _functions(plan))
    container: dict[str, Any] = {"image": image}
    if command:
        container["command"] = command
    container["env"] = env
    container["resources"] = {"limits": {"memory": f"{memory}Mi", "cpu": str(cpu_for(memory))}}
    return container


def service(
    plan: Plan,
    *,
    image: str,
    storage_root: str,
    kv: str | None,
    inputs: Mapping[str, str],
    engine: str = engines.DEFAULT,
) -> dict[str, Any]:
    """The Cloud Run service the workflow calls (one stage request per instance at a time)."""
    env = _environment(storage_root, kv, inputs, engine)
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": resource_name(f"{plan.pipeline}-stages"),
            "annotations": {"run.googleapis.com/ingress": "internal"},
        },
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        "run.googleapis.com/execution-environment": "gen2",
                        "autoscaling.knative.dev/maxScale": "100",
                    }
                },
                "spec": {
                    "containerConcurrency": 1,
                    "timeoutSeconds": max(task.timeout_s for task in _functions(plan)),
                    "containers": [_container(plan, image, env, None)],
                },
            }
        },
    }


def job(
    plan: Plan,
    *,
    image: str,
    storage_root: str,
    kv: str | None,
    inputs: Mapping[str, str],
    memory: int | None = None,
    engine: str = engines.DEFAULT,
) -> dict[str, Any]:
    """The Cloud Run job a workflow runs for a fan-out over many chunks (``taskCount`` set per execution), or with
    ``memory`` the one that runs the container stages of that size (one task per execution, a whole stage)."""
    env = _environment(storage_root, kv, inputs, engine)
    command = ["python", "-m", "sparkflow.runtime", "job"]
    tasks = (
        _functions(plan)
        if memory is None
        else [t for t in plan.tasks if t.placement == "container" and t.memory_mb == memory]
    )
    name = f"{plan.pipeline}-chunks" if memory is None else f"{plan.pipeline}-{memory}mb"
    return {
        "apiVersion": "run.googleapis.com/v1",
        "kind": "Job",
        "metadata": {"name": resource_name(name)},
        "spec": {
            "template": {
                "metadata": {"annotations": {"run.googleapis.com/execution-environment": "gen2"}},
                "spec": {
                    "taskCount": 1,
                    "template": {
                        "spec": {
                            "maxRetries": max(task.retries for task in tasks),
                            "timeoutSeconds": min(JOB_TASK_TIMEOUT_S, max(task.timeout_s for task in tasks)),
                            "containers": [_container(plan, image, env, command, memory)],
                        }
                    },
                },
            }
        },
    }


def dockerfile_text(
    pipeline: Pipeline, plan: Plan, *, engine: str = engines.DEFAULT, project_requirements: str | None = None
) -> str:
    return render(
        __file__,
        "Dockerfile.j2",
        **engine_values(engine, "sparkflow package --target gcp"),
        pipeline=plan.pipeline,
        source_file=plan.source_file,
        base_image=BASE_IMAGE,
        java_package=JAVA_PACKAGE,
        pyspark_version=pyspark_version(),
        app_root=APP_ROOT,
        project_dir=PROJECT_DIR,
        project_requirements=project_requirements,
        pipeline_spec=pipeline_spec(pipeline, plan, PROJECT_ROOT),
        plan_path=plan_path(PROJECT_ROOT),
        cds_archive=CDS_ARCHIVE,
    )


def _render_dataproc(pipeline: Pipeline, plan: Plan, template: str, project_requirements: str | None) -> str:
    return render(
        __file__,
        template,
        pipeline=plan.pipeline,
        source_file=plan.source_file,
        base_image=BASE_IMAGE,
        app_root=APP_ROOT,
        project_dir=PROJECT_DIR,
        project_requirements=project_requirements,
        pipeline_spec=pipeline_spec(pipeline, plan, PROJECT_ROOT),
        plan_path=plan_path(PROJECT_ROOT),
    )


def package(
    pipeline: Pipeline,
    plan: Plan,
    out_dir: str | os.PathLike[str],
    *,
    storage_root: str | None = None,
    image: str | None = None,
    inputs: Mapping[str, str] | None = None,
    engine: str = engines.DEFAULT,
    work_expiry_days: int = WORK_EXPIRY_DAYS,
) -> list[str]:
    """Write the Cloud Run build context and resource files of ``pipeline`` into ``out_dir`` for ``engine``; return
    the paths. With ``work_expiry_days`` (0: none), also the storage bucket's ``lifecycle.json``
    (:mod:`sparkflow.targets.gcp.lifecycle`).

    Raises:
        PackageError: stages the engine's functions would not run as declared
            (:func:`~sparkflow.shipping.engine_fit.check_engine`), no GCS storage root, or a KV store Cloud Run
            cannot use.
    """
    check_engine(pipeline, plan, engine)
    root = storage_root or pipeline.storage
    if not root or not root.startswith("gs://"):
        raise PackageError(
            f"pipeline {plan.pipeline!r}: Cloud Run stages need a gs:// storage root (got {root!r}): pass "
            "--storage-root gs://bucket/prefix/ or declare storage= on @sf.pipeline"
        )
    kv = pipeline.kv
    if any(task.output == "value" for task in plan.tasks):
        kv = kv or f"firestore://{plan.pipeline}-values"
        if not kv.startswith("firestore://"):
            raise PackageError(
                f"pipeline {plan.pipeline!r} passes values between stages through {kv!r}, which Cloud Run cannot "
                "share between instances: use kv='firestore://collection'"
            )
    sources = {source.name for source in plan.sources}
    unknown = sorted(set(inputs or {}) - sources)
    if unknown:
        raise PackageError(f"--input {unknown[0]}=...: pipeline {plan.pipeline!r} has no such source")
    used_kv = kv if any(task.output == "value" for task in plan.tasks) else None
    chosen_image, storage = image or IMAGE_PLACEHOLDER, root.rstrip("/") + "/"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, requirements = copy_project(pipeline, plan, out)
    given = dict(inputs or {})
    files = {
        "Dockerfile": dockerfile_text(pipeline, plan, engine=engine, project_requirements=requirements),
        "requirements.txt": requirements_text(engine),
        "service.yaml": _dump(
            service(plan, image=chosen_image, storage_root=storage, kv=used_kv, inputs=given, engine=engine)
        ),
        "job.yaml": _dump(job(plan, image=chosen_image, storage_root=storage, kv=used_kv, inputs=given, engine=engine)),
        ".dockerignore": DOCKERIGNORE,
    }
    if work_expiry_days > 0:
        files[LIFECYCLE_FILE] = lifecycle_text(storage, work_expiry_days)
    for memory in sorted({task.memory_mb for task in plan.tasks if task.placement == "container"}):
        resource = job(
            plan, image=chosen_image, storage_root=storage, kv=used_kv, inputs=given, memory=memory, engine=engine
        )
        files[f"job-{memory}mb.yaml"] = _dump(resource)
    if any(task.placement == "serverless-spark" for task in plan.tasks):
        files["dataproc/Dockerfile"] = _render_dataproc(pipeline, plan, "Dockerfile.dataproc.j2", requirements)
        files["dataproc/entry.py"] = _render_dataproc(pipeline, plan, "entry.py.j2", requirements)
    return sorted(written + write_files(out, files))


def _dump(document: dict[str, Any]) -> str:
    header = "# Generated by sparkflow (`sparkflow package --target gcp`); deploy with `gcloud run ... replace`.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=120)
