"""What ``sparkflow package``, ``deploy``, ``delete``, ``start`` and ``status`` do on AWS (see
:class:`~sparkflow.targets.base.CloudTarget`): boto3 and the build tools are imported here, when a command runs,
never when compiling."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkflow import engines
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.engines import EngineSpec
from sparkflow.errors import OptionError
from sparkflow.plan import Plan
from sparkflow.shipping.project import context_summary
from sparkflow.targets.base import ShipOptions
from sparkflow.targets.runs import RunStatus

if TYPE_CHECKING:
    from sparkflow.targets.aws.deploy import Packaged
    from sparkflow.targets.aws.lambda_zip import ZipPackage
    from sparkflow.targets.runlogs import LogQuery


def package(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> list[str]:
    """The stage image's build context and template, or for an engine that ships as a zip (``--engine duckdb``) a
    Lambda .zip and its template."""
    if _shipping(options).ships_as == "zip":
        built, key = _package_zip(pipeline, plan, definition, options)
        return [
            *_zip_summary(built, options),
            *_trigger_lines(plan, options, options.storage_root),
            f"deploy: `sparkflow deploy --engine {options.engine}` uploads the zip and creates the stack; or by hand:",
            f"  aws s3 cp {built.path} s3://BUCKET/{key}",
            f"  aws cloudformation deploy --template-file {os.path.join(options.out, 'template.yaml')} --stack-name "
            f"{pipeline.name} --capabilities CAPABILITY_IAM --parameter-overrides CodeBucket=BUCKET",
            *_lifecycle_lines(pipeline, options),
        ]
    return [
        *_package_image(pipeline, plan, definition, options),
        *_trigger_lines(plan, options, options.storage_root),
        *_lifecycle_lines(pipeline, options),
    ]


def _lifecycle_lines(pipeline: Pipeline, options: ShipOptions) -> list[str]:
    """The storage bucket's lifecycle rule, which `sparkflow deploy` sets and a stack deployed by hand does not
    (:mod:`sparkflow.targets.aws.lifecycle`)."""
    from sparkflow.targets.aws.lifecycle import work_rule
    from sparkflow.targets.aws.locations import storage_location

    root = options.storage_root or pipeline.storage
    if options.work_expiry_days == 0 or not root or not root.startswith("s3://"):
        return []
    storage = storage_location(root)
    rule = json.dumps(work_rule(storage, options.work_expiry_days), sort_keys=True)
    return [
        f"lifecycle: `sparkflow deploy` adds to bucket {storage.bucket}'s lifecycle rules the one that deletes what "
        f"failed runs leave under {storage.key}/_work/ after {options.work_expiry_days} days; deploying by hand, "
        f"add it yourself: {rule}"
    ]


def _shipping(options: ShipOptions) -> EngineSpec:
    """The engine of ``--engine``, its zip options refused when it ships as an image."""
    spec = engines.engine(options.engine, what="--engine")
    given = [
        flag for flag, value in (("--python", options.python_version), ("--wheelhouse", options.wheelhouse)) if value
    ]
    if spec.ships_as == "image" and given:
        flags = " and ".join(given)
        raise OptionError(
            f"{flags} {'build' if len(given) > 1 else 'builds'} a Lambda .zip (--engine "
            f"{' or --engine '.join(engines.shipped_as('zip'))}); --engine {options.engine} ships as an image: "
            f"drop {flags}"
        )
    return spec


def _trigger_lines(plan: Plan, options: ShipOptions, storage_root: str | None) -> list[str]:
    """What a triggered pipeline's owner must do to the watched bucket (raises PackageError when the folder cannot
    be watched, before anything is sent)."""
    from sparkflow.targets.aws.trigger import enable_events_hint, watched

    if plan.start_trigger is None:
        return []
    return [enable_events_hint(watched(plan, plan.start_trigger, options.inputs, storage_root))]


def _package_image(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> list[str]:
    from sparkflow.targets.aws.package import package as package_image

    written = package_image(pipeline, plan, definition, options.out, engine=options.engine, inputs=options.inputs)
    contents = "Dockerfile, template.yaml, requirements.txt, project/, sparkflow/"
    return [f"wrote {len(written)} files to {options.out}: {contents}", *context_summary(Path(options.out))]


def _package_zip(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> tuple[ZipPackage, str]:
    """Build the .zip deployment and its template; return it and its default S3 key."""
    from sparkflow.targets.aws import lambda_zip

    runtime = lambda_zip.runtime_for(options.python_version)
    built = lambda_zip.package_zip(
        pipeline,
        plan,
        definition,
        options.out,
        engine=options.engine,
        inputs=options.inputs,
        runtime=runtime,
        wheelhouse=options.wheelhouse,
    )
    return built, lambda_zip.zip_code(pipeline, plan, runtime, built.sha256).key


def _zip_summary(built: ZipPackage, options: ShipOptions) -> list[str]:
    """What to print of a built zip: sizes and biggest parts."""
    biggest = ", ".join(f"{name} {size / 1024**2:,.1f} MB" for name, size in built.contributors[:5])
    python = built.runtime.name[6:]
    return [
        f"wrote {options.out}: {built.summary()}; template.yaml",
        f"biggest: {biggest}" + ("" if built.bytecode else f" (no bytecode: this is not Python {python})"),
    ]


def deploy(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> str:
    """Package, upload what the stack reads from S3, create or update the stack through a change set (progress on
    stderr); return the state machine's ARN."""
    from sparkflow.targets.aws.deploy import deploy as deploy_stack
    from sparkflow.targets.aws.session import clients

    image = _shipping(options).ships_as == "image"
    if image and not options.image_uri:
        raise OptionError(
            f"--target aws needs --image-uri: build the Dockerfile `sparkflow package{engines.flag(options.engine)}` "
            "writes, push it to ECR and pass its URI (or deploy a Lambda zip with --engine "
            f"{' or '.join(engines.shipped_as('zip'))})"
        )
    stack = stack_name(pipeline, options)
    storage_root = options.storage(pipeline)
    made = clients(options.region, options.profile)  # refused (no region, no credentials) before packaging
    trigger = _trigger_lines(plan, options, storage_root)
    packaged = _packaged(pipeline, plan, definition, options)
    arn = deploy_stack(
        packaged,
        stack_name=stack,
        storage_root=storage_root,
        clients=made,
        image_uri=options.image_uri if image else None,
        code_bucket=options.code_bucket,
        parameters=options.parameters,
        role_arn=options.role_arn,
        report=_to_stderr,
        work_expiry_days=options.work_expiry_days,
    )
    for line in trigger:
        _to_stderr(line)
    return arn


def delete(pipeline: Pipeline, options: ShipOptions) -> str:
    """Delete the pipeline's stack and wait; the storage bucket and the values table stay."""
    from sparkflow.targets.aws.deploy import delete as delete_stack
    from sparkflow.targets.aws.session import clients

    stack = stack_name(pipeline, options)
    delete_stack(stack, clients=clients(options.region, options.profile), report=_to_stderr)
    return f"deleted stack {stack} (its storage and values table are kept)"


def stack_name(pipeline: Pipeline, options: ShipOptions) -> str:
    from sparkflow.targets.aws.deploy import check_stack_name, default_stack_name

    name = options.stack or default_stack_name(pipeline.name)
    check_stack_name(name)
    return name


def _packaged(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> Packaged:
    """Run ``package`` into ``options.out`` and gather what the deployment sends: the template it wrote and the
    files the stack reads from S3 (the zip; the serverless Spark stages' entry script)."""
    from sparkflow.targets.aws.deploy import Packaged, emr_entry_upload, zip_upload
    from sparkflow.targets.aws.jobs import uses_serverless_spark

    out = Path(options.out)
    uploads = []
    if _shipping(options).ships_as == "zip":
        built, key = _package_zip(pipeline, plan, definition, options)
        lines = _zip_summary(built, options)
        uploads.append(zip_upload(Path(built.path), key))
    else:
        lines = _package_image(pipeline, plan, definition, options)
        if uses_serverless_spark(plan):
            uploads.append(emr_entry_upload(out / "emr" / "entry.py", plan.pipeline))
    for line in lines:
        _to_stderr(line)
    return Packaged((out / "template.yaml").read_text(encoding="utf-8"), tuple(uploads))


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def start(pipeline: Pipeline, options: ShipOptions, run_id: str | None) -> str:
    """Start an execution of the stack's state machine; return its ARN."""
    from sparkflow.targets.aws.deploy import find_state_machine
    from sparkflow.targets.aws.session import clients
    from sparkflow.targets.aws.watch import start as start_execution

    made = clients(options.region, options.profile)
    state_machine = find_state_machine(stack_name(pipeline, options), clients=made)
    return start_execution(
        state_machine, options.inputs, run_id=run_id, clients=made, params=options.params, keep_work=options.keep_work
    )


def resume(pipeline: Pipeline, options: ShipOptions, run_id: str) -> str:
    """Start a new execution of the run ``run_id`` of the stack's state machine (see
    :mod:`sparkflow.targets.aws.resume`); return its ARN."""
    from sparkflow.targets.aws.deploy import find_state_machine
    from sparkflow.targets.aws.resume import resume as resume_run
    from sparkflow.targets.aws.session import clients

    made = clients(options.region, options.profile)
    state_machine = find_state_machine(stack_name(pipeline, options), clients=made)
    return resume_run(state_machine, run_id, clients=made)


def logs(pipeline: Pipeline, options: ShipOptions, query: LogQuery) -> Iterator[dict[str, Any]]:
    """The run's log records from the stack's stages' log group (see :mod:`sparkflow.targets.aws.logs`)."""
    from sparkflow.targets.aws.deploy import find_state_machine
    from sparkflow.targets.aws.logs import records
    from sparkflow.targets.aws.resume import executions_of
    from sparkflow.targets.aws.session import clients
    from sparkflow.targets.aws.stack import stage_log_group
    from sparkflow.targets.aws.watch import WatchError

    made = clients(options.region, options.profile)
    stack = stack_name(pipeline, options)
    state_machine = find_state_machine(stack, clients=made)
    sfn = made("stepfunctions")
    executions = executions_of(sfn, state_machine, query.run_id)
    if not executions:
        raise WatchError(
            f"run {query.run_id}: the state machine of stack {stack} has no run {query.run_id!r}; give the run id "
            "`sparkflow start` printed (the name of the run's first execution)"
        )
    latest = executions[-1].arn

    def ended() -> bool:
        return str(sfn.describe_execution(executionArn=latest)["status"]) != "RUNNING"

    return records(stage_log_group(stack), query, clients=made, run_ended=ended)


def status(execution: str, options: ShipOptions) -> RunStatus:
    """The execution's status, in the region its ARN names unless ``--region`` says otherwise."""
    from sparkflow.targets.aws.session import clients, region_of
    from sparkflow.targets.aws.watch import status as read_status

    return read_status(execution, clients=clients(options.region or region_of(execution), options.profile))


def follow(execution: str, options: ShipOptions, on_update: Callable[[RunStatus], None] | None = None) -> RunStatus:
    from sparkflow.targets.aws.session import clients, region_of
    from sparkflow.targets.aws.watch import follow as follow_execution

    made = clients(options.region or region_of(execution), options.profile)
    return follow_execution(execution, clients=made, on_update=on_update)
