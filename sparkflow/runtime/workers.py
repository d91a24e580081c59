"""The local executor's engine workers: processes that run the stages of an engine that needs a process of its own
(sail, duckdb) for a process whose PySpark is plain PySpark.

Such an engine changes what the pipeline's PySpark imports bind (sqlframe's classes for duckdb, Spark Connect's for
sail: see :attr:`sparkflow.engines.EngineSpec.prepare`), so ``sparkflow run`` sends each of its stages to a worker
process started with ``SPARKFLOW_ENGINE=<engine>``: it prepares itself for the engine, loads the same pipeline and
runs events through the same :func:`~sparkflow.runtime.execute.handle_event`, one at a time, keeping its engine warm
for the next event. Requests and replies are JSON lines on the worker's stdin and stdout.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from sparkflow.errors import Origin, SparkflowError
from sparkflow.runtime import engines
from sparkflow.runtime.protocol import ENGINE_VARIABLE

if TYPE_CHECKING:
    from sparkflow.runtime.execute import RuntimeConfig


def pipeline_spec(pipeline: Any) -> str:
    """How a worker process loads ``pipeline``: its module's import name, or the file it was loaded from."""
    module = sys.modules.get(pipeline.fn.__module__)
    spec = getattr(module, "__spec__", None)
    name = getattr(spec, "name", None)
    if name and not name.startswith("sparkflow_user_") and name != "__main__":
        return f"{name}:{_attribute(module, pipeline)}"
    return f"{pipeline.origin.file}:{_attribute(module, pipeline)}"


def _attribute(module: Any, pipeline: Any) -> str:
    for attribute, value in (vars(module) if module is not None else {}).items():
        if value is pipeline:
            return str(attribute)
    return str(pipeline.fn.__name__)


class WorkerPool:
    """Runs stages of one engine, pipeline and configuration in worker processes, for a process whose PySpark imports
    are plain PySpark (see module docs).

    Each worker handles one event at a time; a busy pool takes another worker, so concurrent stages run in
    parallel. The workers are the process's (:class:`_Workers`), not the pool's: local runs one after another (a
    notebook, tests) find them warm, with the engine started and the pipeline loaded.
    """

    def __init__(self, config: RuntimeConfig, engine: str) -> None:
        """Workers of ``engine`` for ``config``'s pipeline, each configured as ``config`` is (with that engine)."""
        self.engine = engine
        options = {
            "storage_root": config.storage_root,
            "kv": config.kv,
            "readable": list(config.readable),
            "writable": list(config.writable),
            "workdir": config.workdir,
            "plan": config.plan.to_json(),
        }
        self.request = {"pipeline": pipeline_spec(config.pipeline), "config": options}

    def handle_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run ``event`` in a worker; raise what the worker raised (SparkflowErrors keep their class)."""
        workers = _Workers.current(self.engine)
        worker = workers.acquire()
        healthy = False
        try:
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write(json.dumps({**self.request, "event": event}) + "\n")
            worker.stdin.flush()
            line = worker.stdout.readline()
            if not line:
                raise RuntimeError(
                    f"the {self.engine} worker process exited (code {worker.wait()}) while running a stage"
                )
            reply = json.loads(line)
            healthy = True
        finally:
            workers.release(worker, healthy)
        _replay_logs(reply.get("logs", ""))
        if "error" in reply:
            raise _rebuild(reply["error"])
        result: dict[str, Any] = reply["result"]
        return result


class _Workers:
    """The process's idle worker processes of one engine, all started under one launch: the working directory,
    sys.path and environment a worker takes on when it starts (a test's or a run's S3 endpoint and credentials among
    them).

    Asked for under another launch, the process retires these (idle ones stop now, busy ones when they finish)
    and starts new ones; the last ones stop when the process exits.
    """

    _current: ClassVar[dict[str, _Workers]] = {}
    _launching = threading.Lock()

    def __init__(self, engine: str, launch: tuple[Any, ...]) -> None:
        self.engine = engine
        self.launch = launch
        self.retired = False
        self._idle: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()

    @classmethod
    def current(cls, engine: str) -> _Workers:
        launch = (os.getcwd(), tuple(path for path in sys.path if path), tuple(sorted(os.environ.items())))
        with cls._launching:
            found = cls._current.get(engine)
            if found is None or found.launch != launch:
                if not cls._current:
                    atexit.register(cls._retire_current)
                if found is not None:
                    found.retire()
                found = cls._current[engine] = _Workers(engine, launch)
            return found

    @classmethod
    def _retire_current(cls) -> None:
        with cls._launching:
            for workers in cls._current.values():
                workers.retire()

    def acquire(self) -> subprocess.Popen[str]:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        cwd, paths, environment = self.launch
        env = {**dict(environment), ENGINE_VARIABLE: self.engine, "PYTHONPATH": os.pathsep.join(paths)}
        return subprocess.Popen(
            [sys.executable, "-c", "from sparkflow.runtime.workers import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env=env,
            cwd=cwd,
        )

    def release(self, worker: subprocess.Popen[str], healthy: bool) -> None:
        with self._lock:
            if healthy and not self.retired:
                self._idle.append(worker)
                return
        if healthy:
            _stop(worker)
        else:
            worker.kill()
            worker.wait()

    def retire(self) -> None:
        with self._lock:
            self.retired = True
            idle, self._idle = self._idle, []
        for worker in idle:
            _stop(worker)


def _stop(worker: subprocess.Popen[str]) -> None:
    """Stop an idle worker: it exits when its stdin closes."""
    if worker.stdin is not None:
        worker.stdin.close()
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    if worker.stdout is not None:
        worker.stdout.close()


def _replay_logs(text: str) -> None:
    from sparkflow.runtime import logs

    for line in text.splitlines():
        record = json.loads(line)
        message, severity = record.pop("message"), record.pop("severity")
        logs.log(message, severity, **record)


def _rebuild(error: dict[str, Any]) -> Exception:
    """The worker's exception in this process: SparkflowErrors keep their class (retries depend on it)."""
    import importlib

    origin = Origin(*error["origin"]) if error.get("origin") else None
    if error.get("sparkflow"):
        try:
            cls = getattr(importlib.import_module(error["module"]), error["type"])
            if isinstance(cls, type) and issubclass(cls, SparkflowError):
                rebuilt: Exception = cls(error["message"], origin)
                return rebuilt
        except Exception:  # an unusual constructor: keep the message, lose the class
            pass
        return SparkflowError(error["message"], origin)
    return RuntimeError(f"{error['type']}: {error['message']}")


def serve() -> NoReturn:
    """A worker's main loop: prepare the process for the engine ``SPARKFLOW_ENGINE`` names, then answer one JSON
    request per line until stdin closes.

    The replies go to the original stdout; the user's prints and the engine's noise go to stderr, so they cannot
    corrupt the protocol.
    """
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    engine = os.environ[ENGINE_VARIABLE]
    engines.prepare(engine)
    for line in sys.stdin:
        reply = _answer(json.loads(line), engine)
        protocol.write(json.dumps(reply, default=str) + "\n")
        protocol.flush()
    from sparkflow.runtime.shutdown import exit_now

    protocol.close()
    exit_now(0)  # stdin closed: every reply is out; no interpreter finalization (see sparkflow/runtime/shutdown.py)


_CONFIGS: dict[str, Any] = {}


def _answer(request: dict[str, Any], engine: str) -> dict[str, Any]:
    import io

    from sparkflow.plan import Plan, project_root
    from sparkflow.runtime import logs
    from sparkflow.runtime.execute import RuntimeConfig, handle_event

    captured = io.StringIO()
    previous = logs.configure(captured)
    try:
        from sparkflow.loading import load_pipeline

        # Loaded for every event: a pipeline file edited since an earlier run of this warm worker is loaded again.
        pipeline = load_pipeline(request["pipeline"])
        key = json.dumps([request["pipeline"], request["config"]], sort_keys=True)
        if key not in _CONFIGS or _CONFIGS[key].pipeline is not pipeline:
            options = request["config"]
            plan = Plan.from_json(options["plan"])
            # The worker's messages name the user's files as the process that compiled the Plan does.
            root = project_root(pipeline.origin.file, plan.source_file)
            _CONFIGS[key] = RuntimeConfig(
                pipeline=pipeline,
                plan=plan.rebased(root),
                storage_root=options["storage_root"],
                kv=options.get("kv"),
                readable=tuple(options.get("readable", ())),
                workdir=options.get("workdir"),
                engine=engine,
                writable=tuple(options.get("writable", ())),
            )
        return {"result": handle_event(request["event"], _CONFIGS[key]), "logs": captured.getvalue()}
    except Exception as error:
        described = {
            "type": type(error).__name__,
            "module": type(error).__module__,
            "sparkflow": isinstance(error, SparkflowError),
            "message": error.message if isinstance(error, SparkflowError) else str(error),
            "origin": [error.origin.file, error.origin.line]
            if isinstance(error, SparkflowError) and error.origin
            else None,
        }
        return {"error": described, "logs": captured.getvalue()}
    finally:
        logs.configure(previous)
