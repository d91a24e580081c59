"""Deploy a pipeline to AWS as the CloudFormation stack of the template `sparkflow package` writes, and the one
lifecycle rule of the storage bucket that the stack cannot set (:mod:`sparkflow.targets.aws.lifecycle`).

``deploy`` uploads what the stack reads from S3 (the duckdb engine's function zip, the serverless Spark stages'
entry script) to the code bucket, fills the template's parameters (the image, the code, the storage root, and any
``--parameter NAME=VALUE``), then creates or updates the stack through a change set
(:mod:`sparkflow.targets.aws.cloudformation`): one deployment, previewed, rolled back by CloudFormation when a
resource fails, deleted as a whole by ``sparkflow delete``. The state machine's ARN is the stack's
``StateMachineArn`` output, which ``start`` reads too.

>>> deploy(Packaged(template_text), stack_name="wordcount", storage_root="s3://my-bucket/sparkflow/",
...        image_uri="1234.dkr.ecr...:v1", clients=clients())  # doctest: +SKIP
'arn:aws:states:us-east-1:123456789012:stateMachine:wordcount'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sparkflow.errors import OptionError
from sparkflow.layout import WORK_EXPIRY_DAYS
from sparkflow.targets.aws import cloudformation
from sparkflow.targets.aws.cloudformation import DeployError, Report
from sparkflow.targets.aws.lifecycle import apply_work_rule
from sparkflow.targets.aws.locations import storage_location

Clients = Callable[[str], Any]
#: The stack's output holding the state machine's ARN (:mod:`sparkflow.targets.aws.template`).
STATE_MACHINE_OUTPUT = "StateMachineArn"
# The stack name also names the state machine (80 characters at most) and the EMR Serverless application
# NAME-spark (64 at most): https://docs.aws.amazon.com/emr-serverless/latest/APIReference/API_CreateApplication.html
_STACK = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,57}$")

__all__ = ["DeployError", "Packaged", "Upload", "default_stack_name", "delete", "deploy", "find_state_machine"]


@dataclass(frozen=True)
class Upload:
    """A local file the stack reads from S3: put into the code bucket at ``key`` before the change set.

    Attributes:
        path: the file.
        key: its key in the code bucket (named by its digest, so a changed file is a changed parameter).
        fills: ``(bucket, key) -> template parameters`` that say where it is.
    """

    path: Path
    key: str
    fills: Callable[[str, str], dict[str, str]]


@dataclass(frozen=True)
class Packaged:
    """What ``sparkflow package`` produced for a deployment: the template text and the files it reads from S3."""

    template: str
    uploads: tuple[Upload, ...] = field(default=())


def zip_upload(path: Path, key: str) -> Upload:
    """The duckdb engine's function zip: the template's ``CodeBucket`` and ``CodeKey``."""
    return Upload(path, key, lambda bucket, at: {"CodeBucket": bucket, "CodeKey": at})


def emr_entry_upload(path: Path, pipeline: str) -> Upload:
    """The serverless Spark stages' entry script (``emr/entry.py``): the template's ``EmrEntryPoint``."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return Upload(
        path, f"sparkflow/{pipeline}/emr-entry-{digest}.py", lambda bucket, at: {"EmrEntryPoint": f"s3://{bucket}/{at}"}
    )


def default_stack_name(pipeline: str) -> str:
    """The stack a pipeline deploys as unless told otherwise: its name with '_' as '-' (CloudFormation stack names
    hold letters, digits and '-'), so ``daily_revenue`` and ``daily-revenue`` both deploy as ``daily-revenue``."""
    return pipeline.replace("_", "-")


def check_stack_name(stack_name: str) -> None:
    if not _STACK.match(stack_name):
        raise OptionError(
            f"stack name {stack_name!r}: use a letter then letters, digits or '-', at most 58 characters (it names "
            "the stack, its state machine and its EMR Serverless application NAME-spark); pass another --stack"
        )


def deploy(
    packaged: Packaged,
    *,
    stack_name: str,
    storage_root: str,
    clients: Clients,
    image_uri: str | None = None,
    code_bucket: str | None = None,
    parameters: Mapping[str, str] | None = None,
    role_arn: str | None = None,
    report: Report = lambda line: None,
    poll_s: float = 5.0,
    work_expiry_days: int = WORK_EXPIRY_DAYS,
) -> str:
    """Create or update the stack ``stack_name`` from ``packaged``, then the storage bucket's lifecycle rule that
    expires failed runs' working files (:mod:`sparkflow.targets.aws.lifecycle`); return the state machine's ARN.

    Args:
        packaged: the template and the files it reads from S3.
        stack_name: the stack (it also names the state machine).
        storage_root: ``s3://bucket/prefix/`` runs write under (the ``StorageBucket`` / ``StoragePrefix`` parameters).
        clients: ``service name -> boto3 client``.
        image_uri: the stage image in ECR (``ImageUri``), for the image template.
        code_bucket: where the uploads go (default: the storage root's bucket), under ``sparkflow/<pipeline>/``.
        parameters: further template parameters (e.g. ``ContainerSubnets``, ``EmrImageUri``); they win.
        role_arn: a CloudFormation service role to act as (default: the caller's credentials).
        report: called with each line of progress (the change set, the stack events).
        poll_s: the pause between readings of the change set and the stack.
        work_expiry_days: after how many days the bucket's lifecycle rule deletes working files (0: no rule).

    Raises:
        OptionError: a bad stack name, an unknown parameter or a missing one, before anything is sent.
        PackageError: a storage root that is not an S3 location.
        DeployError: AWS refused an upload or the change set, or CloudFormation failed the stack (naming why).
    """
    check_stack_name(stack_name)
    storage = storage_location(storage_root)
    bucket = code_bucket or storage.bucket
    values = {"StorageBucket": storage.bucket, "StoragePrefix": storage.key}
    if image_uri:
        values["ImageUri"] = image_uri
    for upload in packaged.uploads:
        values |= upload.fills(bucket, upload.key)
    values |= dict(parameters or {})
    values = checked_parameters(packaged.template, values)
    s3 = clients("s3")
    for upload in packaged.uploads:
        _upload(s3, upload.path, bucket, upload.key, report)
    body: str | None = packaged.template
    url = None
    if len(packaged.template.encode()) > cloudformation.TEMPLATE_BODY_LIMIT:
        digest = hashlib.sha256(packaged.template.encode()).hexdigest()[:16]
        key = f"sparkflow/{stack_name}/template-{digest}.yaml"
        _put(s3, packaged.template.encode(), bucket, key, report)
        body, url = None, _object_url(s3, bucket, key)
    found = cloudformation.apply(
        clients("cloudformation"),
        stack_name,
        body,
        values,
        template_url=url,
        role_arn=role_arn,
        report=report,
        poll_s=poll_s,
    )
    apply_work_rule(s3, storage, work_expiry_days, report)
    return _state_machine(stack_name, found)


def delete(stack_name: str, *, clients: Clients, report: Report = lambda line: None, poll_s: float = 5.0) -> None:
    """Delete the stack ``stack_name`` and wait. The data stays: the storage bucket is not the stack's, and the
    values table the stack made is retained (``DeletionPolicy: Retain``)."""
    check_stack_name(stack_name)
    cloudformation.delete(clients("cloudformation"), stack_name, report=report, poll_s=poll_s)


def find_state_machine(stack_name: str, *, clients: Clients) -> str:
    """The ARN of the state machine of the stack ``stack_name`` (its ``StateMachineArn`` output).

    Raises:
        DeployError: there is no such stack (deploy first) or it has no state machine.
    """
    try:
        found = cloudformation.outputs(clients("cloudformation"), stack_name)
    except DeployError as error:
        if "no stack named" not in str(error):
            raise
        raise DeployError(
            f"no stack named {stack_name!r} (so no state machine to run) in this account and region: deploy it first "
            f"with `sparkflow deploy PIPELINE --target aws --stack {stack_name} ...`, or pass the --stack it was "
            "deployed with"
        ) from None
    return _state_machine(stack_name, found)


def checked_parameters(template_text: str, values: Mapping[str, str]) -> dict[str, str]:
    """``values`` limited to the template's parameters, every one without a default filled.

    Raises:
        OptionError: a ``--parameter`` the template does not have, or parameters missing (each with its meaning).
    """
    declared: dict[str, Any] = (yaml.safe_load(template_text) or {}).get("Parameters", {})
    implied = {"StorageBucket", "StoragePrefix", "ImageUri", "CodeBucket", "CodeKey", "EmrEntryPoint"}
    unknown = sorted(set(values) - set(declared) - implied)
    if unknown:
        raise OptionError(
            f"the stack has no parameter {', '.join(unknown)}: its parameters are {', '.join(sorted(declared))}"
        )
    missing = [name for name, spec in declared.items() if "Default" not in spec and not values.get(name)]
    if missing:
        hint = {"ImageUri": "pass --image-uri (the image built from `sparkflow package`'s Dockerfile, in ECR)"}
        lines = [f"  {name}: {hint.get(name, declared[name].get('Description', ''))}" for name in missing]
        raise OptionError(
            "the stack needs values for these parameters; pass each with --parameter NAME=VALUE (a list "
            "comma-separated):\n" + "\n".join(lines)
        )
    return {name: value for name, value in values.items() if name in declared}


def _state_machine(stack_name: str, found: Mapping[str, str]) -> str:
    if STATE_MACHINE_OUTPUT not in found:
        raise DeployError(
            f"stack {stack_name} has no {STATE_MACHINE_OUTPUT} output: it was not deployed by sparkflow; pass the "
            "--stack of the pipeline's stack"
        )
    return found[STATE_MACHINE_OUTPUT]


def _upload(s3: Any, path: Path, bucket: str, key: str, report: Report) -> None:
    """Upload ``path`` unless the object is already there with the same size (keys are named by digest)."""
    from botocore.exceptions import ClientError

    try:
        if s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == path.stat().st_size:
            return
    except ClientError:
        pass
    report(f"uploading {path} to s3://{bucket}/{key}")
    try:
        s3.upload_file(str(path), bucket, key)
    except ClientError as error:
        raise DeployError(f"uploading {path} to s3://{bucket}/{key}: {error}; check --code-bucket") from error


def _put(s3: Any, body: bytes, bucket: str, key: str, report: Report) -> None:
    from botocore.exceptions import ClientError

    report(f"uploading the template to s3://{bucket}/{key} (too long to send inline)")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    except ClientError as error:
        raise DeployError(f"uploading the template to s3://{bucket}/{key}: {error}; check --code-bucket") from error


def _object_url(s3: Any, bucket: str, key: str) -> str:
    """The object's HTTPS URL in the client's region and endpoint (what TemplateURL takes)."""
    endpoint = str(s3.meta.endpoint_url).rstrip("/")
    if endpoint.endswith(".amazonaws.com"):
        return f"https://{bucket}.s3.{s3.meta.region_name}.amazonaws.com/{key}"
    return f"{endpoint}/{bucket}/{key}"
