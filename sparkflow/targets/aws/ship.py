"""What ``sparkflow package``, ``deploy``, ``start`` and ``status`` do on AWS (see :class:`~sparkflow.targets.base.
CloudTarget`): boto3 and the build tools are imported here, when a command runs, never when compiling."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import OptionError
from sparkflow.plan import Plan
from sparkflow.shipping.project import context_summary
from sparkflow.targets.base import ShipOptions
from sparkflow.targets.runs import RunStatus


def package(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> list[str]:
    """The stage image's build context and template, or with ``--engine duckdb`` a Lambda .zip and its template."""
    if options.engine == "duckdb":
        return _package_zip(pipeline, plan, definition, options)
    from sparkflow.targets.aws.package import package as package_image

    written = package_image(pipeline, plan, definition, options.out, inputs=options.inputs)
    contents = "Dockerfile, template.yaml, requirements.txt, project/, sparkflow/"
    return [f"wrote {len(written)} files to {options.out}: {contents}", *context_summary(Path(options.out))]


def _package_zip(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> list[str]:
    """Build the .zip deployment; return what to print: sizes, biggest parts, how to deploy it."""
    from sparkflow.targets.aws import lambda_zip

    runtime = lambda_zip.runtime_for(options.python_version)
    built = lambda_zip.package_zip(
        pipeline, plan, definition, options.out, inputs=options.inputs, runtime=runtime, wheelhouse=options.wheelhouse
    )
    key = lambda_zip.zip_code(pipeline, plan, runtime, built.sha256).key
    biggest = ", ".join(f"{name} {size / 1024**2:,.1f} MB" for name, size in built.contributors[:5])
    return [
        f"wrote {options.out}: {built.summary()}; template.yaml",
        f"biggest: {biggest}" + ("" if built.bytecode else f" (no bytecode: this is not Python {runtime.name[6:]})"),
        "deploy: upload the zip, then create the stack (CodeKey defaults to this key):",
        f"  aws s3 cp {built.path} s3://BUCKET/{key}",
        f"  aws cloudformation deploy --template-file {os.path.join(options.out, 'template.yaml')} --stack-name "
        f"{pipeline.name} --capabilities CAPABILITY_IAM --parameter-overrides CodeBucket=BUCKET",
    ]


def deploy(pipeline: Pipeline, plan: Plan, definition: str, options: ShipOptions) -> str:
    """Create or update the state machine and stage functions; return the state machine's ARN."""
    if not options.image_uri:
        raise OptionError("--target aws needs --image-uri (the image `sparkflow package` builds)")
    if options.engine != "spark":
        raise OptionError(
            "--engine duckdb: deploy its zip with the commands `sparkflow package --engine duckdb` prints"
        )
    from sparkflow.targets.aws.deploy import default_stack_name
    from sparkflow.targets.aws.deploy import deploy as deploy_stack
    from sparkflow.targets.aws.session import clients

    return deploy_stack(
        plan,
        definition,
        stack_name=options.stack or default_stack_name(pipeline.name),
        image_uri=options.image_uri,
        storage_root=options.storage(pipeline),
        role_arn=options.role_arn,
        inputs=options.inputs,
        clients=clients(options.region, options.profile),
    )


def start(pipeline: Pipeline, options: ShipOptions, run_id: str | None) -> str:
    """Start an execution of the stack's state machine; return its ARN."""
    from sparkflow.targets.aws.deploy import default_stack_name, find_state_machine
    from sparkflow.targets.aws.session import clients
    from sparkflow.targets.aws.watch import start as start_execution

    made = clients(options.region, options.profile)
    state_machine = find_state_machine(options.stack or default_stack_name(pipeline.name), clients=made)
    return start_execution(state_machine, options.inputs, run_id=run_id, clients=made)


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
