"""Create, update or delete a CloudFormation stack the way a careful person does by hand: through a change set.

:func:`apply` creates a change set (``CREATE`` when the stack does not exist, ``UPDATE`` otherwise), reports
every change (action, logical id, type, replacement) before executing it, treats "no changes" as a clean no-op,
reports the stack events as they happen, waits for a terminal status and returns the stack's outputs. When
CloudFormation fails a resource it rolls the stack back, and :class:`DeployError` names each failed resource
with its ``ResourceStatusReason``. :func:`delete` deletes a stack and waits the same way.

Nothing here knows about pipelines: :mod:`sparkflow.targets.aws.deploy` builds the template and its parameters.

>>> outputs = apply(clients("cloudformation"), "wordcount", template_body, {"ImageUri": "..."},
...                 report=print)  # doctest: +SKIP
  Add  StageFunction1024MB  AWS::Lambda::Function
...
>>> outputs["StateMachineArn"]  # doctest: +SKIP
'arn:aws:states:us-east-1:123456789012:stateMachine:wordcount'
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import yaml

from sparkflow.errors import SparkflowError

Report = Callable[[str], None]
#: Longest template CloudFormation takes inline (TemplateBody); longer ones must come from S3 (TemplateURL).
#: (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html)
TEMPLATE_BODY_LIMIT = 51_200
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_SUCCEEDED = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"}
_NOT_UPDATABLE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED"}


class DeployError(SparkflowError, RuntimeError):
    """CloudFormation refused or failed a stack operation; the message names each failed resource and why."""


def apply(
    cfn: Any,
    stack_name: str,
    template_body: str | None,
    parameters: Mapping[str, str],
    *,
    template_url: str | None = None,
    role_arn: str | None = None,
    report: Report = lambda line: None,
    poll_s: float = 5.0,
) -> dict[str, str]:
    """Create or update ``stack_name`` from a template through a change set; return the stack's outputs.

    Args:
        cfn: a boto3 CloudFormation client.
        template_body: the template text (at most :data:`TEMPLATE_BODY_LIMIT` bytes), or None with ``template_url``.
        parameters: every template parameter to set (the others take their defaults).
        template_url: the template in S3, for one too long to send inline.
        role_arn: a service role CloudFormation acts as (default: the caller's credentials).
        report: called with each line to show: the changes, then the stack events as they happen.
        poll_s: the pause between readings of the change set and the stack.

    Raises:
        DeployError: CloudFormation refused the change set, or failed (and rolled back) the stack.
    """
    existing = _stack(cfn, stack_name)
    if existing is not None and existing["StackStatus"] in _NOT_UPDATABLE:
        raise DeployError(
            f"stack {stack_name} is in {existing['StackStatus']} and cannot be updated: delete it with "
            f"`sparkflow delete PIPELINE --target aws --stack {stack_name}` (the data stays) and deploy again"
        )
    # A stack left in REVIEW_IN_PROGRESS only holds change sets that were never executed: it is created anew.
    kind = "UPDATE" if existing is not None and existing["StackStatus"] != "REVIEW_IN_PROGRESS" else "CREATE"
    template = _template_kinds(template_body, template_url)
    request: dict[str, Any] = {
        "StackName": stack_name,
        "ChangeSetName": f"sparkflow-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}",
        "ChangeSetType": kind,
        "Parameters": [{"ParameterKey": key, "ParameterValue": value} for key, value in sorted(parameters.items())],
        "Capabilities": capabilities(template_body),
        "Description": "sparkflow deploy",
        **template,
    }
    if role_arn:
        request["RoleARN"] = role_arn
    try:
        created = _call(f"creating a change set of stack {stack_name}", cfn.create_change_set, **request)
    except DeployError as error:
        if any(words in str(error) for words in _NO_CHANGES):
            report(f"stack {stack_name}: no changes")
            return outputs(cfn, stack_name)
        raise
    change_set = _described_change_set(cfn, created["Id"], poll_s)
    if change_set["Status"] == "FAILED":
        reason = change_set.get("StatusReason", "")
        if any(words in reason for words in _NO_CHANGES):
            _call("deleting the empty change set", cfn.delete_change_set, ChangeSetName=created["Id"])
            report(f"stack {stack_name}: no changes")
            return outputs(cfn, stack_name)
        raise DeployError(f"CloudFormation refused the change set of stack {stack_name}: {reason}")
    report(f"stack {stack_name}: {kind.lower()} through change set {request['ChangeSetName']}:")
    for line in change_lines(change_set.get("Changes", [])):
        report(line)
    events = _Events(cfn, created["StackId"])
    events.skip_existing()
    _call(f"executing the change set of stack {stack_name}", cfn.execute_change_set, ChangeSetName=created["Id"])
    final = _wait(cfn, created["StackId"], events, report, poll_s)
    if final["StackStatus"] not in _SUCCEEDED:
        raise DeployError(_failure(stack_name, final, events.failures))
    return _outputs_of(final)


def delete(cfn: Any, stack_name: str, *, report: Report = lambda line: None, poll_s: float = 5.0) -> None:
    """Delete ``stack_name`` and wait until it is gone. Resources marked ``DeletionPolicy: Retain`` stay.

    Raises:
        DeployError: there is no such stack, or CloudFormation could not delete it (naming what it kept).
    """
    existing = _stack(cfn, stack_name)
    if existing is None:
        raise DeployError(
            f"no stack named {stack_name!r} in this account and region: nothing was deleted; pass the --stack it "
            "was deployed with (and its --region)"
        )
    events = _Events(cfn, existing["StackId"])
    events.skip_existing()
    report(f"stack {stack_name}: deleting")
    _call(f"deleting stack {stack_name}", cfn.delete_stack, StackName=existing["StackId"])
    final = _wait(cfn, existing["StackId"], events, report, poll_s)
    if final["StackStatus"] != "DELETE_COMPLETE":
        raise DeployError(_failure(stack_name, final, events.failures))


def outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    """The stack's outputs (``OutputKey -> OutputValue``).

    Raises:
        DeployError: there is no such stack.
    """
    found = _stack(cfn, stack_name)
    if found is None:
        raise DeployError(f"no stack named {stack_name!r} in this account and region")
    return _outputs_of(found)


def capabilities(template_body: str | None) -> list[str]:
    """What the template must acknowledge: CAPABILITY_IAM for IAM resources, CAPABILITY_NAMED_IAM when one of them
    has a custom name (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html).
    A template in S3 is not read here: both are acknowledged."""
    if template_body is None:
        return ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    resources = (yaml.safe_load(template_body) or {}).get("Resources", {})
    iam = [resource for resource in resources.values() if str(resource.get("Type", "")).startswith("AWS::IAM::")]
    named = any(set(resource.get("Properties", {})) & {"RoleName", "UserName", "GroupName"} for resource in iam)
    return ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"] if named else ["CAPABILITY_IAM"] if iam else []


def change_lines(changes: list[dict[str, Any]]) -> list[str]:
    """One aligned line per resource change: action, logical id, type and, for a modification, replacement."""
    rows = []
    for change in changes:
        resource = change.get("ResourceChange", {})
        replacement = resource.get("Replacement")
        rows.append(
            (
                resource.get("Action", "?"),
                resource.get("LogicalResourceId", "?"),
                resource.get("ResourceType", "?"),
                f"replacement: {replacement}" if replacement else "",
            )
        )
    widths = [max((len(row[column]) for row in rows), default=0) for column in range(3)]
    return [
        "  "
        + "  ".join(value.ljust(width) for value, width in zip(row[:3], widths, strict=True)).rstrip()
        + (f"  {row[3]}" if row[3] else "")
        for row in rows
    ]


class _Events:
    """Reads a stack's events incrementally: describe_stack_events answers newest first, so each reading pages back
    only until the newest event already seen, and hands the new ones over oldest first."""

    def __init__(self, cfn: Any, stack_id: str) -> None:
        self._cfn = cfn
        self._stack_id = stack_id
        self._seen: str | None = None
        self.failures: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        """The events since the last reading, oldest first (failed ones are also kept in :attr:`failures`)."""
        new = list(itertools.takewhile(lambda event: event["EventId"] != self._seen, self._newest_first()))
        if new:
            self._seen = new[0]["EventId"]
        new.reverse()
        self.failures += [event for event in new if str(event.get("ResourceStatus", "")).endswith("_FAILED")]
        return new

    def skip_existing(self) -> None:
        """Start after the events there are now (those of earlier deployments)."""
        newest = next(self._newest_first(), None)
        self._seen = newest["EventId"] if newest else None

    def _newest_first(self) -> Iterator[dict[str, Any]]:
        """The stack's events, newest first, one page at a time (a page is read only when it is reached)."""
        token: str | None = None
        while True:
            arguments: dict[str, Any] = {"StackName": self._stack_id}
            if token:
                arguments["NextToken"] = token
            answer = _call("reading the stack's events", self._cfn.describe_stack_events, **arguments)
            yield from answer.get("StackEvents", [])
            token = answer.get("NextToken")
            if not token:
                return


def event_line(event: Mapping[str, Any]) -> str:
    """``  12:00:01 UPDATE_FAILED StageFunction1024MB (AWS::Lambda::Function): reason``."""
    stamp = event.get("Timestamp")
    when = stamp.strftime("%H:%M:%S") if isinstance(stamp, datetime) else ""
    reason = event.get("ResourceStatusReason")
    return (
        f"  {when} {event.get('ResourceStatus', '')} {event.get('LogicalResourceId', '')} "
        f"({event.get('ResourceType', '')})" + (f": {reason}" if reason else "")
    ).replace("   ", "  ")


def _wait(cfn: Any, stack_id: str, events: _Events, report: Report, poll_s: float) -> dict[str, Any]:
    """Report new events until the stack reaches a status that is not ``..._IN_PROGRESS``; return its description."""
    while True:
        described = _call("reading the stack", cfn.describe_stacks, StackName=stack_id)["Stacks"][0]
        for event in events.read():
            report(event_line(event))
        if not str(described["StackStatus"]).endswith("_IN_PROGRESS"):
            return dict(described)
        time.sleep(poll_s)


def _failure(stack_name: str, described: Mapping[str, Any], failures: list[dict[str, Any]]) -> str:
    status = described["StackStatus"]
    resources = [
        f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}): {event.get('ResourceStatusReason', '?')}"
        for event in failures
        if event.get("ResourceType") != "AWS::CloudFormation::Stack"
    ] or [str(described.get("StackStatusReason") or "CloudFormation gave no reason")]
    rolled_back = "ROLLBACK" in status
    after = "; CloudFormation rolled the stack back to its previous state" if rolled_back else ""
    return (
        f"stack {stack_name} ended in {status}{after}. Failed: " + "; ".join(resources) + ". Fix the cause and deploy "
        "again (the stack's events in the CloudFormation console have the details)"
    )


def _described_change_set(cfn: Any, change_set_id: str, poll_s: float) -> dict[str, Any]:
    """The change set once CloudFormation has computed it (status CREATE_COMPLETE or FAILED), all pages of changes."""
    while True:
        described = dict(_call("reading the change set", cfn.describe_change_set, ChangeSetName=change_set_id))
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            changes = list(described.get("Changes", []))
            token = described.get("NextToken")
            while token:
                page = _call(
                    "reading the change set", cfn.describe_change_set, ChangeSetName=change_set_id, NextToken=token
                )
                changes += page.get("Changes", [])
                token = page.get("NextToken")
            described["Changes"] = changes
            return described
        time.sleep(poll_s)


def _stack(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    """The stack's description, None when there is none (or only a deleted one)."""
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in str(error.response.get("Error", {}).get("Message", "")):
            return None
        raise DeployError(f"reading stack {stack_name}: {_reason(error)}") from error
    live = [stack for stack in stacks if stack["StackStatus"] != "DELETE_COMPLETE"]
    return dict(live[0]) if live else None


def _outputs_of(described: Mapping[str, Any]) -> dict[str, str]:
    return {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs") or []}


def _template_kinds(template_body: str | None, template_url: str | None) -> dict[str, str]:
    if template_url:
        return {"TemplateURL": template_url}
    if template_body is None:
        raise ValueError("a template body or URL is needed")
    return {"TemplateBody": template_body}


def _call(what: str, method: Callable[..., Any], **arguments: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return method(**arguments)
    except ClientError as error:
        raise DeployError(f"{what}: {_reason(error)}") from error
    except BotoCoreError as error:
        raise DeployError(f"{what}: {error}") from error


def _reason(error: Any) -> str:
    details = error.response.get("Error", {})
    return f"{details.get('Code', 'error')}: {details.get('Message', error)}"
