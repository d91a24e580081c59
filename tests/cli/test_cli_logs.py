"""`sparkflow logs --target local`: a local run's lines from its folder's _logs.jsonl, filtered by run and stage,
one line per record or as JSON; --follow reads until the run's last line."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.errors import OptionError
from sparkflow.targets.runlogs import LogQuery, local_records

RESUMABLE = Path(__file__).resolve().parents[1] / "resources" / "resumable" / "pipeline.py"


def test_logs_of_a_local_run_one_line_per_record_by_stage_and_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text("status,fee\npaid,-0.5\n", encoding="utf-8")
    storage, runner = str(tmp_path / "storage"), CliRunner()
    run = ["run", str(RESUMABLE), "--storage", storage, "--run-id", "r1", "--input", f"prices={prices}", "--json"]
    assert runner.invoke(main, [*run, "--engine", "duckdb"]).exit_code == 1

    shown = runner.invoke(main, ["logs", str(RESUMABLE), "r1", "--storage", storage, "--stage", "report"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert [line.split(None, 3)[1:3] for line in lines] == [["report", "INFO"], ["report", "ERROR"]]
    assert "stage start" in lines[0]
    assert "stage failed  error=StageError  ValueError: prices holds 1 negative fee(s): fix the prices file" in lines[1]
    assert lines[0][:4].isdigit() and lines[0][19:24].startswith(".") and lines[0][23] == "Z"  # UTC, milliseconds

    # in a terminal 80 wide, each record wrapped to it: the same words, one record's continuation indented
    monkeypatch.setattr("sparkflow.terminal.is_terminal", lambda stream=None: True)
    arguments = ["logs", str(RESUMABLE), "r1", "--storage", storage, "--stage", "report"]
    narrow = CliRunner(env={"COLUMNS": "80"}).invoke(main, arguments).stdout
    assert [line for line in narrow.splitlines() if len(line) > 80] == []
    assert narrow.split() == shown.stdout.split()
    monkeypatch.undo()

    fused = runner.invoke(main, ["logs", str(RESUMABLE), "r1", "--storage", storage, "--stage", "paid"])
    phases = {line.split()[2] for line in fused.stdout.splitlines()}  # paid runs inside spend's tasks
    assert {line.split()[1] for line in fused.stdout.splitlines()} == {"spend"} and {"split", "map"} <= phases

    raw = runner.invoke(main, ["logs", str(RESUMABLE), "r1", "--storage", storage, "--json"])
    records = [json.loads(line) for line in raw.stdout.splitlines()]
    assert records[0]["message"] == "run start" and records[-1]["message"] == "run end"
    assert records[-1]["status"] == "failed" and {record["run_id"] for record in records} == {"r1"}


def write(path: Path, *records: dict[str, object]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"time": 1.0, "severity": "INFO", "run_id": "r1", **record}) + "\n")


def test_follow_reads_until_the_run_ends_and_gives_up_after_its_timeout(tmp_path: Path) -> None:
    folder = tmp_path / "p" / "r1"
    folder.mkdir(parents=True)
    write(folder / "_logs.jsonl", {"message": "run start"}, {"message": "stage start", "node": "a"})
    write(folder / "_logs.jsonl", {"message": "stage start", "node": "b", "run_id": "r0"})  # another run's

    def finish() -> None:
        time.sleep(0.3)
        write(folder / "_logs.jsonl", {"message": "stage end", "node": "a"}, {"message": "run end"})

    writer = threading.Thread(target=finish)
    writer.start()
    query = LogQuery("r1", follow=True, poll_s=0.05, timeout_s=10)
    followed = [record["message"] for record in local_records(str(tmp_path), "p", query)]
    writer.join()
    assert followed == ["run start", "stage start", "stage end", "run end"]

    write(folder / "_logs.jsonl", {"message": "run start"})  # a resumed run that never ends
    with pytest.raises(OptionError, match=r"run r1 has not ended after 0.2 s of --follow \(no 'run end' line yet\)"):
        list(local_records(str(tmp_path), "p", LogQuery("r1", follow=True, poll_s=0.05, timeout_s=0.2)))
