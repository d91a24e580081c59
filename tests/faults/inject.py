"""Fault injection inside the processes that run sparkflow tasks, without a hook in production code.

A trial writes a :class:`FaultPlan` to a JSON file and runs the pipeline with ``SPARKFLOW_FAULTS=<that file>``
in the environment and :data:`BOOT` on the Python path (see :func:`fault_environment`). Every Python process
the run starts — the local executor's DuckDB workers, and the ``python -m sparkflow.runtime`` twins of
duplicate attempts — then imports ``sitecustomize`` from :data:`BOOT`, which calls
:func:`install_from_environment` before anything else runs. That wraps the runtime's own seams in that process:

* ``sparkflow.runtime.execute.handle_event``: which task the process runs (node / phase / chunk);
* ``sparkflow.runtime.engines.start``: the engine's ``write`` and ``write_partitioned`` (point ``write``);
* ``sparkflow.runtime.storage.filesystem``: every fsspec call (points ``fs.<method>``; ``put_file`` also counts
  as point ``put``, the upload of one attempt file);
* ``sparkflow.runtime.storage.claim`` and ``sparkflow.runtime.storage.commit``: just before (``commit``) and just
  after (``committed``) the exclusive create of a node's claim, and the one atomic write of a ``_COMMITTED.json``
  (a whole stage or a split stage's commit task passes both: its claim, then its output's manifest; a chunk
  task's part only the second);
* ``sparkflow.runtime.storage.copy_files``: each file published into an output folder (point ``publish``);
* ``sparkflow.runtime.publish.publish_sink``: the run's publish task publishing one sink (a Parquet folder or a
  Delta commit): ``commit`` before, ``committed`` after, as for an output.

A :class:`Fault` fires at the ``index``-th call of one task's attempt that matches its point. Before it acts,
it claims a marker file in the plan's journal folder with ``O_CREAT | O_EXCL``, which is atomic across
processes: a fault fires at most ``times`` times in a whole trial (the platform's retry passes the point
unharmed), and the driver counts exactly the faults that fired (a marker is on disk before the SIGKILL).

With ``profile=True`` nothing is injected: every call is recorded per task instead, so a trial can pick points
that a fault-free run really passes.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ENV_PLAN = "SPARKFLOW_FAULTS"
ENV_TWIN = "SPARKFLOW_FAULT_TWIN"
BOOT = str(Path(__file__).resolve().parent / "boot")
REPOSITORY = str(Path(__file__).resolve().parents[2])

# What each kind does, and at which point it fires.
KINDS: dict[str, str] = {
    "kill-before-write": "write",  # SIGKILL as the engine starts writing the task's output
    "kill-mid-upload": "put",  # half of one attempt file reaches storage, then SIGKILL
    "kill-before-commit": "commit",  # everything uploaded, SIGKILL before the claim (or a part's _COMMITTED.json)
    "kill-after-commit": "committed",  # claimed (or committed), SIGKILL before the output is published (or answered)
    "kill-mid-publish": "publish",  # some claimed files copied into the output folder, SIGKILL before the rest
    "raise": "*",  # an exception at any intercepted call
    "transient": "fs.",  # the storage call fails with a connection error, `times` times in all
    "duplicate": "commit",  # a second attempt runs at the same time; both commit at the same moment
}
# fsspec calls that move no bytes and cannot fail: not counted as storage calls.
_NOT_IO = frozenset({"invalidate_cache", "unstrip_protocol", "_strip_protocol"})
# How long the two attempts of a duplicate wait for each other before committing.
BARRIER_SECONDS = 60.0


@dataclass(frozen=True)
class Fault:
    """One fault of a trial.

    Attributes:
        id: unique within the plan; names its marker files.
        kind: one of :data:`KINDS`.
        task: the task it targets (see :func:`task_key`).
        index: fires at the ``index``-th call (0-based) of an attempt that matches its point.
        times: how many times it fires in the whole trial (transient errors: consecutive failing attempts).
        at: its point, when not the kind's (:data:`KINDS`): e.g. ``fs.pipe_file`` for a transient error.
    """

    id: str
    kind: str
    task: str
    index: int = 0
    times: int = 1
    at: str | None = None

    @property
    def point(self) -> str:
        return self.at or KINDS[self.kind]

    def matches(self, point: str) -> bool:
        wanted = self.point
        return wanted == "*" or point == wanted or (wanted.endswith(".") and point.startswith(wanted))


@dataclass(frozen=True)
class FaultPlan:
    """The faults of one trial and where their markers go."""

    journal: str
    faults: tuple[Fault, ...] = ()
    profile: bool = False

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @staticmethod
    def load(path: str) -> FaultPlan:
        document = json.loads(Path(path).read_text())
        faults = tuple(Fault(**item) for item in document["faults"])
        return FaultPlan(document["journal"], faults, bool(document["profile"]))


def task_key(event: dict[str, Any]) -> str:
    """``node/phase/chunk`` of an event: ``counts/map/3``, ``counts/commit/-``, ``top/whole/-``, ``run/publish/-``."""
    chunk = event.get("chunk")
    return f"{event.get('node', 'run')}/{event.get('phase') or 'whole'}/{'-' if chunk is None else chunk}"


def fired(plan: FaultPlan, fault: Fault) -> int:
    """How many times ``fault`` fired (a duplicate counts once both attempts were ready to commit together)."""
    journal = Path(plan.journal)
    if fault.kind == "duplicate":
        both = all((journal / f"{fault.id}.arrived-{role}").exists() for role in ("primary", "twin"))
        return int(both)
    return sum(1 for n in range(fault.times) if (journal / f"{fault.id}.fired-{n}").exists())


def twin_failures(plan: FaultPlan) -> list[str]:
    """The duplicate attempts that did not succeed (a twin must succeed, or find its work committed)."""
    problems: list[str] = []
    for fault in plan.faults:
        report = Path(plan.journal) / f"{fault.id}.twin.json"
        if fault.kind == "duplicate" and report.exists():
            outcome = json.loads(report.read_text())
            if outcome["code"] != 0:
                problems.append(f"duplicate attempt of {fault.task} exited {outcome['code']}: {outcome['stderr']}")
    return problems


def read_profile(journal: Path) -> dict[str, list[str]]:
    """Task -> the points its (fault-free) attempt passed, in order, from a profiling run's journal."""
    calls: dict[str, list[str]] = {}
    for path in sorted(journal.glob("profile-*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            calls.setdefault(record["task"], []).append(record["point"])
    return calls


@contextmanager
def fault_environment(plan_file: Path) -> Iterator[None]:
    """Processes started inside this block (and their children) run with the plan's faults installed.

    The local executor's DuckDB workers get ``PYTHONPATH`` from this process's ``sys.path`` and inherit its
    environment, so both are set here, and restored afterwards.
    """
    previous = os.environ.get(ENV_PLAN)
    os.environ[ENV_PLAN] = str(plan_file)
    sys.path.insert(0, BOOT)
    try:
        yield
    finally:
        sys.path.remove(BOOT)
        if previous is None:
            del os.environ[ENV_PLAN]
        else:
            os.environ[ENV_PLAN] = previous


# --- inside a task process -------------------------------------------------------------------------------------


class InjectedFault(RuntimeError):
    """The exception a ``raise`` fault throws: a crash retrying can fix."""


@dataclass
class _Attempt:
    """The task this process is running now and the calls it made so far."""

    task: str
    role: str  # primary, or twin (the second attempt of a duplicate)
    hits: Counter[str] = field(default_factory=Counter)  # fault id -> matching calls so far
    committing: bool = False


class _Injector:
    def __init__(self, plan: FaultPlan, twin_of: str | None) -> None:
        self.plan = plan
        self.journal = Path(plan.journal)
        self.twin_of = twin_of
        self.attempt: _Attempt | None = None
        self.random = random.Random()

    # The seams --------------------------------------------------------------------------------------------------

    def handle_event(self, original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        def handle_event(event: Any, config: Any) -> dict[str, Any]:
            key = task_key(event) if isinstance(event, dict) else "?"
            self.attempt = _Attempt(key, "twin" if self.twin_of else "primary")
            twin = self._start_twin(event, config) if self.twin_of is None else None
            try:
                return original(event, config)
            finally:
                self.attempt = None
                if twin is not None:
                    self._wait_twin(*twin)

        return handle_event

    def engine_start(self, original: Callable[..., Any]) -> Callable[..., Any]:
        injector = self

        class Engine:
            """The engine, with its writes intercepted."""

            def __init__(self, engine: Any) -> None:
                self._engine = engine

            def __getattr__(self, name: str) -> Any:
                return getattr(self._engine, name)

            def write(self, frame: Any, folder: str) -> Any:
                injector.hit("write")
                return self._engine.write(frame, folder)

            def write_partitioned(self, frame: Any, column: str, folder: str) -> Any:
                injector.hit("write")
                return self._engine.write_partitioned(frame, column, folder)

            def write_attempt(self, frame: Any, work: str, scratch: str, attempt: str) -> Any:
                injector.hit("write")  # a stage's output: the engine writes it (its own write is not the wrapper's)
                return self._engine.write_attempt(frame, work, scratch, attempt)

        def start(*args: Any, **kwargs: Any) -> Any:
            return Engine(original(*args, **kwargs))

        return start

    def filesystem(self, original: Callable[[str], tuple[Any, str]]) -> Callable[[str], tuple[Any, str]]:
        injector = self

        class Filesystem:
            """An fsspec filesystem whose calls pass through the injector first."""

            def __init__(self, fs: Any) -> None:
                self._fs = fs

            def __getattr__(self, name: str) -> Any:
                value = getattr(self._fs, name)
                if not callable(value) or name in _NOT_IO:
                    return value

                def call(*args: Any, **kwargs: Any) -> Any:
                    injector.hit(f"fs.{name}")
                    if name == "put_file":
                        injector.hit("put", partial=lambda: _half_copy(self._fs, str(args[0]), str(args[1])))
                    return value(*args, **kwargs)

                return call

        def filesystem(uri: str) -> tuple[Any, str]:
            fs, path = original(uri)
            return Filesystem(fs), path

        return filesystem

    def commit(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """The claim, the commit and a sink's publish: each is the moment one attempt's files become visible."""

        def commit(*args: Any) -> Any:
            self.hit("commit")
            answer = original(*args)
            self.hit("committed")
            return answer

        return commit

    def copy_files(self, original: Callable[[list[str], str, list[str]], None]) -> Callable[..., None]:
        """Publishing, one file at a time, so that a kill can land between two files."""

        def copy_files(uris: list[str], location: str, names: list[str]) -> None:
            for uri, name in zip(uris, names, strict=True):
                self.hit("publish")
                original([uri], location, [name])

        return copy_files

    # Firing -----------------------------------------------------------------------------------------------------

    def hit(self, point: str, partial: Callable[[], None] | None = None) -> None:
        attempt = self.attempt
        if attempt is None:
            return
        if self.plan.profile:
            with open(self.journal / f"profile-{os.getpid()}.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"task": attempt.task, "point": point}) + "\n")
            return
        for fault in self.plan.faults:
            if fault.task != attempt.task or not fault.matches(point):
                continue
            attempt.hits[fault.id] += 1
            if fault.kind == "duplicate":
                if point == "commit" and not attempt.committing and self._twin_running(fault):
                    attempt.committing = True
                    self._barrier(fault, attempt.role)
                continue
            if attempt.hits[fault.id] != fault.index + 1 or not self._claim(fault):
                continue
            if fault.kind == "raise":
                raise InjectedFault(f"injected fault {fault.id} at {point} of {attempt.task}")
            if fault.kind == "transient":
                number = errno.ECONNRESET if self.random.random() < 0.5 else errno.ETIMEDOUT
                raise ConnectionResetError(number, f"injected transient storage error {fault.id} at {point}")
            if partial is not None and fault.kind == "kill-mid-upload":
                partial()
            os.kill(os.getpid(), signal.SIGKILL)

    def _claim(self, fault: Fault) -> bool:
        return any(_create(self.journal / f"{fault.id}.fired-{n}") for n in range(fault.times))

    # Duplicate attempts -----------------------------------------------------------------------------------------

    def _start_twin(self, event: Any, config: Any) -> tuple[Fault, subprocess.Popen[bytes]] | None:
        attempt = self.attempt
        assert attempt is not None
        fault = next((f for f in self.plan.faults if f.kind == "duplicate" and f.task == attempt.task), None)
        if fault is None or not _create(self.journal / f"{fault.id}.started"):
            return None
        from sparkflow.runtime.workers import pipeline_spec

        env = {
            **os.environ,
            ENV_TWIN: fault.id,
            "SPARKFLOW_PIPELINE": pipeline_spec(config.pipeline),
            "SPARKFLOW_PLAN": self._plan_file(config),
            "SPARKFLOW_STORAGE_ROOT": config.storage_root,
            "SPARKFLOW_KV": config.kv or "",
            "SPARKFLOW_ALLOWED_INPUTS": ",".join(config.readable),
            "SPARKFLOW_ENGINE": config.engine or "duckdb",
        }
        twin_event = {**event, "attempt": f"twin-{fault.id}"}
        with open(self.journal / f"{fault.id}.twin.err", "wb") as errors:
            process = subprocess.Popen(
                [sys.executable, "-m", "sparkflow.runtime", json.dumps(twin_event)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        return fault, process

    def _plan_file(self, config: Any) -> str:
        """The run's Plan as a deployed twin function finds it (SPARKFLOW_PLAN)."""
        path = self.journal / "plan.json"
        if not path.exists():
            path.write_text(config.plan.to_json(), encoding="utf-8")
        return str(path)

    def _twin_running(self, fault: Fault) -> bool:
        return self.twin_of == fault.id or (self.journal / f"{fault.id}.started").exists()

    def _barrier(self, fault: Fault, role: str) -> None:
        """Wait until the other attempt is ready to commit too, then commit at (almost) the same moment."""
        _create(self.journal / f"{fault.id}.arrived-{role}")
        other = self.journal / f"{fault.id}.arrived-{'twin' if role == 'primary' else 'primary'}"
        deadline = time.monotonic() + BARRIER_SECONDS
        while not other.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(self.random.uniform(0, 0.01))  # either may commit first

    def _wait_twin(self, fault: Fault, process: subprocess.Popen[bytes]) -> None:
        try:
            code = process.wait(timeout=BARRIER_SECONDS * 2)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        errors = (self.journal / f"{fault.id}.twin.err").read_text(errors="replace")
        report = {"code": code, "stderr": errors[-2000:]}
        (self.journal / f"{fault.id}.twin.json").write_text(json.dumps(report))


def _create(path: Path) -> bool:
    """Create ``path`` if it does not exist yet; True if this call created it (atomic across processes)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def _half_copy(fs: Any, local: str, remote: str) -> None:
    """Put the first half of ``local`` at ``remote``: what a process killed in the middle of an upload leaves.

    Only on a local disk: an object store's PUT is atomic (a killed upload leaves no object at all).
    """
    from sparkflow.runtime import storage

    if not storage.is_local_fs(fs):
        return
    data = Path(local).read_bytes()
    fs.makedirs(os.path.dirname(remote), exist_ok=True)
    with fs.open(remote, "wb") as handle:
        handle.write(data[: len(data) // 2])


def install(plan: FaultPlan, twin_of: str | None = None) -> None:
    """Wrap the runtime's seams in this process (see the module docs)."""
    from sparkflow.runtime import engines, execute, publish, storage

    injector = _Injector(plan, twin_of)
    execute.handle_event = injector.handle_event(execute.handle_event)
    engines.start = injector.engine_start(engines.start)
    storage.filesystem = injector.filesystem(storage.filesystem)  # type: ignore[assignment]
    storage.commit = injector.commit(storage.commit)
    storage.claim = injector.commit(storage.claim)
    storage.copy_files = injector.copy_files(storage.copy_files)
    publish.publish_sink = injector.commit(publish.publish_sink)


def install_from_environment() -> None:
    """What ``sitecustomize`` calls: install the plan named by ``SPARKFLOW_FAULTS``, if any."""
    path = os.environ.get(ENV_PLAN)
    if path:
        install(FaultPlan.load(path), os.environ.get(ENV_TWIN) or None)
