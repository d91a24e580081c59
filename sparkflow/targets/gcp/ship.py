"""What ``sparkflow package``, ``deploy``, ``delete``, ``start``, ``logs`` and ``status`` do on GCP (see
:class:`~sparkflow.targets.base.CloudTarget`): the official clients are imported here, when a command runs, never
when compiling."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkflow import engines
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import OptionError
from sparkflow.plan import Plan, StartSchedule, StartTrigger
from sparkflow.shipping.engine_fit import check_engine
from sparkflow.shipping.project import context_summary
from sparkflow.targets.base import ShipOptions
from sparkflow.targets.gcp.emit import CONTAINER_JOB_ENV_PREFIX, JOB_ENV, SERVICE_URL_ENV, STORAGE_ROOT_ENV
from sparkflow.targets.gcp.lifecycle import LIFECYCLE_FILE, bucket_of
from sparkflow.targets.runs import RunStatus

SCHEDULE_JOB_FILE = "scheduler-job.json"
TRIGGER_FILE = "eventarc-trigger.json"

if TYPE_CHECKING:
    from sparkflow.targets.runlogs import LogQuery


def package(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> list[str]:
    """The Cloud Run image's build context and the service and job YAML."""
    from sparkflow.targets.gcp.package import package as package_image

    _check_image_engine(options)
    written = package_image(
        pipeline,
        plan,
        options.out,
        storage_root=options.storage_root,
        image=options.image_uri,
        inputs=options.inputs,
        engine=options.engine,
        work_expiry_days=options.work_expiry_days,
    )
    contents = "Dockerfile, service.yaml, job.yaml, project/, sparkflow/"
    lines = [f"wrote {len(written)} files to {options.out}: {contents}", *context_summary(Path(options.out))]
    if options.work_expiry_days > 0:
        bucket = bucket_of(options.storage(pipeline))
        lines.append(
            f"wrote {Path(options.out) / LIFECYCLE_FILE}: failed runs' working files expire after "
            f"{options.work_expiry_days} days once you run `gcloud storage buckets update gs://{bucket} "
            f"--lifecycle-file={LIFECYCLE_FILE}` (it replaces the bucket's lifecycle rules: merge any it has)"
        )
    if plan.start_schedule is not None:
        lines.append(_write_schedule_job(plan, plan.start_schedule, options))
    if plan.start_trigger is not None:
        lines.append(_write_trigger(plan, plan.start_trigger, options))
    return lines


def _check_image_engine(options: ShipOptions) -> None:
    """Cloud Run runs images: an engine that ships as a Lambda .zip is AWS's alone."""
    if engines.engine(options.engine, what="--engine").ships_as != "image":
        raise OptionError(f"--engine {options.engine} builds a Lambda .zip: use --target aws")


def _write_trigger(plan: Plan, trigger: StartTrigger, options: ShipOptions) -> str:
    """Write the Eventarc trigger ``deploy`` creates, with placeholders for what only deploy is told."""
    from sparkflow.targets.gcp.eventarc import trigger_document, watched

    folder = watched(plan, trigger, options.inputs, options.storage_root)
    project, region = options.project or "PROJECT_ID", options.region or "REGION"
    account = options.trigger_service_account or "SERVICE_ACCOUNT_EMAIL"
    path = Path(options.out) / TRIGGER_FILE
    document = trigger_document(plan, folder, project, region, account)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return (
        f"wrote {path}: the Eventarc trigger that starts a run for each new object under {folder.uri}; "
        "`sparkflow deploy --target gcp --trigger-service-account` creates it"
    )


def _write_schedule_job(plan: Plan, schedule: StartSchedule, options: ShipOptions) -> str:
    """Write the Cloud Scheduler job ``deploy`` creates, with placeholders for what only deploy is told."""
    from sparkflow.targets.gcp.scheduler import job_document

    project, region = options.project or "PROJECT_ID", options.region or "REGION"
    account = options.scheduler_service_account or "SERVICE_ACCOUNT_EMAIL"
    document = job_document(plan, schedule, project, region, account, options.inputs)
    path = Path(options.out) / SCHEDULE_JOB_FILE
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return (
        f"wrote {path}: the Cloud Scheduler job that starts a run on {schedule.expression} "
        f"(unix-cron {document['schedule']!r}, UTC); `sparkflow deploy --target gcp --scheduler-service-account` "
        "creates it"
    )


def deploy(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> str:
    """Create or update the workflow, the Cloud Scheduler job of a scheduled pipeline and the Eventarc trigger of a
    triggered one (deleting the job or trigger of a pipeline that no longer declares it); return the workflow's
    resource name."""
    from sparkflow.targets.gcp.deploy import SCHEDULED_LABEL, TRIGGERED_LABEL, labels_of, needed_env
    from sparkflow.targets.gcp.deploy import deploy as deploy_workflow
    from sparkflow.targets.gcp.eventarc import (
        apply_trigger,
        delete_trigger,
        trigger_document,
        trigger_env,
        trigger_name,
        watched,
    )
    from sparkflow.targets.gcp.package import resource_name
    from sparkflow.targets.gcp.scheduler import apply_job, delete_job, job_document, job_name

    _check_image_engine(options)
    check_engine(pipeline, plan, options.engine)  # the service the workflow calls runs one engine's image
    required = {"--project": options.project, "--region": options.region, "--service-url": options.service_url}
    if plan.start_schedule is not None:
        required["--scheduler-service-account (the pipeline declares a schedule)"] = options.scheduler_service_account
    if plan.start_trigger is not None:
        required["--trigger-service-account (the pipeline declares a trigger)"] = options.trigger_service_account
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise OptionError(f"--target gcp needs {', '.join(missing)}")
    assert options.project and options.region and options.service_url
    storage_root = options.storage(pipeline)
    env = {SERVICE_URL_ENV: options.service_url, STORAGE_ROOT_ENV: storage_root}
    # Checked before anything is sent: a schedule unix-cron cannot say, a folder Eventarc cannot watch.
    job = trigger = None
    if plan.start_schedule is not None:
        assert options.scheduler_service_account
        job = job_document(
            plan,
            plan.start_schedule,
            options.project,
            options.region,
            options.scheduler_service_account,
            options.inputs,
        )
    if plan.start_trigger is not None:
        assert options.trigger_service_account
        folder = watched(plan, plan.start_trigger, options.inputs, storage_root)
        trigger = trigger_document(plan, folder, options.project, options.region, options.trigger_service_account)
        env |= trigger_env(plan, plan.start_trigger, folder, options.inputs)
    for name in needed_env(definition):  # the Cloud Run jobs get default names; Dataproc settings must be passed
        if name == JOB_ENV:
            env[name] = options.job or resource_name(f"{pipeline.name}-chunks")
        elif name.startswith(CONTAINER_JOB_ENV_PREFIX):
            env[name] = resource_name(f"{pipeline.name}-{name.rsplit('_', 1)[1]}")
    env.update(options.env)
    labels = dict([SCHEDULED_LABEL] if job else []) | dict([TRIGGERED_LABEL] if trigger else [])
    had = labels_of(pipeline.name, options.project, options.region) if len(labels) < 2 else {}
    name = deploy_workflow(pipeline.name, definition, options.project, options.region, env, labels=labels)
    key, value = SCHEDULED_LABEL
    if job is not None:
        _to_stderr(f"schedule job {apply_job(job)}: a run on {job['schedule']} (UTC)")
    elif had.get(key) == value and delete_job(job_name(pipeline.name, options.project, options.region)):
        _to_stderr(f"deleted the schedule job of {pipeline.name}: the pipeline declares no schedule any more")
    key, value = TRIGGERED_LABEL
    if trigger is not None:
        _to_stderr(f"Eventarc trigger {apply_trigger(trigger)}: a run for each new object under {folder.uri}")
    elif had.get(key) == value and delete_trigger(trigger_name(pipeline.name, options.project, options.region)):
        _to_stderr(f"deleted the Eventarc trigger of {pipeline.name}: the pipeline declares no trigger any more")
    return name


def delete(pipeline: Pipeline, options: ShipOptions) -> str:
    """Delete the workflow ``deploy`` created and its schedule job and Eventarc trigger, if it has them (the Cloud Run
    service and jobs, deployed with gcloud, stay)."""
    from sparkflow.targets.gcp.deploy import SCHEDULED_LABEL, TRIGGERED_LABEL, labels_of
    from sparkflow.targets.gcp.deploy import delete as delete_workflow
    from sparkflow.targets.gcp.eventarc import delete_trigger, trigger_name
    from sparkflow.targets.gcp.scheduler import delete_job, job_name

    if not (options.project and options.region):
        raise OptionError("--target gcp needs --project and --region (where the workflow was deployed)")
    labels = labels_of(pipeline.name, options.project, options.region)
    deleted = []
    key, value = SCHEDULED_LABEL
    if labels.get(key) == value:
        job = job_name(pipeline.name, options.project, options.region)
        if delete_job(job):
            deleted.append(job)
    key, value = TRIGGERED_LABEL
    if labels.get(key) == value:
        trigger = trigger_name(pipeline.name, options.project, options.region)
        if delete_trigger(trigger):
            deleted.append(trigger)
    deleted.insert(0, delete_workflow(pipeline.name, options.project, options.region))
    return f"deleted {' and '.join(deleted)}"


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def start(pipeline: Pipeline, options: ShipOptions, run_id: str | None) -> str:
    """Start an execution of the pipeline's workflow; return its name."""
    from sparkflow.targets.gcp.watch import start as start_execution

    if run_id is not None:
        raise OptionError(
            "--run-id cannot be chosen on GCP: Workflows names each execution, and its id is the run's id"
        )
    return start_execution(
        pipeline.name, *_place(options), options.inputs, params=options.params, keep_work=options.keep_work
    )


def _place(options: ShipOptions) -> tuple[str, str]:
    """The project and region the workflow was deployed to."""
    if not (options.project and options.region):
        raise OptionError("--target gcp needs --project and --region (where the workflow was deployed)")
    return options.project, options.region


def resume(pipeline: Pipeline, options: ShipOptions, run_id: str) -> str:
    """Start a new execution of the run ``run_id`` of the pipeline's workflow (see
    :func:`sparkflow.targets.gcp.watch.resume`); return its name."""
    from sparkflow.targets.gcp.watch import resume as resume_run

    return resume_run(pipeline.name, *_place(options), run_id)


def logs(pipeline: Pipeline, options: ShipOptions, query: LogQuery) -> Iterator[dict[str, Any]]:
    """The run's log records from Cloud Logging of the workflow's project (see :mod:`sparkflow.targets.gcp.logs`)."""
    from sparkflow.targets.gcp.logs import records

    if not (options.project and options.region):
        raise OptionError("--target gcp needs --project and --region (where the run was started)")
    workflow = f"projects/{options.project}/locations/{options.region}/workflows/{pipeline.name}"
    return records(options.project, f"{workflow}/executions/{query.run_id}", query)


def status(execution: str, options: ShipOptions) -> RunStatus:
    """The execution's status (its name says its project and region)."""
    from sparkflow.targets.gcp.watch import status as read_status

    return read_status(execution)


def follow(execution: str, options: ShipOptions, on_update: Callable[[RunStatus], None] | None = None) -> RunStatus:
    from sparkflow.targets.gcp.watch import follow as follow_execution

    return follow_execution(execution, on_update=on_update)
