"""Fixtures of the GCP target's tests.

* ``workflows``: runs a generated definition in ``workflows-emulator`` (a third-party Workflows interpreter),
  its ``http.*`` calls answered in-process by a :class:`StageDouble` standing in for the Cloud Run runtime.
* ``workflows_api``: a local HTTP server on 127.0.0.1 standing in for the Workflows REST API, and a real
  ``WorkflowsClient`` pointed at it with anonymous credentials.
* ``scheduler_api``: the same for the Cloud Scheduler REST API and a real ``CloudSchedulerClient``.
* ``eventarc_api``: the same for the Eventarc REST API and a real ``EventarcClient``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.layout import node_location, value_key
from sparkflow.loading import load_pipeline
from sparkflow.plan import Plan
from sparkflow.runtime.protocol import EVENT_VERSION, validate_event, validate_result
from sparkflow.targets.gcp import limits as gcp_limits
from sparkflow.targets.gcp.emit import EXECUTION_ID_ENV, SERVICE_URL_ENV, STORAGE_ROOT_ENV

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("examples/*/pipeline.py"))
RESOURCES = Path(__file__).parent / "resources"
SCHEMA = Path(__file__).parent / "schemas" / "gcp-workflows.schema.json"

RUN_ID = "3f0c1d2e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"  # execution ids are UUIDs
STORAGE = "gs://bucket/sparkflow/"
SERVICE_URL = "https://sparkflow-runtime-abc123-ew.a.run.app"


def example_id(path: Path) -> str:
    return path.parent.name


def compiled(spec: str | Path, name: str | None = None) -> tuple[Plan, str]:
    """The Plan and the gcp definition of the pipeline ``spec`` names."""
    pipeline = load_pipeline(str(spec), name)
    return plan_pipeline(pipeline, "gcp"), compile_pipeline(pipeline, "gcp")


def http_error(code: int) -> Exception:
    """The error Workflows raises when a call answers ``code``: tags HttpError, with code, headers and body.

    (https://cloud.google.com/workflows/docs/reference/syntax/error-types)
    """
    from workflows_emulator.utils import WorkflowError

    return WorkflowError(
        message=f"HTTP server responded with error code {code}",
        tags=["HttpError"],
        code=code,
        headers={"Content-Type": "application/json"},
        body={"error": "StageError", "message": "boom"},
    )


def connection_error() -> Exception:
    from workflows_emulator.utils import WorkflowError

    return WorkflowError(message="connection reset by peer", tags=["ConnectionError"])


@dataclass
class StageDouble:
    """Answers the workflow's ``http.post`` calls like the deployed runtime: one valid result per event.

    Records every call and every protocol problem (an invalid event, a stage called before one of its inputs
    was written, a wrong URL, auth or timeout) instead of raising them, so a test reports them plainly rather
    than as a workflow failure.

    A split stage is called once per phase (split, map per chunk, partition, reduce per reducer, commit): ``calls``
    records each stage's starting call (the whole stage, or its split), ``phase_calls`` the others, and a stage
    counts as committed once its whole call or its commit call answered. The run's publish calls (no node) go to
    ``published``; publishing before every stage committed is a problem.

    Attributes:
        failures: node -> the errors its first calls raise, one per call; later calls (and other nodes) succeed.
        chunks, buckets: what the double's split calls answer (buckets: and its partition calls, as reducers).
    """

    plan: Plan
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    committed: set[str] = field(default_factory=set)
    phase_calls: list[tuple[str, str, int | None]] = field(default_factory=list)
    published: list[dict[str, Any]] = field(default_factory=list)
    chunks: int = 3
    buckets: int = 2
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self,
        method: str,
        url: str,
        timeout: float = 300,
        body: Any = None,
        headers: Any = None,
        query: Any = None,
        auth: Any = None,
        **_: Any,
    ) -> dict[str, Any]:
        event = json.loads(json.dumps(body))  # what goes over the wire
        node = str(event.get("node")) if isinstance(event, dict) else "?"
        phase = event.get("phase") if isinstance(event, dict) else None
        if phase == "publish":
            return self._publish(event)
        with self.lock:
            self.events.append(event)
            if phase not in (None, "split"):
                self.phase_calls.append((node, str(phase), event.get("chunk")))
                try:
                    validate_event(event)
                except Exception as error:
                    self.problems.append(f"invalid {phase} event for {node}: {error}")
                if phase == "commit":
                    self.committed.add(node)
                return self._answer(event, node, phase)
            attempt = self.calls.count(node)
            self.calls.append(node)
            self._check(method, url, timeout, auth, event, node)
            errors = self.failures.get(node, [])
            if attempt < len(errors):
                raise errors[attempt]
            if phase is None:
                self.committed.add(node)
        return self._answer(event, node, phase)

    def _publish(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.published.append(event)
            try:
                validate_event(event)
            except Exception as error:
                self.problems.append(f"invalid publish event: {error}")
            missing = sorted(task.id for task in self.plan.tasks if task.id not in self.committed)
            if missing:
                self.problems.append(f"the run was published before {missing} committed")
        result = {
            "version": EVENT_VERSION,
            "pipeline": self.plan.pipeline,
            "phase": "publish",
            "run_id": event["run"]["id"],
            "status": "committed",
            "seconds": 0.1,
            "output": {"kind": "publish", "sinks": {}, "latest": f"{event['run']['storage']}_latest.json"},
        }
        return {"code": 200, "headers": {"Content-Type": "application/json"}, "body": validate_result(result)}

    def _answer(self, event: dict[str, Any], node: str, phase: str | None) -> dict[str, Any]:
        task = self.plan.task(node)
        if phase in ("split", "partition"):
            assert task.fanout is not None
            buckets = self.buckets if task.fanout.mode == "key" else 0  # the split's buckets, the partition's reducers
            output: dict[str, Any] = {"kind": "split", "bucket": "", "map_items": "m", "reduce_items": "r"}
            output.update({"results": "x", "chunks": self.chunks, "buckets": buckets})
        elif task.output == "value":
            output = {"kind": "value", "key": value_key(self.plan.pipeline, RUN_ID, node), "value": 1}
        else:
            uri = node_location(event["run"]["storage"], self.plan.pipeline, event["run"]["id"], node)
            output = {"kind": "dataset", "uri": uri, "rows": 3, "bytes": 1024, "files": 1}
        result = {
            "version": EVENT_VERSION,
            "pipeline": self.plan.pipeline,
            "node": node,
            "run_id": event["run"]["id"],
            "status": "committed",
            "seconds": 0.5,
            "output": output,
        }
        return {"code": 200, "headers": {"Content-Type": "application/json"}, "body": validate_result(result)}

    def _check(self, method: str, url: str, timeout: float, auth: Any, event: Any, node: str) -> None:
        try:
            validate_event(event)
        except Exception as error:
            self.problems.append(f"invalid event for {node}: {error}")
            return
        task = self.plan.task(node)
        if (method, url, auth) != ("POST", SERVICE_URL, {"type": "OIDC"}):
            self.problems.append(f"{node}: called with {method} {url} auth={auth}")
        if timeout != task.timeout_s:
            self.problems.append(f"{node}: timeout {timeout}, the stage declares {task.timeout_s}")
        missing = sorted(node for node in task.upstream if node not in self.committed)
        if missing:
            self.problems.append(f"{node} called before its inputs {missing} were committed")


Execute = Callable[..., Any]


@pytest.fixture(autouse=True)
def _branches_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each parallel step's branches one after another, a schedule a parallel step allows.

    workflows-emulator runs branches in threads that share one dict of variables, which it iterates without a
    lock while other branches assign to it; on a busy machine a branch then fails with "dictionary changed size
    during iteration", a failure of the emulator, not of the definition. (Several tasks served at once are tested
    on the runtime's own service.)
    """
    import workflows_emulator.main as emulator

    class Branch(emulator.RisingThread):  # type: ignore[misc]
        def start(self) -> None:
            self.run()

        def join(self, timeout: float | None = None) -> None:
            if self.exc:
                self.exc.__context__ = RuntimeError("branch error")  # as the emulator's own join does
                raise self.exc

    monkeypatch.setattr(emulator, "RisingThread", Branch)


@pytest.fixture(autouse=True)
def _loop_variables_end_with_their_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each parallel step of workflows-emulator in a context of its own.

    The emulator gives a ``parallel for``'s variable to its iterations through a new ``ContextVar`` named after the
    variable, set in the caller's context, and looks variables up among the context's ``ContextVar`` objects by name: a
    second loop with the same variable (the map and then the reduce phase of a split stage, both run by one
    subworkflow) finds the first loop's variable too and may read its last value. In Workflows a loop's variable
    ends with its loop; here it then ends with the copied context.
    """
    import workflows_emulator.main as emulator

    run_loop = emulator.StepParallel.execute_task_config

    def in_own_context(self: Any, *args: Any, **kwargs: Any) -> Any:
        return contextvars.copy_context().run(run_loop, self, *args, **kwargs)

    monkeypatch.setattr(emulator.StepParallel, "execute_task_config", in_own_context)


@pytest.fixture(autouse=True)
def _maps_render_as_maps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give workflows-emulator's expressions plain dicts and lists back.

    The emulator evaluates an expression among its variables held as ``addict`` maps (dict subclasses), and renders
    a map value (``cause: ${error}``) as JSON only when its type is exactly ``dict``: an ``addict`` map is written
    with ``str()`` instead, as a Python repr, which it then fails to parse as YAML when a message holds a quote
    (``stage 'report' failed``). Workflows itself keeps the map.
    """
    import workflows_emulator.render as render

    evaluate = render.run_code

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value

    monkeypatch.setattr(render, "run_code", lambda code, context: plain(evaluate(code, context)))


@pytest.fixture
def workflows(monkeypatch: pytest.MonkeyPatch) -> Iterator[Execute]:
    """``run(text, double, args=None)``: the return value of executing ``text`` in workflows-emulator.

    The emulator reads ``sys.get_env`` from the process environment; its backoff waits are recorded in
    ``run.delays`` instead of slept.
    """
    import workflows_emulator.lib.http_utils as http_utils
    import workflows_emulator.main as emulator

    monkeypatch.setenv(EXECUTION_ID_ENV, RUN_ID)
    monkeypatch.setenv(STORAGE_ROOT_ENV, STORAGE)
    monkeypatch.setenv(SERVICE_URL_ENV, SERVICE_URL)
    for name, value in {"GOOGLE_CLOUD_PROJECT_ID": "demo-project", "GOOGLE_CLOUD_LOCATION": "europe-west1"}.items():
        monkeypatch.setenv(name, value)
    for _, memory in gcp_limits.CONTAINER.sizes:  # a container stage's job, as a deploy names it
        monkeypatch.setenv(f"SPARKFLOW_CONTAINER_JOB_{memory}MB", f"sparkflow-{memory}mb")
    delays: list[float] = []
    monkeypatch.setattr(emulator, "sleep", delays.append)

    def run(text: str, double: StageDouble, args: Any = None) -> Any:
        monkeypatch.setattr(http_utils, "request", double)
        monkeypatch.setattr(emulator.StepCall, "execute_connector", staticmethod(_container_jobs(double)))
        # A fresh context per execution: the emulator keeps variables in context variables, which would
        # otherwise leak from one test's execution into the next one run by the same thread.
        return contextvars.Context().run(emulator.execute_workflow, yaml.safe_load(text), {"args": args})

    run.delays = delays  # type: ignore[attr-defined]
    yield run


def _container_jobs(double: StageDouble) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Stands in for the Cloud Run jobs connector of a container stage: its one task answers like the service's
    call of the same event (the double checks and records it), and the job succeeds."""

    def run_job(rendered_step: dict[str, Any]) -> dict[str, Any]:
        assert rendered_step["call"] == "googleapis.run.v2.projects.locations.jobs.run"
        overrides = rendered_step["args"]["body"]["overrides"]
        (env,) = overrides["containerOverrides"][0]["env"]
        event = json.loads(env["value"])
        timeout = double.plan.task(event["node"]).timeout_s
        for _ in range(int(overrides["taskCount"])):
            double("POST", SERVICE_URL, timeout=timeout, body=event, auth={"type": "OIDC"})
        return {"name": "operations/run", "done": True, "response": {"succeededCount": int(overrides["taskCount"])}}

    return run_job


_NAME = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/workflows/[^/:]+)$")
_PARENT = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/workflows$")


@dataclass
class FakeWorkflowsApi:
    """The part of the Workflows REST API (v1) that deploy and delete use: get, create, patch and delete a workflow.

    Create, patch and delete answer a finished long-running operation. ``requests`` lists (method, path, query, body)
    of every request, ``workflows`` the stored resources by name.
    """

    workflows: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    revisions: int = 0

    def handle(self, method: str, target: str, body: Any) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        self.requests.append((method, parts.path, query, body))
        if "/locations/denied/" in parts.path + "/":
            return 403, {"error": {"code": 403, "message": "permission denied", "status": "PERMISSION_DENIED"}}
        name = _NAME.match(parts.path)
        parent = _PARENT.match(parts.path)
        if method == "GET" and name:
            found = self.workflows.get(name.group(1))
            return (200, found) if found else _not_found(name.group(1))
        if method == "POST" and parent:
            full = f"{parent.group(1)}/workflows/{query['workflowId'][0]}"
            if full in self.workflows:
                return 409, {"error": {"code": 409, "message": f"{full} exists", "status": "ALREADY_EXISTS"}}
            self.workflows[full] = {"name": full, "state": "ACTIVE", **self._revised(body)}
            return 200, self._operation(full)
        if method == "PATCH" and name and name.group(1) in self.workflows:
            fields = [path for path in query.get("updateMask", [""])[0].split(",") if path]
            stored = self.workflows[name.group(1)]
            maps = ("userEnvVars", "labels")
            stored.update(self._revised({key: body.get(key, {} if key in maps else "") for key in fields}))
            return 200, self._operation(name.group(1))
        if method == "DELETE" and name and name.group(1) in self.workflows:
            del self.workflows[name.group(1)]
            location = name.group(1).rsplit("/workflows/", 1)[0]
            empty = {"@type": "type.googleapis.com/google.protobuf.Empty"}
            return 200, {"name": f"{location}/operations/op-delete", "done": True, "response": empty}
        return _not_found(parts.path)

    def _revised(self, changes: dict[str, Any]) -> dict[str, Any]:
        self.revisions += 1
        return {**changes, "revisionId": f"{self.revisions:06d}-abc"}

    def _operation(self, name: str) -> dict[str, Any]:
        workflow = {"@type": "type.googleapis.com/google.cloud.workflows.v1.Workflow", **self.workflows[name]}
        return {
            "name": f"{name.rsplit('/workflows/', 1)[0]}/operations/op-{self.revisions}",
            "done": True,
            "response": workflow,
        }


def _not_found(what: str) -> tuple[int, dict[str, Any]]:
    return 404, {"error": {"code": 404, "message": f"{what} not found", "status": "NOT_FOUND"}}


@contextlib.contextmanager
def serving(handle: Callable[[str, str, Any], tuple[int, dict[str, Any]]]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering every request with ``handle(method, path, JSON body)``; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, document = handle(self.command, self.path, json.loads(raw) if raw else None)
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def workflows_api() -> Iterator[tuple[FakeWorkflowsApi, Any]]:
    """The fake API on 127.0.0.1 and a ``WorkflowsClient`` (REST transport, anonymous credentials) using it."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import workflows_v1

    api = FakeWorkflowsApi()
    with serving(api.handle) as url:
        client = workflows_v1.WorkflowsClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": url}
        )
        yield api, client


_JOB = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/jobs/[^/:]+)$")
_JOBS = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/jobs$")


@dataclass
class FakeSchedulerApi:
    """The part of the Cloud Scheduler REST API (v1) that deploy and delete use: get, create, patch and delete a job
    (https://cloud.google.com/scheduler/docs/reference/rest/v1/projects.locations.jobs). ``requests`` lists
    (method, path, query, body) of every request, ``jobs`` the stored resources by name."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)

    def handle(self, method: str, target: str, body: Any) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        self.requests.append((method, parts.path, query, body))
        name = _JOB.match(parts.path)
        parent = _JOBS.match(parts.path)
        if method == "GET" and name:
            found = self.jobs.get(name.group(1))
            return (200, found) if found else _not_found(name.group(1))
        if method == "POST" and parent:
            full = body.get("name", "")
            if not full.startswith(f"{parent.group(1)}/jobs/"):
                return 400, {"error": {"code": 400, "message": f"bad job name {full!r}", "status": "INVALID_ARGUMENT"}}
            if full in self.jobs:
                return 409, {"error": {"code": 409, "message": f"{full} exists", "status": "ALREADY_EXISTS"}}
            self.jobs[full] = {**body, "state": "ENABLED", "userUpdateTime": "2026-12-01T00:00:00Z"}
            return 200, self.jobs[full]
        if method == "PATCH" and name and name.group(1) in self.jobs:
            stored = self.jobs[name.group(1)]
            for key in [path for path in query.get("updateMask", [""])[0].split(",") if path]:
                stored[key] = body.get(key)
            return 200, stored
        if method == "DELETE" and name and name.group(1) in self.jobs:
            del self.jobs[name.group(1)]
            return 200, {}
        return _not_found(parts.path)


@pytest.fixture
def scheduler_api() -> Iterator[tuple[FakeSchedulerApi, Any]]:
    """The fake Cloud Scheduler API on 127.0.0.1 and a ``CloudSchedulerClient`` (REST, anonymous) using it."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import scheduler_v1

    api = FakeSchedulerApi()
    with serving(api.handle) as url:
        client = scheduler_v1.CloudSchedulerClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": url}
        )
        yield api, client


_TRIGGER = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+/triggers/[^/:]+)$")
_TRIGGERS = re.compile(r"^/v1/(projects/[^/]+/locations/[^/]+)/triggers$")


@dataclass
class FakeEventarcApi:
    """The part of the Eventarc REST API (v1) that deploy and delete use: get, create, patch and delete a trigger
    (https://cloud.google.com/eventarc/docs/reference/rest/v1/projects.locations.triggers); create, patch and delete
    answer a finished long-running operation. ``requests`` lists (method, path, query, body) of every request,
    ``triggers`` the stored resources by name."""

    triggers: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)

    def handle(self, method: str, target: str, body: Any) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        self.requests.append((method, parts.path, query, body))
        name = _TRIGGER.match(parts.path)
        parent = _TRIGGERS.match(parts.path)
        if method == "GET" and name:
            found = self.triggers.get(name.group(1))
            return (200, found) if found else _not_found(name.group(1))
        if method == "POST" and parent:
            full = f"{parent.group(1)}/triggers/{query['triggerId'][0]}"
            if full in self.triggers:
                return 409, {"error": {"code": 409, "message": f"{full} exists", "status": "ALREADY_EXISTS"}}
            self.triggers[full] = {**body, "name": full, "uid": "5f1e2d3c", "etag": "e1"}
            return 200, self._operation(full, self.triggers[full])
        if method == "PATCH" and name and name.group(1) in self.triggers:
            stored = self.triggers[name.group(1)]
            for key in [path for path in query.get("updateMask", [""])[0].split(",") if path]:
                stored[key] = body.get(key)
            return 200, self._operation(name.group(1), stored)
        if method == "DELETE" and name and name.group(1) in self.triggers:
            return 200, self._operation(name.group(1), self.triggers.pop(name.group(1)))
        return _not_found(parts.path)

    def _operation(self, name: str, trigger: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": f"{name.rsplit('/triggers/', 1)[0]}/operations/op-{len(self.requests)}",
            "done": True,
            "response": {"@type": "type.googleapis.com/google.cloud.eventarc.v1.Trigger", **trigger},
        }


@pytest.fixture
def eventarc_api() -> Iterator[tuple[FakeEventarcApi, Any]]:
    """The fake Eventarc API on 127.0.0.1 and an ``EventarcClient`` (REST, anonymous) using it."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import eventarc_v1

    api = FakeEventarcApi()
    with serving(api.handle) as url:
        client = eventarc_v1.EventarcClient(
            credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": url}
        )
        yield api, client


@dataclass
class FakeExecutionsApi:
    """The Workflow Executions API (v1, gRPC: the only transport the official ``ExecutionsClient`` has) for
    ``start`` and ``status``: ``CreateExecution`` runs the deployed definition in workflows-emulator on a thread,
    its stage calls answered by ``double``; ``GetExecution`` answers the execution as the API does: ``ACTIVE`` with
    the step a stage call is in (``status.currentSteps``) while it runs, then ``SUCCEEDED`` with the returned value
    as JSON (``result``), or ``FAILED`` with the raised error as JSON (``error.payload``) and its message
    (``error.context``); ``ListExecutions`` lists the workflow's executions. The first execution's id is
    :data:`RUN_ID`, later ones get ids of their own; the emulator's run reads its execution's id from the environment.

    ``gate``: a node whose stage call sets ``reached`` and waits for ``release`` (so a test can read the run
    while that stage runs).
    """

    definitions: dict[str, str]
    double: StageDouble
    run: Execute
    gate: str | None = None
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[str, Any]] = field(default_factory=list)
    executions: dict[str, Any] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)

    def create(self, request: Any, context: Any) -> Any:
        import grpc
        from google.cloud.workflows.executions_v1 import Execution

        self.requests.append(("CreateExecution", request))
        text = self.definitions.get(request.parent)
        if text is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.parent}' was not found")
        number = len(self.executions)
        name = f"{request.parent}/executions/{RUN_ID if not number else f'{RUN_ID[:-4]}{number:04d}'}"
        execution = Execution(
            name=name,
            state=Execution.State.ACTIVE,
            argument=request.execution.argument,
            start_time=datetime.now(UTC),
        )
        self.executions[name] = execution
        thread = threading.Thread(target=self._execute, args=(execution, text), daemon=True)
        self.threads.append(thread)
        thread.start()
        return execution

    def list(self, request: Any, context: Any) -> Any:
        from google.cloud.workflows.executions_v1.types import executions as messages

        self.requests.append(("ListExecutions", request))
        mine = [item for name, item in self.executions.items() if name.startswith(f"{request.parent}/executions/")]
        return messages.ListExecutionsResponse(executions=mine)

    def get(self, request: Any, context: Any) -> Any:
        import grpc

        self.requests.append(("GetExecution", request))
        if request.name not in self.executions:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Resource '{request.name}' was not found")
        return self.executions[request.name]

    def _execute(self, execution: Any, text: str) -> None:
        from google.cloud.workflows.executions_v1 import Execution
        from workflows_emulator.utils import WorkflowError

        def call(method: str, url: str, **arguments: Any) -> Any:
            node = str((arguments.get("body") or {}).get("node", "run-publish"))
            execution.status.current_steps = [Execution.Status.Step(routine="main", step=node)]
            if node == self.gate:
                self.reached.set()
                self.release.wait(timeout=60)
            return self.double(method, url, **arguments)

        os.environ[EXECUTION_ID_ENV] = str(execution.name).rsplit("/", 1)[-1]  # executions run one at a time here
        try:
            result = self.run(text, call, json.loads(execution.argument))
        except WorkflowError as error:
            execution.error = Execution.Error(payload=json.dumps(error.payload, default=str), context=str(error))
            execution.end_time = datetime.now(UTC)
            execution.state = Execution.State.FAILED
        except Exception as error:  # a failure of the emulator or the test's service: the run fails, saying so
            execution.error = Execution.Error(payload=json.dumps(repr(error)), context=repr(error))
            execution.end_time = datetime.now(UTC)
            execution.state = Execution.State.FAILED
        else:
            execution.result = json.dumps(result)
            execution.end_time = datetime.now(UTC)
            execution.state = Execution.State.SUCCEEDED


@pytest.fixture
def executions_api(
    workflows: Execute,
) -> Iterator[Callable[[dict[str, str], StageDouble], tuple[FakeExecutionsApi, Any]]]:
    """``serve(definitions, double)``: a :class:`FakeExecutionsApi` on a local gRPC port and an ``ExecutionsClient``
    (anonymous, over an insecure channel) using it."""
    from concurrent import futures

    import grpc
    from google.cloud.workflows import executions_v1
    from google.cloud.workflows.executions_v1.services.executions.transports import ExecutionsGrpcTransport
    from google.cloud.workflows.executions_v1.types import executions as messages

    servers: list[tuple[Any, FakeExecutionsApi]] = []

    def serve(definitions: dict[str, str], double: StageDouble) -> tuple[FakeExecutionsApi, Any]:
        api = FakeExecutionsApi(definitions, double, workflows)
        handlers = {
            "CreateExecution": grpc.unary_unary_rpc_method_handler(
                api.create,
                request_deserializer=messages.CreateExecutionRequest.deserialize,
                response_serializer=messages.Execution.serialize,
            ),
            "GetExecution": grpc.unary_unary_rpc_method_handler(
                api.get,
                request_deserializer=messages.GetExecutionRequest.deserialize,
                response_serializer=messages.Execution.serialize,
            ),
            "ListExecutions": grpc.unary_unary_rpc_method_handler(
                api.list,
                request_deserializer=messages.ListExecutionsRequest.deserialize,
                response_serializer=messages.ListExecutionsResponse.serialize,
            ),
        }
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        service = grpc.method_handlers_generic_handler("google.cloud.workflows.executions.v1.Executions", handlers)
        server.add_generic_rpc_handlers((service,))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append((server, api))
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        return api, executions_v1.ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel))

    yield serve
    for server, api in servers:
        api.release.set()
        for thread in api.threads:
            thread.join(timeout=60)
        server.stop(grace=None)
