"""Resuming a failed cloud run and reading its logs, end to end through the command line: a pipeline deployed
through moto's CloudFormation, run by moto's Step Functions, every Lambda invocation answered by the real runtime
(in a DuckDB worker process, as ``sparkflow run`` runs duckdb stages); the Lambda double writes the runtime's log
lines to the function's log group, as Lambda does. Plus the refusals of ``--resume``, against recorded answers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.results import locate, read_table
from sparkflow.runtime import logs
from sparkflow.runtime.deployed import deployed_config
from sparkflow.runtime.workers import WorkerPool
from sparkflow.targets.aws.resume import execution_name, resume
from sparkflow.targets.aws.stack import stage_log_group
from sparkflow.targets.aws.watch import WatchError
from tests.aws_moto import LambdaDouble, MotoAws, StageFailure
from tests.ship.conftest import Compiled
from tests.ship.test_deploy import BUCKET, deployed

RESUMABLE = Path(__file__).resolve().parents[1] / "resources" / "resumable" / "pipeline.py"
GOOD_PRICES = "status,fee\npaid,0.5\nrefunded,1.0\n"
BAD_PRICES = "status,fee\npaid,-0.5\nrefunded,1.0\n"


class PerThread:
    """A log stream whose lines go to the calling thread's buffer: moto answers invocations in threads, and each
    invocation's lines go to its own log stream, as Lambda's do."""

    def __init__(self) -> None:
        self.local = threading.local()

    def write(self, text: str) -> int:
        self.local.__dict__.setdefault("buffer", []).append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def take(self) -> list[str]:
        text = "".join(self.local.__dict__.pop("buffer", []))
        return [line for line in text.splitlines() if line]


def lambda_with_logs(aws: MotoAws, double: LambdaDouble, stack: str, stream: PerThread) -> list[dict[str, Any]]:
    """Answer every invocation with the real runtime and put its log lines (written to ``stream``) into the stack's
    stages' log group; returns the list each answered task is recorded in (node, phase, status)."""
    pool = WorkerPool(deployed_config(), "duckdb")
    answered: list[dict[str, Any]] = []
    cloudwatch = aws.client("logs")

    def handler(payload: dict[str, Any]) -> Any:
        try:
            result = pool.handle_event(payload)
            answered.append({"node": payload.get("node"), "phase": payload.get("phase"), "status": result["status"]})
            return result
        except Exception as error:
            answered.append({"node": payload.get("node"), "phase": payload.get("phase"), "status": "failed"})
            raise StageFailure(type(error).__name__, str(error)) from error
        finally:
            name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
            cloudwatch.create_log_stream(logGroupName=stage_log_group(stack), logStreamName=name)
            lines = ["START RequestId: x Version: $LATEST", *stream.take(), "END RequestId: x"]
            events = [{"timestamp": int(time.time() * 1000), "message": line} for line in lines]
            cloudwatch.put_log_events(logGroupName=stage_log_group(stack), logStreamName=name, logEvents=events)

    double.handler = handler
    return answered


def rows(uri: str, node: str, run_id: str) -> list[dict[str, Any]]:
    found = read_table(locate(str(RESUMABLE), node, storage=uri, run_id=run_id), 1000).to_pylist()
    return sorted(found, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def test_a_failed_run_resumes_in_the_cloud_running_only_what_failed(
    moto_aws: MotoAws, lambda_double: LambdaDouble, monkeypatch: Any
) -> None:
    pipeline = load_pipeline(str(RESUMABLE))
    item = Compiled(RESUMABLE, pipeline, plan_pipeline(pipeline, "aws"), compile_pipeline(pipeline, "aws"))
    _, root, sources = deployed(moto_aws, lambda_double, monkeypatch, item)
    stack = root.rstrip("/").rsplit("/", 1)[-1]
    s3 = moto_aws.client("s3")
    prices_key = sources["prices"].removeprefix(f"s3://{BUCKET}/")
    s3.put_object(Bucket=BUCKET, Key=prices_key, Body=BAD_PRICES.encode())
    stream = PerThread()
    answered = lambda_with_logs(moto_aws, lambda_double, stack, stream)
    previous = logs.configure(stream)  # type: ignore[arg-type]  # a writable stream is all logs.log needs
    try:
        runner = CliRunner()
        common = ["--target", "aws", "--stack", stack, "--region", "us-east-1"]
        inputs = [f"--input={name}={location}" for name, location in sources.items()]
        first = runner.invoke(main, ["start", str(RESUMABLE), *common, *inputs, "--json"])
        assert first.exit_code == 1, first.output
        failed = json.loads(first.stdout)
        run_id = failed["run_id"]
        assert failed["status"] == "FAILED" and "negative fee" in failed["cause"]
        assert {item["node"] for item in answered if item["status"] == "committed"} == {"spend", "tidy", "statuses"}
        answered.clear()

        s3.put_object(Bucket=BUCKET, Key=prices_key, Body=GOOD_PRICES.encode())  # the user fixes the input
        again = runner.invoke(main, ["start", str(RESUMABLE), *common, "--resume", run_id, "--json"])
        assert again.exit_code == 0, again.output
        resumed = json.loads(again.stdout)
        assert resumed["status"] == "SUCCEEDED" and resumed["run_id"] == run_id
        assert resumed["execution"].endswith(f":{run_id}-resume-1")
        assert resumed["outputs"] == {"summary": f"{root}resumable/{run_id}/summary/"}
        # Real work only where the run failed: committed stages answer their task (a split stage: its split and its
        # commit, no chunk task) with already-committed.
        worked = {item["node"] for item in answered if item["status"] == "committed"}
        assert worked == {"report", "summary", None}  # None: the run's publish task
        assert sorted((item["node"], item["phase"]) for item in answered if item["status"] == "already-committed") == [
            ("spend", "commit"),
            ("spend", "split"),
            ("statuses", None),
            ("tidy", "commit"),
            ("tidy", "split"),
        ]
        skipped = {stage["name"]: stage["state"] for stage in resumed["stages"] if stage["state"] == "skipped"}
        assert skipped == {
            "spend-map": "skipped",
            "spend-partition": "skipped",
            "spend-reduce": "skipped",
            "tidy-map": "skipped",
        }

        plain = runner.invoke(main, ["start", str(RESUMABLE), *common, *inputs, "--json"])
        assert plain.exit_code == 0, plain.output
        other = json.loads(plain.stdout)["run_id"]
        for node in ("spend", "report", "summary"):
            assert rows(root, node, run_id) == rows(root, node, other), node
        check_estimates(runner, json.loads(plain.stdout), pipeline)

        done = runner.invoke(main, ["start", str(RESUMABLE), *common, "--resume", run_id])
        assert done.exit_code == 2
        assert f"error: --resume {run_id}: run {run_id} already succeeded (" in done.stderr
        assert "there is nothing to resume: start a new run without --resume" in done.stderr
        unknown = runner.invoke(main, ["start", str(RESUMABLE), *common, "--resume", "no-such-run"])
        assert unknown.exit_code == 2
        assert unknown.stderr == (
            f"error: --resume no-such-run: state machine {stack} has no run 'no-such-run'; give the run id `sparkflow "
            "start` printed (the name of the run's first execution)\n"
        )

        # Its logs: both executions' lines of the run, and only the run's; one stage's.
        shown = runner.invoke(main, ["logs", str(RESUMABLE), run_id, *common, "--stage", "report"])
        assert shown.exit_code == 0, shown.output
        messages = [line.split(None, 3)[3].split("  ")[0] for line in shown.stdout.splitlines()]
        assert messages == ["stage start", "stage failed", "stage start", "stage end"], shown.stdout
        assert "ValueError: prices holds 1 negative fee(s): fix the prices file" in shown.stdout.splitlines()[1]
        assert all(line.split()[1] == "report" for line in shown.stdout.splitlines())
        everything = runner.invoke(main, ["logs", str(RESUMABLE), run_id, *common, "--json", "--follow"])
        assert everything.exit_code == 0, everything.output
        records = [json.loads(line) for line in everything.stdout.splitlines()]
        assert {record["run_id"] for record in records} == {run_id}
        assert {record["node"] for record in records if record["message"] == "stage start"} == {
            "spend",
            "tidy",
            "statuses",
            "report",
            "summary",
        }
        fused = runner.invoke(main, ["logs", str(RESUMABLE), run_id, *common, "--stage", "paid"])
        assert fused.exit_code == 0 and fused.stdout and all(" spend " in line for line in fused.stdout.splitlines())
    finally:
        logs.configure(previous)


def check_estimates(runner: CliRunner, started: dict[str, Any], pipeline: Any) -> None:
    """`start` and `status --pipeline` show each stage's measured seconds (from its first state's entry to its
    last state's exit in the history) beside the estimate `sparkflow plan --target aws` makes."""
    from sparkflow.estimate import estimate_plan

    execution = started["execution"]
    shown = runner.invoke(
        main, ["status", execution, "--target", "aws", "--region", "us-east-1", "--pipeline", str(RESUMABLE), "--json"]
    )
    assert shown.exit_code == 0, shown.output
    final = json.loads(shown.stdout)
    assert final["timings"] == started["timings"]
    planned = estimate_plan(plan_pipeline(pipeline, "aws"), pipeline, "aws", {})
    assert {name: round(timing["estimated_seconds"], 1) for name, timing in final["timings"].items()} == {
        item.name: round(item.work.seconds, 1) for item in planned.stages if item.work is not None
    }
    assert round(final["estimated_seconds"], 1) == round(planned.seconds, 1)
    states = {state["name"]: state for state in final["stages"]}
    for name in ("spend-split", "spend-map", "spend-commit", "report"):
        assert states[name]["seconds"] == round(states[name]["ended_at"] - states[name]["started_at"], 3) >= 0
    spend = [states[name] for name in ("spend-split", "spend-map", "spend-partition", "spend-reduce", "spend-commit")]
    span = max(state["ended_at"] for state in spend) - min(state["started_at"] for state in spend)
    assert final["timings"]["spend"]["seconds"] == round(span, 3)
    assert all(timing["seconds"] is not None for timing in final["timings"].values())
    assert final["seconds"] is not None and final["seconds"] >= final["timings"]["spend"]["seconds"]
    table = runner.invoke(
        main, ["status", execution, "--target", "aws", "--region", "us-east-1", "--pipeline", str(RESUMABLE)]
    )
    assert table.exit_code == 0 and "┃ stage    ┃ measured ┃ estimated ┃" in table.stdout, table.stdout
    estimate = f"{final['timings']['spend']['estimated_seconds']:,.1f}"
    assert any(
        line.startswith("│ spend ") and line.rstrip().endswith(f"{estimate} │") for line in table.stdout.splitlines()
    )


class RecordedRuns:
    """Step Functions' answers about a state machine's runs, as recorded (name, status, input)."""

    def __init__(self, executions: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.executions = executions
        self.started: list[dict[str, Any]] = []

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_executions"
        listed = [
            {"name": name, "executionArn": f"arn:aws:states:r:1:execution:m:{name}"} for name, _, _ in self.executions
        ]
        return type("Pages", (), {"paginate": lambda _self, **_: iter([{"executions": listed}])})()

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        index = [name for name, _, _ in self.executions].index(executionArn.rsplit(":", 1)[-1])
        _, status, given = self.executions[index]
        return {"status": status, "startDate": index, "input": json.dumps(given)}

    def start_execution(self, **arguments: Any) -> dict[str, Any]:
        self.started.append(arguments)
        return {"executionArn": f"arn:aws:states:r:1:execution:m:{arguments['name']}"}


MACHINE = "arn:aws:states:r:1:stateMachine:m"


def test_resume_starts_the_next_execution_of_the_run_with_its_first_input() -> None:
    first_input = {"sources": {"orders": "s3://b/o.csv"}}
    recorded = RecordedRuns(
        [
            ("r1", "FAILED", first_input),
            ("other", "FAILED", {}),
            ("r1-resume-1", "TIMED_OUT", {"resume": {"run_id": "r1", "params": first_input}}),
        ]
    )
    arn = resume(MACHINE, "r1", clients=lambda service: recorded)
    assert arn.endswith(":r1-resume-2")
    [started] = recorded.started
    assert started["name"] == "r1-resume-2" and started["stateMachineArn"] == MACHINE
    assert json.loads(started["input"]) == {"resume": {"run_id": "r1", "params": first_input}}
    long_id = "r" * 80
    assert execution_name(long_id, 3) == "r" * 71 + "-resume-3" and len(execution_name(long_id, 3)) == 80


@pytest.mark.parametrize(
    ("executions", "message"),
    [
        ([("r2", "FAILED", {})], "--resume r1: state machine m has no run 'r1'; give the run id `sparkflow start`"),
        (
            [("r1", "FAILED", {}), ("r1-resume-1", "RUNNING", {"resume": {"run_id": "r1", "params": {}}})],
            "--resume r1: run r1 is still running (arn:aws:states:r:1:execution:m:r1-resume-1); wait for it to end "
            "(`sparkflow status arn:aws:states:r:1:execution:m:r1-resume-1`) or stop it, then resume it",
        ),
        ([("r1", "SUCCEEDED", {})], "--resume r1: run r1 already succeeded (arn:aws:states:r:1:execution:m:r1)"),
    ],
)
def test_resume_refuses_a_run_that_does_not_exist_runs_or_succeeded(
    executions: list[tuple[str, str, dict[str, Any]]], message: str
) -> None:
    recorded = RecordedRuns(executions)
    with pytest.raises(WatchError) as raised:
        resume(MACHINE, "r1", clients=lambda service: recorded)
    assert str(raised.value).startswith(message) and recorded.started == []


class GrowingLogGroup:
    """CloudWatch Logs' answers for a log group whose lines arrive while a run runs (FilterLogEvents, recorded)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.asked: list[dict[str, Any]] = []

    def add(self, timestamp: int, message: str) -> None:
        self.events.append({"eventId": str(len(self.events)), "timestamp": timestamp, "message": message})

    def get_paginator(self, operation: str) -> Any:
        assert operation == "filter_log_events"

        def paginate(_self: Any, **arguments: Any) -> Any:
            self.asked.append(arguments)
            term = arguments["filterPattern"].strip('"')
            since = arguments.get("startTime", 0)
            return iter([{"events": [e for e in self.events if term in e["message"] and e["timestamp"] >= since]}])

        return type("Pages", (), {"paginate": paginate})()


def test_aws_logs_follow_a_run_until_it_ends_each_line_once() -> None:
    from sparkflow.targets.aws.logs import records
    from sparkflow.targets.runlogs import LogQuery

    group = GrowingLogGroup()

    def line(message: str, run_id: str = "r1") -> str:
        return json.dumps({"message": message, "run_id": run_id, "node": "a", "severity": "INFO", "time": 1.0})

    group.add(1000, line("stage start"))
    group.add(1000, "REPORT RequestId: x Duration: 1 ms r1")  # Lambda's own line: not a record
    group.add(1000, line("stage start", "r2"))
    readings = iter([False, False, True])

    def ended() -> bool:
        done = next(readings)
        if not done:  # while it runs, a line arrives at the same millisecond as the last one read, then a later one
            group.add(1000 if len(group.events) == 3 else 2000, line(f"line {len(group.events)}"))
        return done

    query = LogQuery("r1", follow=True, poll_s=0.01)
    found = [
        record["message"] for record in records("/aws/lambda/s-stages", query, clients=lambda s: group, run_ended=ended)
    ]
    assert found == ["stage start", "line 3", "line 4"]
    assert [asked.get("startTime") for asked in group.asked] == [
        None,
        1000,
        2000,
    ]  # the last reading, after the end, reads again from the newest line
    assert all(
        asked["filterPattern"] == '"r1"' and asked["logGroupName"] == "/aws/lambda/s-stages" for asked in group.asked
    )
