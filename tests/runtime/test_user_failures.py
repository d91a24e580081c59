"""A stage's own code failing reads like the user's own traceback — its type, message and the frames of their file,
none of sparkflow's, py4j's or the JVM's — in the run's table, ``--json`` and its log lines, on both engines, and in
the state machine's failure cause; it is not retried (it would fail the same way), unless the stage says which of
its exceptions another attempt may cure (``retry_on=``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from sparkflow.targets.local import LOCAL
from tests.aws_moto import LambdaDouble, MotoAws

FAILING = Path(__file__).resolve().parents[1] / "resources" / "failing" / "pipeline.py"
pytestmark = pytest.mark.spark


def line(text: str) -> int:
    return next(number for number, content in enumerate(FAILING.read_text().splitlines(), 1) if text in content)


def frame(function: str, text: str) -> str:
    """How a user frame reads: Python's own traceback line for it, and its source line."""
    return f'  File "{FAILING}", line {line(text)}, in {function}\n    {text}'


INTERNALS = ("/sparkflow/", "py4j", "site-packages", "org.apache.spark", "java.lang")


def traceback(file: str | Path = FAILING) -> str:
    """The failure of pipeline boom as the user reads it, its frames naming ``file``."""
    return "\n".join(
        [
            "stage 'checked' failed: ValueError: boom: the orders are not checked",
            "Traceback (most recent call last, your code only):",
            frame("checked", "check(orders)").replace(str(FAILING), str(file)),
            frame("check", 'raise ValueError("boom: the orders are not checked")').replace(str(FAILING), str(file)),
            "ValueError: boom: the orders are not checked",
        ]
    )


@pytest.mark.parametrize("engine", ["spark", "duckdb"])
def test_an_exception_of_the_stage_shows_its_frames_everywhere_and_is_not_retried(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(FAILING.parents[2])  # the checkout's tests/: paths under it are shown from there
    arguments = ["run", f"{FAILING}:boom", "--storage", str(tmp_path), "--engine", engine]
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, arguments)
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if len(line) > 80] == []
    table, _, below = result.output.partition("└")
    assert "│ checked │ failed │" in table
    # below the table: the stage's error's last line and where, then the whole of it, paths from the working folder
    assert "checked: ValueError: boom: the orders are not checked\n  (resources/failing/pipeline.py:" in below
    assert traceback("resources/failing/pipeline.py") in below
    expected = traceback()
    summary = json.loads(
        CliRunner()
        .invoke(main, ["run", f"{FAILING}:boom", "--storage", str(tmp_path), "--engine", engine, "--json"])
        .stdout
    )
    node = summary["nodes"]["checked"]
    assert node["error"] == expected and node["error_type"] == "StageError"
    assert node["where"] == f"{FAILING}:{line('raise ValueError')}"
    assert node["attempts"] == 1  # final: retrying the same code on the same input fails the same way
    assert not any(internal in node["error"] for internal in INTERNALS)
    [log] = [
        json.loads(text)
        for folder in (tmp_path / "boom").iterdir()
        for text in (folder / "_logs.jsonl").read_text().splitlines()
        if '"stage failed"' in text
    ][:1]
    assert log["kind"] == "ValueError" and log["frames"] == [
        f"{FAILING}:{line('check(orders)')} in checked",
        f"{FAILING}:{line('raise ValueError')} in check",
    ]


@pytest.mark.parametrize(
    ("engine", "kind", "message"),
    [
        (
            "spark",
            "AnalysisException",
            r"\[UNRESOLVED_COLUMN.WITH_SUGGESTION\] .*`amout` cannot be resolved\. "
            r"Did you mean one of the following\? \[`amount`",
        ),
        (
            "duckdb",
            "BinderException",
            r'Binder Error: Referenced column "amout" not found in FROM clause! Candidate bindings: "amount"',
        ),
    ],
)
def test_a_misspelt_column_is_the_users_mistake_with_its_line(
    engine: str, kind: str, message: str, tmp_path: Path
) -> None:
    pipeline = load_pipeline(str(FAILING), "typo")
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path), engine=engine)
    node = summary.nodes["totals"]
    assert node.status == "failed" and node.attempts == 1 and node.error_type == "StageError"
    assert node.error is not None
    assert re.search(f"stage 'totals' failed: {kind}: {message}", node.error), node.error
    assert frame("totals", 'return orders.groupBy("customer_id").agg(F.sum("amout").alias("total"))') in node.error
    assert "EngineUnsupported" not in node.error and "run this stage on Spark" not in node.error
    assert node.where == f"{FAILING}:{line('F.sum(')}"


def test_an_exception_the_stage_declares_retryable_is_retried(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SPARKFLOW_TEST_FLAKY", str(tmp_path))
    pipeline = load_pipeline(str(FAILING), "retried")
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "root"))
    assert summary.status == "succeeded", summary.nodes["flaky"].error
    assert summary.nodes["flaky"].attempts == 2


@pytest.mark.moto
def test_the_state_machine_fails_with_the_users_traceback_and_no_retry(
    tmp_path: Path, moto_aws: MotoAws, lambda_double: LambdaDouble, monkeypatch: Any
) -> None:
    from tests.runtime.test_aws_runtime import BUCKET, deploy_with_runtime, upload_sources

    s3 = moto_aws.client("s3")
    if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    pipeline = load_pipeline(str(FAILING), "boom")
    sources = upload_sources(moto_aws, pipeline, f"failing-{tmp_path.name}")
    root = f"s3://{BUCKET}/runs-{tmp_path.name}/"
    env = {"SPARKFLOW_ALLOWED_INPUTS": ",".join(sources.values())}
    arn = deploy_with_runtime(moto_aws, lambda_double, monkeypatch, Path(f"{FAILING}:boom"), root, env)
    execution = moto_aws.run(arn, {"sources": sources}, timeout=300)
    assert execution["status"] == "FAILED" and execution["error"] == "StageFailed"
    cause = execution["cause"]
    assert cause.startswith("stage checked failed: ")
    cause_error = json.loads(cause[len("stage checked failed: ") :])
    assert cause_error["errorType"] == "StageError"
    assert frame("check", 'raise ValueError("boom: the orders are not checked")') in cause_error["errorMessage"]
    assert not any(internal in cause_error["errorMessage"] for internal in INTERNALS)
    assert [call.node for call in lambda_double.calls] == ["checked"]  # StageError is final: no retry


def test_a_long_error_is_printed_whole_below_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad record's error ends with what to declare: the table shows its last line, and all of it follows."""
    bad = tmp_path / "orders.csv"
    bad.write_text("order_id,customer_id,amount,order_date\n1,16,522.53,2026-07-20\n2,sixteen,10.0,2026-07-21\n")
    arguments = ["run", f"{FAILING}:malformed", "--storage", str(tmp_path / "runs"), "--input", f"orders={bad}"]
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # neither file is under the working folder: paths shown whole
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, [*arguments, "--engine", "duckdb"])
    assert result.exit_code == 1
    too_long = [line for line in result.output.splitlines() if len(line) > 80]
    assert [line for line in too_long if str(bad) not in line and str(FAILING) not in line] == []  # a path is whole
    printed = " ".join(result.output.split())  # wrapped to 80 columns at spaces: every word of it is there
    assert (
        f'declare on_bad_record="skip" (drop and count bad records) or "quarantine" (also keep them under the '
        f"run's _rejects/) on sf.source('orders') at {FAILING}:{line('orders = sf.source(')}"
    ) in printed
    assert f"line 3 of '{bad}': '2,sixteen,10.0,2026-07-21' does not parse" in printed
