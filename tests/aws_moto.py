"""Moto's AWS services for tests: one threaded server for the whole session, and a recording Lambda double.

Moto runs in this process (``ThreadedMotoServer``), so the Lambda double is a patch of moto's "simple" Lambda
backend: every ``lambda:invoke`` a state machine makes lands in :class:`LambdaDouble`, which records the call
(payload, start and end time) and answers with what the test's handler returns. Step Functions execution is
switched on through moto's config API, so moto's own ASL interpreter runs the definition.

Usage: ``tests/conftest.py`` registers this module as a plugin, so every test may ask for the ``moto_aws``
and ``lambda_double`` fixtures (the server starts once per session, on first use)::

    from tests.aws_moto import LambdaDouble, MotoAws, substitute

    def test_runs(moto_aws: MotoAws, lambda_double: LambdaDouble) -> None:
        lambda_double.handler = lambda payload: {"ok": True}
        arn = moto_aws.create_state_machine("wordcount", substitute(asl_text, {"StorageRoot": "s3://b/", ...}))
        execution = moto_aws.run(arn, {"sources": {}})
"""

from __future__ import annotations

import atexit
import json
import os
import re
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import boto3
import pytest

REGION = "us-east-1"
ACCOUNT = "123456789012"
_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class StageFailure(Exception):
    """Raised by a double's handler to make the Lambda function fail with ``error_type``."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class Invocation:
    """One call of the Lambda double."""

    function: str
    payload: dict[str, Any]
    started: float
    finished: float

    @property
    def node(self) -> str:
        """The node the call runs; ``publish`` for the run's publish task, which names none."""
        return str(self.payload.get("node", self.payload.get("phase")))


Handler = Callable[[dict[str, Any]], Any]


@dataclass
class LambdaDouble:
    """Answers every Lambda invocation: records it, waits ``delay`` seconds, then returns ``handler(payload)``.

    The delay makes concurrency observable: two invocations overlap in time only if the interpreter really
    started the second before the first finished.
    """

    delay: float = 0.3
    handler: Handler = field(default=lambda payload: {"node": payload.get("node"), "ok": True})
    calls: list[Invocation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, function_name: str, body: Any, response_headers: dict[str, Any]) -> bytes:
        payload = json.loads(body) if body else {}
        started = time.monotonic()
        time.sleep(self.delay)
        try:
            answer: Any = self.handler(payload)
        except StageFailure as failure:
            response_headers["x-amz-function-error"] = "Unhandled"
            answer = {"errorType": failure.error_type, "errorMessage": failure.message}
        finished = time.monotonic()
        with self._lock:
            self.calls.append(Invocation(function_name, payload, started, finished))
        return json.dumps(answer).encode()

    def by_node(self) -> dict[str, Invocation]:
        with self._lock:
            return {call.node: call for call in self.calls}


@dataclass
class MotoAws:
    """A running moto server and what tests need from it."""

    port: int
    role_arn: str = ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint)

    def create_function(self, name: str) -> str:
        """A Lambda function (its code never runs: the double answers) and its ARN; ``name`` is made unique."""
        archive = BytesIO()
        with zipfile.ZipFile(archive, "w") as handle:
            handle.writestr("handler.py", "def handle(event, context):\n    return event\n")
        created = self.client("lambda").create_function(
            FunctionName=f"{name}-{uuid.uuid4().hex[:8]}",
            Runtime="python3.11",
            Role=self.role_arn,
            Handler="handler.handle",
            Code={"ZipFile": archive.getvalue()},
        )
        return str(created["FunctionArn"])

    def create_state_machine(self, name: str, definition: str) -> str:
        unique = f"{name}-{uuid.uuid4().hex[:8]}"
        created = self.client("stepfunctions").create_state_machine(
            name=unique, definition=definition, roleArn=self.role_arn
        )
        return str(created["stateMachineArn"])

    def run(self, state_machine_arn: str, execution_input: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """Start an execution and wait until it leaves RUNNING; returns describe_execution's answer."""
        sfn = self.client("stepfunctions")
        started = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=f"run-{uuid.uuid4().hex[:12]}", input=json.dumps(execution_input)
        )
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = sfn.describe_execution(executionArn=started["executionArn"])
            if described["status"] != "RUNNING":
                return described
            if time.monotonic() > deadline:
                raise AssertionError(f"execution still RUNNING after {timeout} s")
            time.sleep(0.05)


_started: MotoAws | None = None
_start_lock = threading.Lock()
_active_double: LambdaDouble | None = None


def start_moto() -> MotoAws:
    """Start the session's moto server on first use (later calls return the same one)."""
    global _started
    with _start_lock:
        if _started is not None:
            return _started
        from moto.server import ThreadedMotoServer

        os.environ.update(_FAKE_ENV)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        atexit.register(server.stop)
        port = server.get_host_and_port()[1]
        # Moto's Step Functions backend runs executions only when told to, and its Lambda backend must not
        # look for Docker: both are switched through the server's config API.
        os.environ["MOTO_PORT"] = str(port)
        _patch_lambda()
        aws = MotoAws(port)
        _prepare(aws)
        _started = aws
        return aws


def _patch_lambda() -> None:
    """Route moto's simple Lambda backend to the active double (installed per test by ``lambda_double``)."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        double = _active_double
        if double is None:
            raise AssertionError("a Lambda function was invoked outside a test using the lambda_double fixture")
        return double.invoke(function_name, body, response_headers)

    LambdaSimpleBackend.invoke = invoke  # the whole session uses the double; moto is ours alone here


def _prepare(aws: MotoAws) -> None:
    """Switch on state machine execution and make sure the test role exists.

    Done for every test, not once: a test using moto in-process (``mock_aws``) resets moto's backends and
    configuration when it ends, and those are shared with the server running in this process.
    """
    request = urllib.request.Request(
        f"{aws.endpoint}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    iam = aws.client("iam")
    try:
        aws.role_arn = iam.get_role(RoleName="sparkflow-test")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = iam.create_role(RoleName="sparkflow-test", AssumeRolePolicyDocument=json.dumps(trust))
        aws.role_arn = role["Role"]["Arn"]


@pytest.fixture
def moto_aws() -> MotoAws:
    """The session's moto server (started on first use), prepared for this test."""
    aws = start_moto()
    _prepare(aws)
    return aws


@pytest.fixture
def lambda_double(moto_aws: MotoAws) -> Iterator[LambdaDouble]:
    """A fresh recording Lambda double for one test."""
    global _active_double
    double = LambdaDouble()
    _active_double = double
    try:
        yield double
    finally:
        _active_double = None


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(definition: str) -> set[str]:
    """The ``${Name}`` placeholders a definition leaves for DefinitionSubstitutions."""
    return set(_PLACEHOLDER.findall(definition))


def substitute(definition: str, values: dict[str, str]) -> str:
    """Fill ``${Name}`` placeholders as CloudFormation's DefinitionSubstitutions does; unknown ones fail."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise AssertionError(f"no value for placeholder ${{{name}}}")
        return values[name]

    return _PLACEHOLDER.sub(fill, definition)
