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
        _patch_cloudformation()
        _rules_start_state_machines()
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


@dataclass(frozen=True)
class RuleDelivery:
    """One event an EventBridge rule delivered to a Step Functions target: the input it started the execution with."""

    rule: str
    target: str
    execution_input: dict[str, Any]
    execution_arn: str


#: What rules delivered to state machines, in order (see :func:`_rules_start_state_machines`).
RULE_DELIVERIES: list[RuleDelivery] = []


def _rules_start_state_machines() -> None:
    """An EventBridge rule whose target is a state machine starts an execution of it, with the transformed input.

    Moto 5.2 matches S3's ``Object Created`` events (sent when the bucket's EventBridge notifications are on:
    ``moto.s3.notifications._send_event_bridge_message``) against every rule's pattern, as AWS does, but then
    (1) calls the targets with ``transform_input=False``, so an ``InputTransformer`` is never applied to S3's events,
    and (2) delivers only to log groups, SQS, archives, event buses and API destinations: a ``states`` target raises
    NotImplementedError, which the S3 side swallows. AWS applies the target's input transformer to every matched
    event and starts an execution of a Step Functions target, named by Step Functions (a UUID)
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html,
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-targets.html). Here the matching stays moto's; the
    transformation is moto's own ``EventTemplateParser`` (the predefined ``aws.events.event.ingestion-time``, which
    moto's S3 events lack, taken from the event's time); the execution is started in the Step Functions backend the
    API serves. Every delivery is recorded in :data:`RULE_DELIVERIES`; other targets go to moto as before.
    """
    from moto.events.models import Rule
    from moto.events.utils import EventTemplateParser
    from moto.stepfunctions.responses import get_backend

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        machines = [target for target in self.targets if target["Arn"].split(":")[2:3] == ["states"]]
        for target in machines:
            transformer = target.get("InputTransformer") or {}
            event = {"ingestion-time": original_event.get("time"), **original_event}
            body = EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=event,
            )
            started = get_backend(self.account_id, self.region_name).start_execution(
                target["Arn"], name=str(uuid.uuid4()), execution_input=json.dumps(body)
            )
            RULE_DELIVERIES.append(RuleDelivery(self.name, target["Arn"], body, started.exec_arn))
        others = [target for target in self.targets if target not in machines]
        if others:
            kept, self.targets = self.targets, others
            try:
                original(self, original_event, transform_input)
            finally:
                self.targets = kept

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def _patch_cloudformation() -> None:
    """Close the gaps of moto 5.2's CloudFormation that sparkflow's template meets, as AWS behaves (each shim says
    what moto lacks). The product's template stays as AWS wants it; only moto is taught here."""
    _state_machines_as_aws_makes_them()
    _emr_serverless_applications()
    _change_sets_as_aws_runs_them()
    _parameters_used_in_fn_sub_count()


def _parameters_used_in_fn_sub_count() -> None:
    """A changed parameter changes every resource using it, ``${Name}`` inside ``Fn::Sub`` included.

    Moto decides which unchanged resources a new parameter value modifies from their ``Ref``s alone
    (``parsing.get_references_from_template``), so a resource that reads a parameter only through ``Fn::Sub`` (the
    state machine's ``StorageRoot`` substitution: ``s3://${StorageBucket}/${StoragePrefix}/``) keeps its old value.
    AWS updates every resource whose resolved properties change
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference-sub.html).
    """
    from moto.cloudformation import parsing

    refs_only = parsing.get_references_from_template

    def references(template: Any) -> list[str]:
        found = list(refs_only(template))
        if isinstance(template, dict):
            for key, value in template.items():
                if key == "Fn::Sub":
                    text = value[0] if isinstance(value, list) else value
                    found += _PLACEHOLDER.findall(str(text))
                    if isinstance(value, list) and len(value) > 1:
                        found += references(value[1])
                else:
                    found += references(value)
        elif isinstance(template, list):
            for item in template:
                found += references(item)
        return found

    parsing.get_references_from_template = references


def _state_machines_as_aws_makes_them() -> None:
    """``AWS::StepFunctions::StateMachine`` as AWS creates, updates and deletes it.

    Moto's model (``moto.stepfunctions.models.StateMachine``) ignores ``DefinitionSubstitutions``,
    ``LoggingConfiguration`` and ``TracingConfiguration``, on create and on update, and writes to moto's plain Step
    Functions backend, while with execution switched on moto's API serves another one (the ASL interpreter's): a
    stack's state machine would be invisible to ``list_state_machines`` and ``start_execution``. AWS fills every
    ``${Name}`` of the definition from DefinitionSubstitutions and applies the logging and tracing settings
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-stepfunctions-statemachine.html).
    """
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend

    def settings(properties: dict[str, Any]) -> dict[str, Any]:
        substitutions = {key: str(value) for key, value in (properties.get("DefinitionSubstitutions") or {}).items()}
        definition = _PLACEHOLDER.sub(
            lambda match: substitutions.get(match.group(1), match.group(0)), properties.get("DefinitionString", "")
        )
        return {
            "definition": definition,
            "logging": _api_shape(properties.get("LoggingConfiguration")),
            "tracing": _api_shape(properties.get("TracingConfiguration")),
        }

    def create(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        wanted = settings(properties)
        return get_backend(account_id, region_name).create_state_machine(
            properties.get("StateMachineName", resource_name),
            wanted["definition"],
            properties.get("RoleArn", ""),
            loggingConfiguration=wanted["logging"],
            tracingConfiguration=wanted["tracing"],
        )

    def update(
        cls: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = cloudformation_json["Properties"]
        if properties.get("StateMachineName", original_resource.name) != original_resource.name:  # a replacement
            created = create(cls, new_resource_name, cloudformation_json, account_id, region_name)
            get_backend(account_id, region_name).delete_state_machine(original_resource.arn)
            return created
        wanted = settings(properties)
        return get_backend(account_id, region_name).update_state_machine(
            original_resource.arn,
            definition=wanted["definition"],
            role_arn=properties.get("RoleArn"),
            logging_configuration=wanted["logging"],
            tracing_configuration=wanted["tracing"],
        )

    def delete(cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str) -> None:
        get_backend(account_id, region_name).delete_state_machine(resource_name)

    StateMachine.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]
    StateMachine.update_from_cloudformation_json = classmethod(update)  # type: ignore[method-assign,assignment]
    StateMachine.delete_from_cloudformation_json = classmethod(delete)  # type: ignore[method-assign,assignment]
    # A state machine's own delete() goes to the plain backend: make the stack's deletion use the classmethod.
    StateMachine.delete = lambda self, account_id, region_name: delete(  # type: ignore[attr-defined]
        StateMachine, self.arn, {}, account_id, region_name
    )


def _api_shape(value: Any) -> Any:
    """CloudFormation's property names (``Level``, ``CloudWatchLogsLogGroup``) as the API's (``level``, ...)."""
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _api_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_api_shape(item) for item in value]
    return value


def _emr_serverless_applications() -> None:
    """``AWS::EMRServerless::Application``, which moto's CloudFormation has no model for (its
    ``resource_class_from_type`` answers None and the resource is skipped, so ``Ref`` and ``GetAtt`` of it fail).
    This model creates, updates and deletes the application in moto's EMR Serverless backend, as AWS does
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-emrserverless-application.html):
    ``Ref`` is the application id, ``GetAtt Arn`` and ``GetAtt ApplicationId`` its ARN and id."""
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.emrserverless.models import emrserverless_backends

    class EmrServerlessApplication(CloudFormationModel):
        def __init__(self, application: Any) -> None:
            self.application = application

        @property
        def physical_resource_id(self) -> str:
            return str(self.application.id)

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::EMRServerless::Application"

        @staticmethod
        def cloudformation_name_type() -> str:
            return "Name"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in ("Arn", "ApplicationId")

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return str(self.application.arn if attribute_name == "Arn" else self.application.id)

        @classmethod
        def create_from_cloudformation_json(  # type: ignore[override]
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> EmrServerlessApplication:
            properties = cloudformation_json["Properties"]
            application = emrserverless_backends[account_id][region_name].create_application(
                name=properties.get("Name", resource_name),
                release_label=properties["ReleaseLabel"],
                application_type=properties["Type"],
                client_token=uuid.uuid4().hex,
                initial_capacity=properties.get("InitialCapacity"),
                maximum_capacity=properties.get("MaximumCapacity"),
                tags={},
                auto_start_configuration=_api_shape(properties.get("AutoStartConfiguration")),
                auto_stop_configuration=_api_shape(properties.get("AutoStopConfiguration")),
                network_configuration=_api_shape(properties.get("NetworkConfiguration")),
            )
            return cls(application)

        @classmethod
        def update_from_cloudformation_json(  # type: ignore[override]
            cls,
            original_resource: Any,
            new_resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> EmrServerlessApplication:
            properties = cloudformation_json["Properties"]
            emrserverless_backends[account_id][region_name].update_application(
                original_resource.application.id,
                initial_capacity=properties.get("InitialCapacity"),
                maximum_capacity=properties.get("MaximumCapacity"),
                auto_start_configuration=_api_shape(properties.get("AutoStartConfiguration")),
                auto_stop_configuration=_api_shape(properties.get("AutoStopConfiguration")),
                network_configuration=_api_shape(properties.get("NetworkConfiguration")),
            )
            return original_resource  # type: ignore[no-any-return]

        def delete(self, account_id: str, region_name: str) -> None:
            emrserverless_backends[account_id][region_name].delete_application(self.application.id)

    parsing.get_model_map.cache_clear()  # the map of types to models is cached: let it see the new model
    assert parsing.resource_class_from_type("AWS::EMRServerless::Application") is EmrServerlessApplication


def _change_sets_as_aws_runs_them() -> None:
    """Executing a change set as AWS does.

    Moto (``CloudFormationBackend.execute_change_set``, "TODO: handle execution errors and implement rollback")
    applies the change set synchronously, and (1) after a change set that creates a stack it keeps the outputs of
    the empty template the stack was made with, so the stack has no ``Outputs``; (2) when a resource fails, the
    exception escapes as the ExecuteChangeSet call's error, nothing is rolled back and no event names the resource.
    AWS evaluates the outputs of the new template, records a ``CREATE_FAILED`` / ``UPDATE_FAILED`` event with the
    resource's ``ResourceStatusReason`` and rolls the stack back: an update to its previous template and
    parameters (``UPDATE_ROLLBACK_COMPLETE``), a creation by deleting what was made (``ROLLBACK_COMPLETE``)
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-changesets-execute.html,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html#troubleshooting-errors-update-rollback-failed).
    Here the failed resource is found by wrapping moto's create and update of one resource; the rollback re-applies
    the previous template with moto's own update.
    """
    from moto.cloudformation import models, parsing

    def naming(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(logical_id: str, resource_json: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            try:
                return function(logical_id, resource_json, *args, **kwargs)
            except Exception as error:
                error.sparkflow_failed = (logical_id, resource_json.get("Type", "?"))  # type: ignore[attr-defined]
                raise

        return wrapped

    parsing.parse_and_create_resource = naming(parsing.parse_and_create_resource)
    parsing.parse_and_update_resource = naming(parsing.parse_and_update_resource)
    original = models.CloudFormationBackend.execute_change_set

    def execute(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks[change_set.stack_id]
        previous_template, previous_parameters = stack.template, dict(stack.parameters)
        kind = change_set.change_set_type
        try:
            original(self, change_set_name, stack_name)
        except Exception as error:
            logical_id, resource_type = getattr(error, "sparkflow_failed", ("?", "?"))
            reason = str(getattr(error, "message", "") or error)
            stack.events.append(
                models.Event(
                    stack.stack_id, stack.name, logical_id, logical_id, resource_type, f"{kind}_FAILED", reason, None
                )
            )
            if kind == "CREATE":
                stack._add_stack_event(
                    "ROLLBACK_IN_PROGRESS",
                    f"The following resource(s) failed to create: [{logical_id}]. Rollback requested by user.",
                )
                stack.resource_map.delete()
                stack.status = "ROLLBACK_COMPLETE"
            else:
                stack._add_stack_event(
                    "UPDATE_ROLLBACK_IN_PROGRESS", f"The following resource(s) failed to update: [{logical_id}]."
                )
                stack.resource_map.update(stack.parse_template(previous_template), previous_parameters)
                stack.status = "UPDATE_ROLLBACK_COMPLETE"
            stack._add_stack_event(stack.status)
            change_set.execution_status = "EXECUTE_FAILED"
            return
        stack._parse_template()
        stack.output_map = stack._create_output_map()
        if kind == "UPDATE" and change_set.parameters:
            stack.parameters = change_set.parameters

    models.CloudFormationBackend.execute_change_set = execute  # type: ignore[method-assign]


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
