"""The build context of a pipeline for AWS: its stage image and its CloudFormation template.

``package(pipeline, plan, definition_text, out_dir, engine=...)`` writes into ``out_dir``:

* ``Dockerfile`` (from ``templates/Dockerfile.j2``): an AWS Lambda Python base image, the engine's runtime
  dependencies pinned as sparkflow's own metadata pins them (pyspark for Spark; pysail and PySpark's Connect client
  for Sail: :func:`~sparkflow.shipping.requirements.engine_requirements`), sparkflow itself (``sparkflow/``) and the
  user's project with its Plan (``project/``), the pipeline the image serves (``SPARKFLOW_PIPELINE``), the engine
  when its process must be prepared for it (``SPARKFLOW_ENGINE=sail``) and the runtime handler as ``CMD``. Every image
  starts from Lambda's Python 3.12 base (:data:`BASE_IMAGE`); an engine on a JVM (Spark) adds Amazon Corretto 17
  headless, a ``SPARK_HOME`` whose launch needs no ``/dev/fd`` and a class-data-sharing archive of Spark's start-up
  (:mod:`sparkflow.shipping.spark_home`); Sail's image has no Java;
* ``requirements.txt``: those pinned dependencies;
* ``template.yaml``: the stack (:mod:`sparkflow.targets.aws.template`);
* ``emr/``: the EMR Serverless image and entry point, when a stage runs on serverless Spark.

Spark and Sail ship as images, not zips: pyspark alone, and Sail with the pyarrow its client needs, are over Lambda's
250 MB unzipped limit for zips (docs/engines.md, "Deployable size"). A pipeline on the duckdb engine can ship as a
plain .zip instead (:mod:`sparkflow.targets.aws.lambda_zip`).

>>> package(pipeline, plan, definition_text, "build/aws", engine="sail")  # doctest: +SKIP
['build/aws/Dockerfile', ..., 'build/aws/template.yaml']
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sparkflow import engines
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import PackageError
from sparkflow.plan import Plan
from sparkflow.shipping.engine_fit import check_engine
from sparkflow.shipping.image import engine_values
from sparkflow.shipping.project import DOCKERIGNORE, PROJECT_DIR, copy_project, pipeline_spec, plan_path, write_files
from sparkflow.shipping.requirements import requirements_text
from sparkflow.targets.aws.jobs import EMR_RELEASE, uses_serverless_spark
from sparkflow.targets.aws.stack import HANDLER, TASK_ROOT
from sparkflow.targets.aws.template import template_text
from sparkflow.targets.templating import render

# Python 3.12's base (Amazon Linux 2023, glibc 2.34) for every engine: the wheels of pyarrow 26 are built for glibc
# 2.28 and newer, so on the 3.11 base (Amazon Linux 2, glibc 2.26) pip would build it from source, and fail.
BASE_IMAGE = "public.ecr.aws/lambda/python:3.12"
# Amazon Linux 2023's base images install packages with dnf (microdnf), and Corretto 17 is in its repository.
JAVA_INSTALL = "dnf install -y java-17-amazon-corretto-headless && dnf clean all && rm -rf /var/cache/dnf"
SPARK_HOME_IN_IMAGE = "/opt/spark"
CDS_ARCHIVE_IN_IMAGE = f"{SPARK_HOME_IN_IMAGE}/spark.jsa"
_PROJECT_IN_IMAGE = f"{TASK_ROOT}/{PROJECT_DIR}"
_EMR_APP_ROOT = "/app"


def dockerfile_text(
    pipeline: Pipeline, plan: Plan, *, engine: str = engines.DEFAULT, project_requirements: str | None = None
) -> str:
    values = engine_values(engine, "sparkflow package")
    return render(
        __file__,
        "Dockerfile.j2",
        **values,
        pipeline=plan.pipeline,
        source_file=plan.source_file,
        base_image=BASE_IMAGE,
        java_install=JAVA_INSTALL,
        task_root=TASK_ROOT,
        project_dir=PROJECT_DIR,
        project_requirements=project_requirements,
        pipeline_spec=pipeline_spec(pipeline, plan, _PROJECT_IN_IMAGE),
        plan_path=plan_path(_PROJECT_IN_IMAGE),
        handler=HANDLER,
        spark_home=SPARK_HOME_IN_IMAGE,
        cds_archive=CDS_ARCHIVE_IN_IMAGE,
    )


def package(
    pipeline: Pipeline,
    plan: Plan,
    definition_text: str,
    out_dir: str | os.PathLike[str],
    *,
    engine: str = engines.DEFAULT,
    inputs: Mapping[str, str] | None = None,
) -> list[str]:
    """Write the build context of ``pipeline`` into ``out_dir``; return the paths written, sorted.

    Args:
        pipeline: the pipeline (its file locates the project copied into the image).
        plan: its Plan for the aws target.
        definition_text: its compiled ASL (the checked-in ``.asl.json``), embedded in the template as it is.
        out_dir: the build context folder; its ``project/`` and ``sparkflow/`` folders are replaced.
        engine: the engine the image runs the stages on (one that ships as an image).
        inputs: source name -> S3 location the functions will read it from, when not the declared one.

    Raises:
        PackageError: an engine that ships as a zip, stages the engine's functions would not run as declared
            (:func:`~sparkflow.shipping.engine_fit.check_engine`), a location or KV store that cannot work on
            AWS, or a definition that is not this plan's.
    """
    spec = engines.engine(engine, what="--engine")
    if spec.ships_as != "image":
        raise PackageError(
            f"engine {engine!r} ships as a Lambda {spec.ships_as}, not an image: `sparkflow package --engine {engine}` "
            "builds it (sparkflow.targets.aws.lambda_zip)"
        )
    check_engine(pipeline, plan, engine)
    out = Path(out_dir)
    template_yaml = template_text(plan, definition_text, engine=engine, inputs=inputs)  # validates before writing
    out.mkdir(parents=True, exist_ok=True)
    written, requirements = copy_project(pipeline, plan, out)
    files = {
        "Dockerfile": dockerfile_text(pipeline, plan, engine=engine, project_requirements=requirements),
        "requirements.txt": requirements_text(engine),
        "template.yaml": template_yaml,
        ".dockerignore": DOCKERIGNORE,
    }
    if uses_serverless_spark(plan):  # the EMR Serverless image and the job runs' entry point
        values = {
            "pipeline": plan.pipeline,
            "source_file": plan.source_file,
            "release": EMR_RELEASE,
            "app_root": _EMR_APP_ROOT,
            "project_dir": PROJECT_DIR,
            "project_requirements": requirements,
            "pipeline_spec": pipeline_spec(pipeline, plan, f"{_EMR_APP_ROOT}/{PROJECT_DIR}"),
            "plan_path": plan_path(f"{_EMR_APP_ROOT}/{PROJECT_DIR}"),
        }
        files["emr/Dockerfile"] = render(__file__, "Dockerfile.emr.j2", **values)
        files["emr/entry.py"] = render(__file__, "entry.py.j2", **values)
    return sorted(written + write_files(out, files))


__all__ = ["dockerfile_text", "package"]
