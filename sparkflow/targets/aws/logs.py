"""The runtime's log lines of a deployed run, from CloudWatch Logs (``sparkflow logs --target aws``).

Every stage of a stack (its functions, and its containers through the ``awslogs`` driver) logs to one group,
``/aws/lambda/<stack>-stages`` (:func:`sparkflow.targets.aws.stack.stage_log_group`). FilterLogEvents narrows
it to the events holding the run id (a quoted term: the runtime's JSON lines carry ``"run_id": "<run>"``; the
platform's own lines, such as Lambda's ``START`` / ``REPORT`` and the metric lines, do not), and the records are
then kept exactly: the run's, of the stage asked for. Following reads again from the newest event's time until the
run's latest execution has ended, then once more, since CloudWatch may take a few seconds to show a line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from sparkflow.targets.aws.watch import Clients, WatchError, _reason
from sparkflow.targets.runlogs import LogQuery, parse


def records(
    log_group: str, query: LogQuery, *, clients: Clients, run_ended: Callable[[], bool]
) -> Iterator[dict[str, Any]]:
    """The run's records in ``log_group``, oldest first; following, new ones until ``run_ended()`` (or
    ``query.timeout_s``)."""
    cloudwatch = clients("logs")
    deadline = None if query.timeout_s is None else time.monotonic() + query.timeout_s
    seen: set[str] = set()  # events read again (a reading starts at the newest event's millisecond)
    since = 0
    while True:
        ended = not query.follow or run_ended()  # asked before reading: a line written before the end is read
        if ended and query.follow:
            time.sleep(query.poll_s)  # CloudWatch shows a line some seconds after it was written
        fresh = [event for event in _events(cloudwatch, log_group, query.run_id, since) if event["eventId"] not in seen]
        for event in sorted(fresh, key=lambda item: (item["timestamp"], item["eventId"])):
            seen.add(event["eventId"])
            since = max(since, int(event["timestamp"]))
            record = parse(str(event.get("message", "")))
            if record is not None and query.keeps(record):
                yield record
        if ended:
            return
        if deadline is not None and time.monotonic() > deadline:
            raise WatchError(f"run {query.run_id} is still running after {query.timeout_s:g} s of --follow")
        time.sleep(query.poll_s)


def _events(cloudwatch: Any, log_group: str, run_id: str, since: int) -> Iterator[dict[str, Any]]:
    from botocore.exceptions import BotoCoreError, ClientError

    arguments: dict[str, Any] = {"logGroupName": log_group, "filterPattern": f'"{run_id}"'}
    if since:
        arguments["startTime"] = since
    try:
        for page in cloudwatch.get_paginator("filter_log_events").paginate(**arguments):
            yield from page.get("events", [])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise WatchError(
                f"the stages' log group {log_group} does not exist: deploy the stack (it makes the group), or pass "
                "the --stack it was deployed with"
            ) from error
        raise WatchError(f"reading the logs of run {run_id} in {log_group}: {_reason(error)}") from error
    except BotoCoreError as error:
        raise WatchError(f"reading the logs of run {run_id} in {log_group}: {_reason(error)}") from error
