"""Create or update a pipeline's state machine and stage functions on AWS with boto3, idempotently.

What one ``deploy`` call leaves in the account, all named after the stack (``NAME``):

* log groups ``/aws/lambda/NAME-stages`` (the functions) and ``/aws/vendedlogs/states/NAME`` (executions);
* without ``role_arn``: roles ``NAME-stages`` and ``NAME-states`` with the same least-privilege inline policies
  as the CloudFormation template of :mod:`sparkflow.targets.aws.template` (the statements are built by the same
  functions, :mod:`sparkflow.targets.aws.iam`);
* one Lambda function ``NAME-<memory>mb`` per distinct stage memory size, from the image ``image_uri``, with
  the memory, timeout (the longest stage's), /tmp size and environment of the template; functions of this
  stack whose memory size no stage uses any more are deleted;
* when the pipeline has value stages and declares no DynamoDB table: the table ``NAME-values``;
* the state machine ``NAME`` (Standard, execution logging at ERROR level without execution data, X-Ray
  tracing), its definition the compiled ASL with its ``${Placeholders}`` filled as DefinitionSubstitutions
  would fill them.

A second call updates everything in place: the same ARNs, no duplicates. boto3 is used directly rather than
CloudFormation so deploys are quick, need no S3 bucket for templates and can be tested against moto (whose
CloudFormation support does not cover Step Functions logging and Lambda images well); `sparkflow package`
writes the equivalent template for teams that deploy through CloudFormation.

>>> deploy(plan, definition, stack_name="wordcount", image_uri="1234.dkr.ecr...:v1",
...        storage_root="s3://my-bucket/sparkflow/")  # doctest: +SKIP
'arn:aws:states:us-east-1:123456789012:stateMachine:wordcount'
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sparkflow.errors import PackageError, SparkflowError
from sparkflow.layout import with_slash
from sparkflow.plan import Plan
from sparkflow.shipping.environment import function_environment
from sparkflow.targets.aws.iam import (
    MapRuns,
    assume_role_policy,
    stage_statements,
    state_machine_statements,
    uses_distributed_map,
)
from sparkflow.targets.aws.locations import read_locations, sink_locations, storage_location
from sparkflow.targets.aws.stack import (
    EPHEMERAL_STORAGE_MB,
    KV_TABLE_KEY,
    LOG_RETENTION_DAYS,
    STORAGE_ROOT,
    check_placeholders,
    declared_table,
    function_description,
    function_groups,
    function_key,
    function_timeout,
    has_values,
)

Clients = Callable[[str], Any]
# Stack names become function names "NAME-10240mb" (at most 64 characters) and role names "NAME-stages".
_STACK = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,47}$")
_FUNCTION = "{stack}-{memory}mb"
# A role created a moment ago may not be assumable by Lambda yet (IAM is eventually consistent).
_ROLE_PROPAGATION_ATTEMPTS = 20
_ROLE_PROPAGATION_DELAY_S = 3.0


class DeployError(SparkflowError, RuntimeError):
    """AWS refused or failed a deployment step; the message names the step and the service's reason."""


def default_clients(service: str) -> Any:
    import boto3

    return boto3.client(service)


def default_stack_name(pipeline: str) -> str:
    """The stack a pipeline deploys as unless told otherwise: its name with '_' as '-' (CloudFormation stack names
    hold letters, digits and '-'), so ``daily_revenue`` and ``daily-revenue`` both deploy as ``daily-revenue``."""
    return pipeline.replace("_", "-")


def check_stack_name(stack_name: str) -> None:
    if not _STACK.match(stack_name):
        raise DeployError(
            f"stack name {stack_name!r}: use a letter then letters, digits or '-', at most 48 characters "
            "(it names the state machine, the functions NAME-<memory>mb and the roles)"
        )


def deploy(
    plan: Plan,
    definition_text: str,
    *,
    stack_name: str,
    image_uri: str,
    storage_root: str,
    role_arn: str | None = None,
    inputs: Mapping[str, str] | None = None,
    clients: Clients | None = None,
) -> str:
    """Create or update the state machine ``stack_name`` and its stage functions; return the state machine ARN.

    Args:
        plan: the pipeline's Plan for the aws target.
        definition_text: its compiled ASL (``${StorageRoot}`` and ``${StageFunction<N>MB}`` left open).
        stack_name: names everything deployed (see the module docstring).
        image_uri: the stage image (``sparkflow package``'s Dockerfile, pushed to ECR).
        storage_root: ``s3://bucket/prefix/``: runs write under it; the functions may touch nothing else there.
        role_arn: one existing role for the functions and the state machine (it must trust both
            ``lambda.amazonaws.com`` and ``states.amazonaws.com``); by default two least-privilege roles are made.
        inputs: source name -> S3 location runs read it from, when not the declared one (allowed and granted).
        clients: ``service name -> boto3 client``; by default ``boto3.client`` with the usual configuration.

    Raises:
        PackageError: a location or KV store that cannot work on AWS, or a definition that is not the plan's.
        DeployError: a bad stack name, or AWS refused a step.
    """
    check_stack_name(stack_name)
    jobs = [task.id for task in plan.tasks if task.placement != "function"]
    if jobs:
        raise PackageError(
            f"stages {', '.join(jobs)} of {plan.pipeline!r} run on a container or serverless Spark, which `sparkflow "
            "deploy` does not create: deploy the CloudFormation template `sparkflow package` writes"
        )
    check_placeholders(plan, definition_text)
    storage = storage_location(storage_root)
    reads = read_locations(plan, inputs)
    if not image_uri:
        raise DeployError("an image URI is needed: build the Dockerfile of `sparkflow package`, push it to ECR")
    make = clients or default_clients
    steps = _Steps(make, stack_name)
    stage_log_group = steps.log_group(f"/aws/lambda/{stack_name}-stages")
    machine_log_group = steps.log_group(f"/aws/vendedlogs/states/{stack_name}")

    table_arn: str | None = None
    kv: str | None = None
    if has_values(plan):
        table = declared_table(plan) or f"{stack_name}-values"
        table_arn = steps.table(table, create=declared_table(plan) is None)
        kv = f"dynamodb://{table}"
    environment = function_environment(
        f"s3://{storage.bucket}/{storage.key}/", kv, [location.uri for location in reads]
    )

    fresh_role = False
    if role_arn is None:
        stage_role, fresh_role = steps.role(f"{stack_name}-stages", "lambda.amazonaws.com")
        partition = stage_role.split(":")[1]
        statements = stage_statements(
            lambda text: text.replace("${AWS::Partition}", partition),
            storage,
            reads,
            table_arn,
            stage_log_group[1],
            sink_locations(plan, storage),
        )
        steps.role_policy(f"{stack_name}-stages", "stages", statements)
    else:
        stage_role = role_arn

    arns: dict[str, str] = {}
    for memory in function_groups(plan):
        name = _FUNCTION.format(stack=stack_name, memory=memory)
        arns[function_key(memory)] = steps.function(
            name,
            {
                "Role": stage_role,
                "MemorySize": memory,
                "Timeout": function_timeout(plan, memory),
                "EphemeralStorage": {"Size": EPHEMERAL_STORAGE_MB},
                "Environment": {"Variables": environment},
                "LoggingConfig": {"LogGroup": stage_log_group[0]},
                "Description": function_description(plan, memory),
            },
            image_uri,
            retry_role=fresh_role,
        )
    steps.delete_stale_functions(
        {_FUNCTION.format(stack=stack_name, memory=memory) for memory in function_groups(plan)}
    )

    if role_arn is None:
        machine_role, fresh_machine_role = steps.role(f"{stack_name}-states", "states.amazonaws.com")
        map_runs = None
        if uses_distributed_map(definition_text):
            _, partition, _, region, account, *_ = next(iter(arns.values())).split(":")
            map_runs = MapRuns(
                f"arn:{partition}:states:{region}:{account}:stateMachine:{stack_name}",
                f"arn:{partition}:states:{region}:{account}:execution:{stack_name}/*",
                f"arn:{partition}:s3:::{storage.bucket}/{storage.key}/*",
            )
        statements = state_machine_statements(sorted(arns.values()), map_runs)
        steps.role_policy(f"{stack_name}-states", "state-machine", statements)
    else:
        machine_role, fresh_machine_role = role_arn, False
    definition = fill_placeholders(definition_text, {STORAGE_ROOT: with_slash(storage_root), **arns})
    return steps.state_machine(
        stack_name, definition, machine_role, machine_log_group[1], fresh_role=fresh_machine_role
    )


def fill_placeholders(definition_text: str, values: Mapping[str, str]) -> str:
    """Fill ``${Name}`` placeholders as CloudFormation's DefinitionSubstitutions does (values are JSON-safe)."""

    def fill(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", fill, definition_text)


def find_state_machine(name: str, *, clients: Clients | None = None) -> str:
    """The ARN of the state machine called ``name`` (the stack name given to ``deploy``).

    Raises:
        DeployError: there is none (deploy first) or AWS refused to list state machines.
    """
    found = _Steps(clients or default_clients, name).existing_state_machine(name)
    if found is None:
        raise DeployError(
            f"no state machine named {name!r} in this account and region: deploy it first with "
            f"`sparkflow deploy PIPELINE --target aws --stack {name} ...`, or pass the --stack it was deployed with"
        )
    return found


class _Steps:
    """The individual create-or-update steps, each idempotent, each turning AWS errors into DeployError."""

    def __init__(self, clients: Clients, stack: str) -> None:
        self._clients = clients
        self._made: dict[str, Any] = {}
        self.stack = stack

    def client(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self._clients(service)
        return self._made[service]

    def call(self, what: str, method: Callable[..., Any], **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(**arguments)
        except ClientError as error:
            raise DeployError(f"{what}: {_reason(error)}; check the credentials' permissions and region") from error
        except BotoCoreError as error:
            raise DeployError(f"{what}: {error}") from error

    def log_group(self, name: str) -> tuple[str, str]:
        """(name, ARN) of the log group ``name``, created with a retention when missing."""
        logs = self.client("logs")
        existing = self._find_log_group(name)
        if existing is None:
            self.call(f"creating log group {name}", logs.create_log_group, logGroupName=name)
            existing = self._find_log_group(name)
            if existing is None:
                raise DeployError(f"log group {name} was created but cannot be found: retry the deploy")
        self.call(
            f"setting the retention of {name}",
            logs.put_retention_policy,
            logGroupName=name,
            retentionInDays=LOG_RETENTION_DAYS,
        )
        return name, existing

    def _find_log_group(self, name: str) -> str | None:
        logs = self.client("logs")
        answer = self.call(f"looking up log group {name}", logs.describe_log_groups, logGroupNamePrefix=name)
        for group in answer.get("logGroups", []):
            if group["logGroupName"] == name:
                return str(group["arn"])
        return None

    def table(self, name: str, *, create: bool) -> str:
        """The ARN of DynamoDB table ``name``; created (on demand billing) when ``create`` and missing."""
        from botocore.exceptions import ClientError

        dynamodb = self.client("dynamodb")
        try:
            return str(dynamodb.describe_table(TableName=name)["Table"]["TableArn"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise DeployError(f"looking up DynamoDB table {name}: {_reason(error)}") from error
        if not create:
            raise DeployError(
                f"the pipeline declares kv='dynamodb://{name}' but there is no table {name!r}: create it "
                f"(partition key {KV_TABLE_KEY!r}, a string) or leave kv unset to get one with the stack"
            )
        created = self.call(
            f"creating DynamoDB table {name}",
            dynamodb.create_table,
            TableName=name,
            KeySchema=[{"AttributeName": KV_TABLE_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": KV_TABLE_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "sparkflow:stack", "Value": self.stack}],
        )
        self.call(f"waiting for table {name}", dynamodb.get_waiter("table_exists").wait, TableName=name)
        return str(created["TableDescription"]["TableArn"])

    def role(self, name: str, service: str) -> tuple[str, bool]:
        """(ARN, created now) of role ``name`` trusted by ``service``; its trust policy is reset when it exists."""
        from botocore.exceptions import ClientError

        iam = self.client("iam")
        trust = json.dumps(assume_role_policy(service))
        try:
            existing = iam.get_role(RoleName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise DeployError(f"looking up role {name}: {_reason(error)}") from error
        else:
            self.call(
                f"updating the trust of role {name}", iam.update_assume_role_policy, RoleName=name, PolicyDocument=trust
            )
            return str(existing["Role"]["Arn"]), False
        created = self.call(
            f"creating role {name}",
            iam.create_role,
            RoleName=name,
            AssumeRolePolicyDocument=trust,
            Description=f"sparkflow stack {self.stack}",
            Tags=[{"Key": "sparkflow:stack", "Value": self.stack}],
        )
        return str(created["Role"]["Arn"]), True

    def role_policy(self, role: str, name: str, statements: list[dict[str, Any]]) -> None:
        document = json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)
        iam = self.client("iam")
        self.call(
            f"setting policy {name} of role {role}",
            iam.put_role_policy,
            RoleName=role,
            PolicyName=name,
            PolicyDocument=document,
        )

    def function(self, name: str, configuration: dict[str, Any], image_uri: str, *, retry_role: bool) -> str:
        """Create function ``name`` from ``image_uri`` or bring its code and configuration up to date; its ARN."""
        from botocore.exceptions import ClientError

        lam = self.client("lambda")
        try:
            current = lam.get_function(FunctionName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise DeployError(f"looking up function {name}: {_reason(error)}") from error
            current = None
        if current is None:
            created = self._create_function(name, configuration, image_uri, retry_role=retry_role)
            self._wait(name, "function_active_v2")
            return str(created["FunctionArn"])
        if current.get("Code", {}).get("ImageUri") != image_uri:
            self.call(f"updating the image of {name}", lam.update_function_code, FunctionName=name, ImageUri=image_uri)
            self._wait(name, "function_updated_v2")
        self.call(
            f"updating the configuration of {name}",
            lam.update_function_configuration,
            FunctionName=name,
            **configuration,
        )
        self._wait(name, "function_updated_v2")
        return str(current["Configuration"]["FunctionArn"])

    def _create_function(self, name: str, configuration: dict[str, Any], image_uri: str, *, retry_role: bool) -> Any:
        lam = self.client("lambda")
        return self.call_while_role_propagates(
            f"creating function {name}",
            lam.create_function,
            retry=retry_role,
            FunctionName=name,
            PackageType="Image",
            Code={"ImageUri": image_uri},
            Architectures=["x86_64"],
            Tags={"sparkflow:stack": self.stack},
            **configuration,
        )

    def call_while_role_propagates(
        self, what: str, method: Callable[..., Any], *, retry: bool, **arguments: Any
    ) -> Any:
        """``call``, retried for a while when ``retry`` and AWS says the (just created) role cannot be assumed yet."""
        for attempt in range(_ROLE_PROPAGATION_ATTEMPTS):
            try:
                return self.call(what, method, **arguments)
            except DeployError as error:
                if not (retry and _role_not_ready(str(error)) and attempt + 1 < _ROLE_PROPAGATION_ATTEMPTS):
                    raise
                time.sleep(_ROLE_PROPAGATION_DELAY_S)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, name: str, waiter: str) -> None:
        lam = self.client("lambda")
        self.call(
            f"waiting for function {name}",
            lam.get_waiter(waiter).wait,
            FunctionName=name,
            WaiterConfig={"Delay": 2, "MaxAttempts": 300},
        )

    def delete_stale_functions(self, wanted: set[str]) -> None:
        """Delete this stack's functions for memory sizes no stage uses any more."""
        pattern = re.compile(rf"^{re.escape(self.stack)}-\d+mb$")
        lam = self.client("lambda")
        for page in self._pages(lam, "list_functions", "listing functions"):
            for function in page.get("Functions", []):
                name = function["FunctionName"]
                if pattern.match(name) and name not in wanted:
                    self.call(f"deleting unused function {name}", lam.delete_function, FunctionName=name)

    def existing_state_machine(self, name: str) -> str | None:
        sfn = self.client("stepfunctions")
        for page in self._pages(sfn, "list_state_machines", "listing state machines"):
            for machine in page.get("stateMachines", []):
                if machine["name"] == name:
                    return str(machine["stateMachineArn"])
        return None

    def state_machine(self, name: str, definition: str, role_arn: str, log_group_arn: str, *, fresh_role: bool) -> str:
        sfn = self.client("stepfunctions")
        settings: dict[str, Any] = {
            "definition": definition,
            "roleArn": role_arn,
            "loggingConfiguration": {
                "level": "ERROR",
                "includeExecutionData": False,
                "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": log_group_arn}}],
            },
            "tracingConfiguration": {"enabled": True},
        }
        existing = self.existing_state_machine(name)
        if existing is not None:
            self.call(f"updating state machine {name}", sfn.update_state_machine, stateMachineArn=existing, **settings)
            return existing
        created = self.call_while_role_propagates(
            f"creating state machine {name}",
            sfn.create_state_machine,
            retry=fresh_role,
            name=name,
            type="STANDARD",
            tags=[{"key": "sparkflow:stack", "value": self.stack}],
            **settings,
        )
        return str(created["stateMachineArn"])

    def _pages(self, client: Any, operation: str, what: str) -> Iterator[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield from client.get_paginator(operation).paginate()
        except (ClientError, BotoCoreError) as error:
            reason = _reason(error) if isinstance(error, ClientError) else str(error)
            raise DeployError(f"{what}: {reason}") from error


def _role_not_ready(message: str) -> bool:
    """AWS's words for a role IAM has not propagated yet (Lambda: "The role defined for the function cannot be
    assumed by Lambda"; Step Functions: "... is not authorized to assume the provided role")."""
    return "cannot be assumed" in message or "authorized to assume" in message


def _reason(error: Any) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'error')}: {details.get('Message', error)}"
