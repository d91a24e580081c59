"""What ``sparkflow package``, ``deploy``, ``delete``, ``start`` and ``status`` do on GCP (see
:class:`~sparkflow.targets.base.CloudTarget`): the official clients are imported here, when a command runs, never
when compiling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import OptionError
from sparkflow.plan import Plan
from sparkflow.shipping.project import context_summary
from sparkflow.targets.base import ShipOptions
from sparkflow.targets.gcp.emit import CONTAINER_JOB_ENV_PREFIX, JOB_ENV, SERVICE_URL_ENV, STORAGE_ROOT_ENV
from sparkflow.targets.runs import RunStatus

if TYPE_CHECKING:
    from sparkflow.targets.runlogs import LogQuery


def package(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> list[str]:
    """The Cloud Run image's build context and the service and job YAML."""
    if options.engine != "spark":
        raise OptionError("--engine duckdb builds a Lambda .zip: use --target aws")
    from sparkflow.targets.gcp.package import package as package_image

    written = package_image(
        pipeline, plan, options.out, storage_root=options.storage_root, image=options.image_uri, inputs=options.inputs
    )
    contents = "Dockerfile, service.yaml, job.yaml, project/, sparkflow/"
    return [f"wrote {len(written)} files to {options.out}: {contents}", *context_summary(Path(options.out))]


def deploy(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> str:
    """Create or update the workflow; return its resource name."""
    from sparkflow.targets.gcp.deploy import deploy as deploy_workflow
    from sparkflow.targets.gcp.deploy import needed_env
    from sparkflow.targets.gcp.package import resource_name

    required = {"--project": options.project, "--region": options.region, "--service-url": options.service_url}
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise OptionError(f"--target gcp needs {', '.join(missing)}")
    assert options.project and options.region and options.service_url
    env = {SERVICE_URL_ENV: options.service_url, STORAGE_ROOT_ENV: options.storage(pipeline)}
    for name in needed_env(definition):  # the Cloud Run jobs get default names; Dataproc settings must be passed
        if name == JOB_ENV:
            env[name] = options.job or resource_name(f"{pipeline.name}-chunks")
        elif name.startswith(CONTAINER_JOB_ENV_PREFIX):
            env[name] = resource_name(f"{pipeline.name}-{name.rsplit('_', 1)[1]}")
    env.update(options.env)
    return deploy_workflow(pipeline.name, definition, options.project, options.region, env)


def delete(pipeline: Pipeline, options: ShipOptions) -> str:
    """Delete the workflow ``deploy`` created (the Cloud Run service and jobs, deployed with gcloud, stay)."""
    from sparkflow.targets.gcp.deploy import delete as delete_workflow

    if not (options.project and options.region):
        raise OptionError("--target gcp needs --project and --region (where the workflow was deployed)")
    return f"deleted {delete_workflow(pipeline.name, options.project, options.region)}"


def start(pipeline: Pipeline, options: ShipOptions, run_id: str | None) -> str:
    _not_yet("start")


def resume(pipeline: Pipeline, options: ShipOptions, run_id: str) -> str:
    _not_yet("start --resume")


def logs(pipeline: Pipeline, options: ShipOptions, query: LogQuery) -> Iterator[dict[str, Any]]:
    raise OptionError(
        "`sparkflow logs --target gcp` is not available yet: read a run's lines in Cloud Logging, e.g. "
        f"`gcloud logging read 'jsonPayload.run_id=\"{query.run_id}\"'`"
    )


def status(execution: str, options: ShipOptions) -> RunStatus:
    _not_yet("status")


def follow(execution: str, options: ShipOptions, on_update: Callable[[RunStatus], None] | None = None) -> RunStatus:
    _not_yet("status")


def _not_yet(command: str) -> NoReturn:
    raise OptionError(
        f"`sparkflow {command} --target gcp` is not available yet: start and watch a run with "
        "`gcloud workflows run WORKFLOW --data='{\"sources\": {...}}'` and `gcloud workflows executions describe`"
    )
