"""The Cloud Run image's server: `python -m sparkflow.runtime serve` runs gunicorn, with settings from the Plan's
stage limits, and answers a real stage event (and a bad one) over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.server import TIMEOUT_MARGIN_S, settings
from tests.examples import example
from tests.runtime.configs import write_plan

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def post(port: int, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_timeout_is_past_the_longest_task_the_service_runs(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(example("wordcount")))
    plan = plan_pipeline(pipeline, "gcp")
    longest = max([task.timeout_s for task in plan.tasks if task.placement == "function"] + [plan.publish.timeout_s])
    chosen = settings(8080, write_plan(pipeline, tmp_path, "gcp"))
    assert chosen["timeout"] == longest + TIMEOUT_MARGIN_S
    assert (chosen["bind"], chosen["workers"], chosen["threads"]) == ("0.0.0.0:8080", 1, 1)


def test_gunicorn_answers_a_stage_event(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(example("wordcount")))
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "SPARKFLOW_PIPELINE": str(example("wordcount")),
        "SPARKFLOW_PLAN": write_plan(pipeline, tmp_path / "plan", "gcp"),
        "SPARKFLOW_STORAGE_ROOT": str(tmp_path / "root"),
        "SPARKFLOW_ENGINE": "duckdb",  # no JVM to start: the server is what is tested
        "SPARKFLOW_WORKDIR": str(tmp_path / "work"),
    }
    (tmp_path / "root").mkdir()
    (tmp_path / "work").mkdir()
    server = subprocess.Popen(
        [sys.executable, "-m", "sparkflow.runtime", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        run = {"id": "g1", "storage": f"{tmp_path / 'root'}/"}
        event = {"version": 1, "pipeline": "wordcount", "node": "words", "run": run}
        status, headers, result = post(port, json.dumps(event).encode())
        assert status == 200, result
        assert headers["Server"].startswith("gunicorn")
        assert result["status"] == "committed" and result["output"]["rows"] > 0
        status, _, refused = post(port, b"not json")
        assert status == 400 and refused["error"] == "EventError"
    finally:
        server.terminate()
        server.wait(timeout=30)
