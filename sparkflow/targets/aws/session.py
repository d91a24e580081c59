"""The boto3 clients of the AWS commands (deploy, start, status): the region and profile the user passes
(``--region``, ``--profile``), else what boto3 finds (``AWS_REGION``, ``AWS_PROFILE``, ``~/.aws/config``), with
botocore's adaptive retry mode (it backs off when AWS throttles). Where neither says where or who, one line says
how to set it, instead of botocore's traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sparkflow.errors import SparkflowError

Clients = Callable[[str], Any]
_RETRIES = {"mode": "adaptive", "max_attempts": 10}


class AwsSetupError(SparkflowError, RuntimeError):
    """No region, no credentials, or an unknown profile: nothing was sent to AWS."""


def clients(region: str | None = None, profile: str | None = None) -> Clients:
    """A factory of boto3 clients (``service name -> client``) for ``region`` and ``profile``."""
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    try:
        session = boto3.Session(region_name=region, profile_name=profile)
    except botocore.exceptions.ProfileNotFound as error:
        raise AwsSetupError(f"the AWS profile {profile!r} is not configured: {error}; check --profile") from error
    if not session.region_name:
        raise AwsSetupError(
            "no AWS region: pass --region (e.g. --region eu-west-1), set AWS_REGION, or choose a --profile that has one"
        )
    if session.get_credentials() is None:
        raise AwsSetupError(
            "no AWS credentials: run `aws configure` (or `aws sso login`), set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or pass a --profile that has them"
        )
    config = Config(retries=_RETRIES)
    return lambda service: session.client(service, config=config)


def region_of(arn: str) -> str | None:
    """The region an ARN names (``arn:aws:states:eu-west-1:123456789012:execution:...``), if it is one."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None
