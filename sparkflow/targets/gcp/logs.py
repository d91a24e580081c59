"""The runtime's log lines of a deployed run, from Cloud Logging (``sparkflow logs --target gcp``), with the
official ``google-cloud-logging`` client's ``LoggingServiceV2Client`` (``entries.list``).

The runtime writes one JSON object per line on stderr; Cloud Run turns each such line of its service and jobs into a
log entry whose ``jsonPayload`` is the object, of the resource type ``cloud_run_revision`` (the service) or
``cloud_run_job`` (the jobs), and moves the special fields it knows out of the payload into the entry: ``severity``
into the entry's severity, a ``time`` it can read into its timestamp
(https://cloud.google.com/logging/docs/structured-logging). A record is therefore the payload with those two put
back from the entry when they were moved.

The filter narrows the project's entries to the run (``jsonPayload.run_id``, the execution id), the stage asked
for (``jsonPayload.node``) and the time since the execution started (so the query is quick on an indexed field);
the records are then kept exactly, as on every target. Following reads again, from a minute before the newest
entry read, until the execution has ended, then the whole run once more, since Cloud Logging shows an entry some
seconds after it was written (each entry is printed once).
(https://cloud.google.com/logging/docs/reference/v2/rest/v2/entries/list)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sparkflow.targets.gcp.watch import WatchError, _call, _client, run_status
from sparkflow.targets.runlogs import LogQuery

if TYPE_CHECKING:
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
    from google.cloud.workflows.executions_v1 import ExecutionsClient

#: Where Cloud Run's container lines land: the service's revisions and the jobs' executions.
RESOURCE_TYPES = ("cloud_run_revision", "cloud_run_job")
#: Numbers of a record that the runtime writes as floats; Cloud Logging keeps every number as a double, so the
#: others, whole, were ints.
_FLOAT_FIELDS = frozenset({"time", "seconds"})
PAGE_SIZE = 1000  # the most entries.list answers at once
#: How far before the newest entry read a reading starts while following (a line arrives a few seconds late).
LOOKBACK = timedelta(seconds=60)


def log_filter(run_id: str, nodes: tuple[str, ...] | None, since: str) -> str:
    """The Logging query of the run's entries at or after ``since`` (RFC 3339), of ``nodes`` (None: every task)."""
    types = " OR ".join(f"resource.type={json.dumps(kind)}" for kind in RESOURCE_TYPES)
    terms = [f"({types})", f"jsonPayload.run_id={json.dumps(run_id)}"]
    if nodes is not None:
        terms.append("(" + " OR ".join(f"jsonPayload.node={json.dumps(node)}" for node in nodes) + ")")
    terms.append(f"timestamp>={json.dumps(since)}")
    return " AND ".join(terms)


def records(
    project: str,
    execution_name: str,
    query: LogQuery,
    *,
    client: LoggingServiceV2Client | None = None,
    executions: ExecutionsClient | None = None,
) -> Iterator[dict[str, Any]]:
    """The run's records in ``project``, oldest first; following, new ones until its execution ``execution_name``
    has ended (or ``query.timeout_s``).

    Raises:
        WatchError: the run does not exist, or has no log lines yet (without ``--follow``, or once it ended).
    """
    from google.api_core import exceptions

    read = _client(executions)
    what = f"reading run {query.run_id} ({execution_name})"
    try:
        execution = read.get_execution(name=execution_name)
    except exceptions.NotFound:
        workflow = execution_name.rsplit("/executions/", 1)[0]
        raise WatchError(
            f"run {query.run_id}: the workflow {workflow} has no run {query.run_id!r}; give the run id `sparkflow "
            "start --target gcp` printed (the execution's id, the last part of its name), and the --project and "
            "--region it was started in"
        ) from None
    except exceptions.GoogleAPICallError as error:
        raise WatchError(f"{what}: {error.message or error}") from error
    logging = client if client is not None else _logging_client()
    start = execution.start_time if execution.start_time else datetime(1970, 1, 1, tzinfo=UTC)
    newest = start
    deadline = None if query.timeout_s is None else time.monotonic() + query.timeout_s
    seen: set[str] = set()  # entries read again (readings overlap)
    while True:
        ended = not query.follow or run_status(_call(what, read.get_execution, name=execution_name)).finished
        if ended and query.follow:
            time.sleep(query.poll_s)  # Cloud Logging shows an entry some seconds after it was written
        # While following, a reading starts a while before the newest entry read, since lines of parallel tasks
        # arrive out of time order; the last reading reads the whole run again, for any that came later still.
        since = start if ended else max(start, newest - LOOKBACK)
        for entry in _entries(logging, project, log_filter(query.run_id, query.nodes, _rfc3339(since)), query.run_id):
            key = entry.insert_id or f"{entry.log_name}/{entry.timestamp}"
            if key in seen:
                continue
            seen.add(key)
            newest = max(newest, entry.timestamp)
            record = record_of(entry)
            if record is not None and query.keeps(record):
                yield record
        if ended:
            if not seen:
                raise WatchError(_nothing_yet(query, project))
            return
        if deadline is not None and time.monotonic() > deadline:
            raise WatchError(f"run {query.run_id} is still running after {query.timeout_s:g} s of --follow")
        time.sleep(query.poll_s)


def _nothing_yet(query: LogQuery, project: str) -> str:
    which = "" if query.nodes is None else f" of stage {', '.join(query.nodes)}"
    return (
        f"run {query.run_id} has no log lines{which} in Cloud Logging of project {project} yet: a line shows up some "
        "seconds after it is written, so try again (or pass --follow); the stages log only once a stage request "
        "reached the Cloud Run service"
    )


def record_of(entry: Any) -> dict[str, Any] | None:
    """The runtime's record an entry holds (None for another entry: a request log, a platform's line)."""
    from google.cloud.logging_v2.types import LogEntry
    from google.logging.type import log_severity_pb2
    from google.protobuf import json_format

    message = LogEntry.pb(entry)
    if message.WhichOneof("payload") != "json_payload":
        return None
    record = {key: _number(key, value) for key, value in json_format.MessageToDict(message.json_payload).items()}
    if "severity" not in record and message.severity:
        record["severity"] = log_severity_pb2.LogSeverity.Name(message.severity)
    if "time" not in record and message.HasField("timestamp"):
        record["time"] = round(message.timestamp.ToNanoseconds() / 1e9, 3)
    return record if "message" in record else None


def _number(key: str, value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and key not in _FLOAT_FIELDS:
        return int(value)
    return value


def _entries(logging: Any, project: str, query_filter: str, run_id: str) -> Iterator[Any]:
    from google.api_core import exceptions

    request = {
        "resource_names": [f"projects/{project}"],
        "filter": query_filter,
        "order_by": "timestamp asc",
        "page_size": PAGE_SIZE,
    }
    try:
        yield from logging.list_log_entries(request=request)
    except exceptions.GoogleAPICallError as error:
        reason = error.message or error
        raise WatchError(f"reading the log lines of run {run_id} in project {project}: {reason}") from error


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _logging_client() -> Any:
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client

    return LoggingServiceV2Client()
