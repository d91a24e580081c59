"""`sparkflow logs --target gcp`: the official Logging client's real gRPC requests (``ListLogEntries``) against a
local stand-in of the Cloud Logging API, serving as entries the lines the runtime wrote in a real local run, shaped
as Cloud Run writes them (``severity`` and ``time`` moved into the entry, numbers as doubles), beside another run's
lines, a request log and a platform's text line. The printed lines and ``--json`` records are those of the local
run; the filter the client sends is checked, and the stand-in answers it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.runtime.logs import RUN_END, RUN_START
from sparkflow.targets.gcp.logs import log_filter, records
from sparkflow.targets.gcp.watch import WatchError
from sparkflow.targets.runlogs import LogQuery
from tests.gcp.conftest import RUN_ID, StageDouble, compiled

RESUMABLE = Path(__file__).resolve().parents[1] / "resources" / "resumable" / "pipeline.py"
WORKFLOW = "projects/proj-1/locations/europe-west1/workflows/resumable"
EXECUTION = f"{WORKFLOW}/executions/{RUN_ID}"
PLACE = ["--target", "gcp", "--project", "proj-1", "--region", "europe-west1"]
OTHER_RUN = "9e8d7c6b-5a49-4382-9170-6f5e4d3c2b1a"
STARTED = 1_000_000_000.0  # the execution's start: before every line (the local run wrote them just now)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """A real failing run of the resumable pipeline (``report`` refuses a negative fee) with the execution's id
    as its run id: its storage root and the records the runtime wrote to its ``_logs.jsonl`` (without the 'run
    start' and 'run end' lines `sparkflow run` adds, which no cloud run has)."""
    folder = tmp_path_factory.mktemp("run")
    prices = folder / "prices.csv"
    prices.write_text("status,fee\npaid,-0.5\n", encoding="utf-8")
    storage = str(folder / "storage")
    run = ["run", str(RESUMABLE), "--storage", storage, "--run-id", RUN_ID, "--input", f"prices={prices}"]
    assert CliRunner().invoke(main, [*run, "--engine", "duckdb", "--json"]).exit_code == 1
    lines = (folder / "storage" / "resumable" / RUN_ID / "_logs.jsonl").read_text(encoding="utf-8").splitlines()
    written = [json.loads(line) for line in lines]
    return storage, [record for record in written if record["message"] not in (RUN_START, RUN_END)]


def entry_of(record: dict[str, Any], insert_id: str) -> Any:
    """The entry Cloud Run makes of one JSON line: ``severity`` and ``time`` leave the payload for the entry's own
    fields; a map task's line comes from the chunks' job, the others from the service."""
    from google.cloud.logging_v2.types import LogEntry
    from google.protobuf import struct_pb2, timestamp_pb2

    payload = {key: value for key, value in record.items() if key not in ("severity", "time")}
    struct = struct_pb2.Struct()
    struct.update(payload)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(float(record["time"]) * 1000) * 1_000_000)
    kind = "cloud_run_job" if record.get("phase") == "map" else "cloud_run_revision"
    return LogEntry(
        log_name="projects/proj-1/logs/run.googleapis.com%2Fstderr",
        resource={"type": kind, "labels": {"location": "europe-west1"}},
        json_payload=struct,
        severity=record["severity"],
        timestamp=stamp,
        insert_id=insert_id,
    )


def platform_entries(at: float) -> list[Any]:
    """What else the project logs at the same time: a request log of the service and a text line."""
    from google.cloud.logging_v2.types import LogEntry

    request = LogEntry(
        log_name="projects/proj-1/logs/run.googleapis.com%2Frequests",
        resource={"type": "cloud_run_revision"},
        http_request={"request_method": "POST", "status": 200},
        timestamp=datetime.fromtimestamp(at, UTC),
        insert_id="req-1",
    )
    text = LogEntry(
        log_name="projects/proj-1/logs/run.googleapis.com%2Fstderr",
        resource={"type": "cloud_run_revision"},
        text_payload="Default STARTUP TCP probe succeeded after 1 attempt",
        timestamp=datetime.fromtimestamp(at, UTC),
        insert_id="txt-1",
    )
    return [request, text]


_TERM = re.compile(r'^([A-Za-z_.]+)(>=|=)(".*")$')


def matches(query: str, entry: Any) -> bool:
    """The subset of the Logging query language the client sends: terms joined by AND, each a comparison
    (``=``, ``>=``) or a parenthesised OR of comparisons, on resource.type, jsonPayload.FIELD and timestamp."""
    from google.cloud.logging_v2.types import LogEntry
    from google.protobuf import json_format

    message = LogEntry.pb(entry)
    payload = json_format.MessageToDict(message.json_payload) if message.HasField("json_payload") else {}

    def compare(term: str) -> bool:
        found = _TERM.match(term)
        assert found, f"the stand-in does not understand {term!r}"
        name, operator, value = found.group(1), found.group(2), json.loads(found.group(3))
        if name == "timestamp":
            wanted = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return bool(message.timestamp.ToDatetime(UTC) >= wanted)
        assert operator == "=", term
        if name == "resource.type":
            return bool(message.resource.type == value)
        assert name.startswith("jsonPayload."), term
        return bool(payload.get(name.split(".", 1)[1]) == value)

    for term in query.split(" AND "):
        if term.startswith("(") and term.endswith(")"):
            if not any(compare(part) for part in term[1:-1].split(" OR ")):
                return False
        elif not compare(term):
            return False
    return True


@dataclass
class FakeLoggingApi:
    """``ListLogEntries`` of the Cloud Logging API (v2): the entries of ``projects/<id>`` matching the request's
    filter, oldest first, ``page`` at a time (fewer than the client asks for, so it pages with the token)."""

    entries: list[Any] = field(default_factory=list)
    requests: list[Any] = field(default_factory=list)
    page: int = 5
    lock: threading.Lock = field(default_factory=threading.Lock)

    def list_entries(self, request: Any, context: Any) -> Any:
        import grpc
        from google.cloud.logging_v2.types import ListLogEntriesResponse

        with self.lock:
            self.requests.append(request)
            if list(request.resource_names) != ["projects/proj-1"]:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, f"no access to {list(request.resource_names)}")
            if request.order_by != "timestamp asc" or not 0 < request.page_size <= 1000:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{request.order_by!r}, {request.page_size}")
            found = [entry for entry in self.entries if matches(request.filter, entry)]
        found.sort(key=lambda entry: (entry.timestamp, entry.insert_id))
        start = int(request.page_token or 0)
        size = min(self.page, request.page_size)
        token = str(start + size) if start + size < len(found) else ""
        return ListLogEntriesResponse(entries=found[start : start + size], next_page_token=token)


@pytest.fixture
def logging_api() -> Iterator[tuple[FakeLoggingApi, Any]]:
    """The stand-in on a local gRPC port and a ``LoggingServiceV2Client`` (anonymous, insecure channel) using it."""
    from concurrent import futures

    import grpc
    from google.cloud.logging_v2.services.logging_service_v2 import LoggingServiceV2Client
    from google.cloud.logging_v2.services.logging_service_v2.transports import LoggingServiceV2GrpcTransport
    from google.cloud.logging_v2.types import ListLogEntriesRequest, ListLogEntriesResponse

    api = FakeLoggingApi()
    handler = grpc.unary_unary_rpc_method_handler(
        api.list_entries,
        request_deserializer=ListLogEntriesRequest.deserialize,
        response_serializer=ListLogEntriesResponse.serialize,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    service = grpc.method_handlers_generic_handler("google.logging.v2.LoggingServiceV2", {"ListLogEntries": handler})
    server.add_generic_rpc_handlers((service,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield api, LoggingServiceV2Client(transport=LoggingServiceV2GrpcTransport(channel=channel))
    server.stop(grace=None)


@pytest.fixture
def deployed(
    executions_api: Any, logging_api: tuple[FakeLoggingApi, Any], monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], tuple[FakeLoggingApi, Any, Any]]:
    """``deploy(state)``: the execution of :data:`RUN_ID` in ``state`` on the Executions stand-in, the Logging
    stand-in, and the command line's clients pointed at both; returns the Logging API, its client and the
    execution (to change its state)."""
    from google.cloud.workflows import executions_v1

    from sparkflow.targets.gcp import logs

    plan, _ = compiled(RESUMABLE)
    api, executions = executions_api({}, StageDouble(plan))
    monkeypatch.setattr(executions_v1, "ExecutionsClient", lambda: executions)
    logging, client = logging_api
    monkeypatch.setattr(logs, "_logging_client", lambda: client)

    def deploy(state: str) -> tuple[FakeLoggingApi, Any, Any]:
        execution = executions_v1.Execution(
            name=EXECUTION,
            state=executions_v1.Execution.State[state],
            start_time=datetime.fromtimestamp(STARTED, UTC),
        )
        api.executions[EXECUTION] = execution
        return logging, client, executions

    return deploy


def serve_run(api: FakeLoggingApi, written: list[dict[str, Any]]) -> None:
    """The run's lines, the same lines of another run (so only the filter tells them apart), and the platform's."""
    with api.lock:
        for number, record in enumerate(written):
            api.entries.append(entry_of(record, f"run-{number:04d}"))
            api.entries.append(entry_of({**record, "run_id": OTHER_RUN}, f"other-{number:04d}"))
        api.entries += platform_entries(float(written[0]["time"]))


def test_logs_of_a_cloud_run_read_as_the_local_run_printed_them(
    local_run: tuple[str, list[dict[str, Any]]], deployed: Any
) -> None:
    storage, written = local_run
    api, _, _ = deployed("FAILED")
    serve_run(api, written)
    runner = CliRunner()
    for extra in ([], ["--json"], ["--stage", "report"], ["--stage", "paid", "--json"]):
        local = runner.invoke(main, ["logs", str(RESUMABLE), RUN_ID, "--storage", storage, *extra])
        cloud = runner.invoke(main, ["logs", str(RESUMABLE), RUN_ID, *PLACE, *extra])
        assert cloud.exit_code == 0, cloud.output
        expected = [line for line in local.stdout.splitlines() if RUN_START not in line and RUN_END not in line]
        # Cloud Logging answers in time order; a local run's file is in the order its workers' lines arrived.
        expected.sort(key=lambda line: json.loads(line)["time"] if extra[-1:] == ["--json"] else line[:24])
        assert cloud.stdout.splitlines() == expected and expected, extra
    report = runner.invoke(main, ["logs", str(RESUMABLE), RUN_ID, *PLACE, "--stage", "report"]).stdout
    assert "ERROR   stage failed  error=StageError  ValueError: prices holds 1 negative fee(s)" in report
    # The filter the client sent: the run, the stage's task (paid runs inside spend's), since the execution began.
    sent = [request.filter for request in api.requests]
    since = '"2001-09-09T01:46:40.000000Z"'
    everything = (
        '(resource.type="cloud_run_revision" OR resource.type="cloud_run_job") AND '
        f'jsonPayload.run_id="{RUN_ID}" AND timestamp>={since}'
    )
    assert sent[0] == everything == log_filter(RUN_ID, None, "2001-09-09T01:46:40.000000Z")
    stage = everything.replace(" AND timestamp", ' AND (jsonPayload.node="spend") AND timestamp')
    assert stage in sent
    assert len(sent) > 4 and {request.page_token for request in api.requests} > {""}  # paged


def test_follow_reads_until_the_execution_ends_each_line_once(
    local_run: tuple[str, list[dict[str, Any]]], deployed: Any
) -> None:
    _, written = local_run
    api, client, executions = deployed("ACTIVE")
    half = len(written) // 2
    with api.lock:
        api.entries += [entry_of(record, f"run-{number:04d}") for number, record in enumerate(written[:half])]

    def finish() -> None:
        time.sleep(0.3)
        with api.lock:
            api.entries += [entry_of(record, f"run-{half + n:04d}") for n, record in enumerate(written[half:])]
        time.sleep(0.2)
        deployed("SUCCEEDED")

    writer = threading.Thread(target=finish)
    writer.start()
    query = LogQuery(RUN_ID, follow=True, poll_s=0.05, timeout_s=30)
    followed = list(records("proj-1", EXECUTION, query, client=client, executions=executions))
    writer.join()
    # Each line once; those there from the start in time order, then those that came later.
    by_time = sorted(written[:half], key=lambda record: float(record["time"]))
    assert followed[:half] == by_time
    assert sorted(json.dumps(item, sort_keys=True) for item in followed) == sorted(
        json.dumps(item, sort_keys=True) for item in written
    )
    # Readings while it runs start a minute before the newest line read; the last one reads the whole run.
    filters = [request.filter for request in api.requests if not request.page_token]
    newest = datetime.fromtimestamp(float(by_time[-1]["time"]) - 60, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    assert any(f'timestamp>="{newest}' in item for item in filters[1:-1])
    assert '"2001-09-09T01:46:40.000000Z"' in filters[0] and '"2001-09-09T01:46:40.000000Z"' in filters[-1]


def test_no_such_run_no_lines_yet_and_no_project_are_said(deployed: Any) -> None:
    deployed("ACTIVE")
    runner = CliRunner()
    missing = runner.invoke(main, ["logs", str(RESUMABLE), OTHER_RUN, *PLACE])
    assert missing.exit_code == 2
    assert (
        f"run {OTHER_RUN}: the workflow {WORKFLOW} has no run '{OTHER_RUN}'; give the run id `sparkflow start "
        "--target gcp` printed" in missing.stderr
    )
    empty = runner.invoke(main, ["logs", str(RESUMABLE), RUN_ID, *PLACE, "--stage", "report"])
    assert empty.exit_code == 2
    assert (
        f"run {RUN_ID} has no log lines of stage report in Cloud Logging of project proj-1 yet: a line shows up some "
        "seconds after it is written, so try again (or pass --follow)" in empty.stderr
    )
    nowhere = runner.invoke(main, ["logs", str(RESUMABLE), RUN_ID, "--target", "gcp"])
    assert nowhere.exit_code == 2 and "--target gcp needs --project and --region" in nowhere.stderr
    with pytest.raises(WatchError, match=r"still running after 0.2 s of --follow"):
        list(records("proj-1", EXECUTION, LogQuery(RUN_ID, follow=True, poll_s=0.05, timeout_s=0.2)))
