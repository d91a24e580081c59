"""The runtime's entry points and what they promise: light imports, no compiler, structured logs and metrics,
the container entry's exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparkflow.loading import load_pipeline
from sparkflow.runtime import logs
from tests.examples import ROOT, example
from tests.runtime.configs import write_plan

FORBIDDEN = (
    "networkx",
    "jinja2",
    "sparkflow.compiler",
    "sparkflow.targets",
    "boto3",
    "pyspark",
    "jsonschema",
    "fsspec",
)


@pytest.mark.parametrize("module", ["sparkflow.runtime.aws", "sparkflow.runtime.http", "sparkflow.runtime.__main__"])
def test_importing_an_entry_point_stays_light(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"print([m for m in {FORBIDDEN!r} if m in sys.modules or any(k.startswith(m + '.') for k in sys.modules)])"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(found.stdout.strip().replace("'", '"')) == []


def test_runtime_never_imports_the_compiler_or_targets() -> None:
    """Statically: no module under sparkflow/runtime imports sparkflow.compiler or sparkflow.targets."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "sparkflow" / "runtime").rglob("*.py")
        if any(name in path.read_text() for name in ("sparkflow.compiler", "sparkflow.targets", "import networkx"))
    ]
    assert offenders == []


def test_log_lines_are_json_with_severity() -> None:
    stream = io.StringIO()
    logs.log("stage end", stream=stream, node="words", rows=3)
    record = json.loads(stream.getvalue())
    assert record["severity"] == "INFO" and record["message"] == "stage end" and record["rows"] == 3


def test_embedded_metric_format_only_on_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    logs.emit_metrics("wordcount", "words", 1.5, 10, 2048, stream=stream)
    assert stream.getvalue() == ""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "stage")
    logs.emit_metrics("wordcount", "words", 1.5, 10, 2048, stream=stream)
    document = json.loads(stream.getvalue())
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "sparkflow" and directive["Dimensions"] == [["pipeline", "node"]]
    names = {metric["Name"] for metric in directive["Metrics"]}
    assert names == {"StageSeconds", "StageRows", "StageBytes"}
    assert all(name in document for name in names) and document["node"] == "words"


def run_container(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "sparkflow.runtime", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
        timeout=300,
    )


def test_container_entry_refuses_a_bad_event(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    env = {
        "SPARKFLOW_PIPELINE": str(example("wordcount")),
        "SPARKFLOW_PLAN": write_plan(load_pipeline(str(example("wordcount"))), tmp_path / "plan"),
        "SPARKFLOW_STORAGE_ROOT": str(root),
    }
    answer = run_container(['{"version": 1}'], env)
    assert answer.returncode == 2 and "event field 'pipeline' is missing" in answer.stderr
    answer = run_container(["not json"], env)
    assert answer.returncode == 2 and "the event is not JSON" in answer.stderr
    answer = run_container(['{"version": 1}'], {"SPARKFLOW_PIPELINE": ""})
    assert answer.returncode == 1 and "SPARKFLOW_PIPELINE is not set" in answer.stderr
    assert not any(root.iterdir())


@pytest.mark.spark
@pytest.mark.long  # make test's time: tests/ship/test_launcher.py starts a stage the way the images do
def test_container_entry_runs_a_stage(tmp_path: Path) -> None:
    env = {
        "SPARKFLOW_PIPELINE": str(example("wordcount")),
        "SPARKFLOW_PLAN": write_plan(load_pipeline(str(example("wordcount"))), tmp_path / "plan"),
        "SPARKFLOW_STORAGE_ROOT": str(tmp_path),
    }
    event = {"version": 1, "pipeline": "wordcount", "node": "words", "run": {"id": "c1", "storage": f"{tmp_path}/"}}
    answer = run_container([json.dumps(event)], env)
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout.strip().splitlines()[-1])
    assert result["status"] == "committed" and result["output"]["rows"] > 0
    started = [json.loads(line) for line in answer.stderr.splitlines() if line.startswith('{"attempt"')]
    assert [line["message"] for line in started] == ["stage start", "stage end"]


# Each process entry leaves through exit_now: no interpreter finalization, where Arrow's pool threads can abort a
# process that already answered (sparkflow/runtime/shutdown.py). An atexit handler shows whether it ran.
FINALIZED = "import atexit, sys\natexit.register(lambda: print('finalized', file=sys.stderr))\n"
ENTRIES = {
    "container entry": (
        "import runpy\nsys.argv = ['sparkflow.runtime', 'not json']\n"
        "runpy.run_module('sparkflow.runtime', run_name='__main__')",
        2,
        "the event is not JSON",
    ),
    "cluster entry": (
        "import runpy\nsys.argv = ['cluster']\nrunpy.run_module('sparkflow.runtime.cluster', run_name='__main__')",
        2,
        "pass the event as the job's one argument",
    ),
    "sparkflow command, failing": (
        "from sparkflow.cli import entry\nsys.argv = ['sparkflow', 'compile', 'no_such_pipeline.py']\nentry()",
        2,
        "no_such_pipeline.py",
    ),
    "sparkflow command, succeeding": (
        "from sparkflow.cli import entry\nsys.argv = ['sparkflow', 'graph', 'examples/wordcount/pipeline.py']\nentry()",
        0,
        "",
    ),
    "DuckDB worker, stdin closed": (
        "import os\nos.environ['SPARKFLOW_ENGINE'] = 'duckdb'\nfrom sparkflow.runtime.workers import serve\nserve()",
        0,
        "",
    ),
}


@pytest.mark.parametrize("name", list(ENTRIES))
def test_entry_points_leave_without_interpreter_finalization(name: str) -> None:
    code, status, message = ENTRIES[name]
    done = subprocess.run(
        [sys.executable, "-c", FINALIZED + code], capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL
    )
    assert done.returncode == status, done.stderr
    assert message in done.stderr and "finalized" not in done.stderr


def test_exit_now_flushes_what_was_written_and_reads_the_code_as_sys_exit_does() -> None:
    code = "import sys\nfrom sparkflow.runtime.shutdown import exit_now\nprint('x' * 100_000, end='')\nexit_now({})"
    for argument, status in (("0", 0), ("None", 0), ("3", 3), ("'no input'", 1)):
        done = subprocess.run([sys.executable, "-c", code.format(argument)], capture_output=True, text=True, cwd=ROOT)
        assert (done.returncode, len(done.stdout)) == (status, 100_000)
        assert ("no input" in done.stderr) == (argument == "'no input'")
