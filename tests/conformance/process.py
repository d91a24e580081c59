"""The runner's side of a worker process (:mod:`tests.conformance.worker`): start it, send it entries one at a time,
and bound each entry's time. A worker that does not answer within an entry's bound (plus a grace for the worker's
own bound to fire first) is killed and the entry reported as timed out; the next entry starts a new worker.
"""

from __future__ import annotations

import os
import pickle
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tests.conformance.extract import Entry
from tests.conformance.frames import HEADER, encode
from tests.conformance.results import Outcome

ROOT = Path(__file__).resolve().parents[2]


class WorkerGone(Exception):
    """The worker exited, or did not answer in time (and was killed)."""


@dataclass
class _Submitted:
    entry: Entry
    timeout: float
    problem: str = ""  # why it could not be sent


class EngineProcess:
    """One worker process of ``engine``, started on first use, working in ``folder`` (its current directory, where
    examples' relative paths and Spark's warehouse land) and logging its stderr to ``folder/<engine>.log``.

    :meth:`submit` then :meth:`outcome` let the runner do other work (another engine's) while the entry runs.
    """

    def __init__(self, engine: str, folder: Path, start_timeout: float = 300.0, grace: float = 30.0) -> None:
        self.engine, self.folder = engine, folder
        self.start_timeout, self.grace = start_timeout, grace
        self.starts = 0  # workers started (more than one: a worker was killed or died)
        self.start_seconds = 0.0  # their engines' start-up, as the workers measured it
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._log: IO[bytes] | None = None
        self._submitted: _Submitted | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.engine}.log"

    def start(self) -> None:
        """Start a worker (it starts its engine in the background); nothing when one is running."""
        if self._process is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the worker's stderr for its whole life, closed in stop()
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        environment = {**os.environ, "PYTHONPATH": path, "TZ": "UTC", "SPARK_LOCAL_IP": "127.0.0.1"}
        environment.pop("SPARKFLOW_ENGINE", None)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.conformance.worker", self.engine],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=self.folder,
            env=environment,
        )
        self._ready = False
        self.starts += 1

    def submit(self, entry: Entry, timeout: float) -> None:
        """Send ``entry`` to the worker (starting one if needed, and waiting until its engine is up)."""
        self._submitted = _Submitted(entry, timeout)
        try:
            self.start()
            if not self._ready:
                _, seconds = self._receive(self.start_timeout)
                self.start_seconds += seconds
                self._ready = True
            self._send((entry, timeout))
        except WorkerGone as gone:
            self.stop()
            self._submitted.problem = f"the {self.engine} worker failed: {gone}"

    def outcome(self) -> Outcome:
        """The outcome of the entry last submitted."""
        submitted, self._submitted = self._submitted, None
        if submitted is None:
            raise RuntimeError("outcome() without submit()")
        if submitted.problem:
            return Outcome(submitted.entry.name, problem=submitted.problem)
        try:
            found: Outcome = self._receive(submitted.timeout + self.grace)
            return found
        except WorkerGone as gone:
            self.stop()
            return Outcome(submitted.entry.name, timed_out=True, problem=f"the worker was stopped: {gone}")

    def run(self, entry: Entry, timeout: float) -> Outcome:
        """Run ``entry`` on the worker and return its outcome."""
        self.submit(entry, timeout)
        return self.outcome()

    def stop(self) -> None:
        """Stop the worker: asked to, then killed if it does not exit."""
        process, self._process = self._process, None
        if process is not None:
            try:
                if process.poll() is None and process.stdin is not None:
                    process.stdin.write(encode(None))
                    process.stdin.close()
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _send(self, message: Any) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(encode(message))
            self._process.stdin.flush()
        except OSError as error:
            raise WorkerGone(f"it exited (code {self._process.poll()}); see {self.log_path}") from error

    def _receive(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        header = self._read(HEADER.size, deadline)
        return pickle.loads(self._read(HEADER.unpack(header)[0], deadline))

    def _read(self, size: int, deadline: float) -> bytes:
        assert self._process is not None and self._process.stdout is not None
        descriptor = self._process.stdout.fileno()
        data = b""
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([descriptor], [], [], remaining)[0]:
                self._process.kill()
                raise WorkerGone("no answer in time")
            chunk = os.read(descriptor, size - len(data))
            if not chunk:
                raise WorkerGone(f"it exited (code {self._process.wait()}); see {self.log_path}")
            data += chunk
        return data
