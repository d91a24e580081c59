"""sparkflow verify: each partitioned stage run split on the inputs the whole run gave it; a stage whose output
changes is named with its line, its declaration, rows that differ and what to declare instead."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.loading import load_pipeline
from sparkflow.verify import Report, verify
from tests.examples import example, long_but

MISDECLARED = Path(__file__).resolve().parents[1] / "resources" / "misdeclared" / "pipeline.py"
pytestmark = pytest.mark.spark


def line_of(text: str) -> str:
    lines = MISDECLARED.read_text().splitlines()
    number = next(index for index, content in enumerate(lines, 1) if text in content)
    return f"{MISDECLARED}:{number - 1}"  # the decorator's line, above the def


def test_each_wrongly_declared_stage_is_named_and_the_right_ones_pass(spark: Any) -> None:
    report = verify(load_pipeline(str(MISDECLARED)))
    found = {item.node: item for item in report.mismatches}
    assert sorted(found) == ["pages", "ranked", "slowest", "views"]
    assert sorted(report.checked) == ["fast", "pages", "per_page", "ranked", "slowest", "views"]
    assert not report.ok

    slowest = found["slowest"].message()
    assert slowest.startswith(
        f"stage 'slowest' ({line_of('def slowest')}) is declared partition=\"rows\", but its output changes when "
        "its input is split: run whole it gives 3 rows; split into 4 chunks, 12 rows."
    )
    assert "rows only when split: {user: " in slowest
    assert 'Remove partition="rows" so it runs whole (the default), or declare partition_by="<column>"' in slowest
    assert re.search(r"run whole it gives 6 rows; split into \d chunks, \d+ rows", found["pages"].message())
    ranked = found["ranked"].message()
    assert "rows only when split: " in ranked and "rows only when whole: " in ranked  # same count, other ranks
    views = found["views"].message()
    assert f"stage 'views' ({line_of('def views')}) is declared partition_by='user'" in views
    assert "split into 4 chunks and 4 buckets" in views
    assert "Declare partition_by= the columns it groups, joins or windows by" in views


def test_the_command_fails_naming_every_stage(spark: Any) -> None:
    result = CliRunner().invoke(main, ["verify", str(MISDECLARED), "--engine", "duckdb", "--chunks", "3"])
    assert result.exit_code == 1, result.output
    named = re.findall(r"^error: stage '(\w+)' \(", result.output, re.MULTILINE)
    assert sorted(named) == ["pages", "ranked", "slowest", "views"]
    assert "misdeclared: 4 stage(s) wrongly declared (6 partitioned stage(s) checked, 6 compared with Spark)" in (
        result.output
    )


@pytest.mark.parametrize("path", long_but("wordcount"))
def test_every_example_is_declared_right(spark: Any, path: Path) -> None:
    report: Report = verify(load_pipeline(str(path)))
    assert report.ok, "\n".join(item.message() for item in report.mismatches)
    assert report.checked, "every example has partitioned stages"


# --- every engine held to Spark's answer on the user's sample -------------------------------------------------

SPLIT_WITH_LIMIT = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F

    import sparkflow as sf

    paths = sf.source("paths", "paths.csv", schema="path STRING")


    @sf.stage(engine="duckdb")
    def heads(paths: DataFrame) -> DataFrame:
        return paths.select(F.split("path", "/", 2).alias("parts"))


    @sf.pipeline
    def split_paths():
        return heads(paths)
    """
)


def test_a_stage_whose_engine_differs_from_spark_is_named_with_its_rows(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(SPLIT_WITH_LIMIT, encoding="utf-8")
    (tmp_path / "paths.csv").write_text("path\na/b/c\nd/e\n", encoding="utf-8")
    report = verify(load_pipeline(str(tmp_path / "pipeline.py")))
    assert not report.ok and report.compared == ["heads"] and not report.mismatches
    [found] = report.engine_mismatches
    assert found.message() == (
        f"stage 'heads' ({tmp_path / 'pipeline.py'}:9) runs on duckdb, but on this sample it does not give what "
        "Spark gives for the same code and inputs: 2 rows on duckdb, 2 rows on Spark.\n"
        "  rows only on duckdb: {parts: ('a', 'b', 'c')}\n"
        "  rows only on Spark: {parts: ('a', 'b/c')}\n"
        '  Run this stage on Spark: @sf.stage(engine="spark") (docs/engines.md lists where duckdb differs from Spark).'
    )
    result = CliRunner().invoke(main, ["verify", str(tmp_path / "pipeline.py")])
    assert result.exit_code == 1
    assert "split_paths: 1 stage(s) differ from Spark (0 partitioned stage(s) checked, 1 compared with Spark" in (
        result.output
    )
    unchecked = CliRunner().invoke(main, ["verify", str(tmp_path / "pipeline.py"), "--no-compare-engines"])
    assert unchecked.exit_code == 0, unchecked.output


@pytest.mark.parametrize("engine", ["sail", "duckdb"])
def test_an_example_on_another_engine_gives_sparks_answer(spark: Any, engine: str) -> None:
    report = verify(load_pipeline(str(example("wordcount"))), engine=engine)
    assert report.ok, "\n".join(report.messages())
    assert sorted(report.compared) == ["counts", "top", "words"]


# Every type a stage reads or writes: a Parquet source with Spark's legacy INT96 timestamps, dates, decimals, a
# struct, an array and a map; JSON lines events whose key stage windows over a timestamp per user; timestamps with
# and without a time zone.
TYPED = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, Window, functions as F

    import sparkflow as sf

    events = sf.source("events", "events.jsonl", format="json")
    accounts = sf.source("accounts", "accounts.parquet", format="parquet")


    @sf.stage(partition="rows")
    def parsed(events: DataFrame) -> DataFrame:
        return events.select(
            "user",
            F.to_timestamp("ts").alias("ts"),
            F.to_timestamp_ntz(F.col("ts")).alias("local_ts"),
            F.to_date(F.to_timestamp("ts")).alias("day"),
            F.col("amount").cast("decimal(12, 2)").alias("amount"),
        )


    @sf.stage(partition_by="user")
    def sessions(parsed: DataFrame, accounts: DataFrame) -> DataFrame:
        previous = F.lag("ts").over(Window.partitionBy("user").orderBy("ts", "amount"))
        return parsed.join(accounts, "user").select(
            "user",
            "ts",
            "local_ts",
            "day",
            "amount",
            "opened",
            (F.col("ts").cast("long") - previous.cast("long")).alias("gap_s"),
            F.struct("day", "amount").alias("detail"),
            F.array("amount", F.lit(1).cast("decimal(12, 2)")).alias("amounts"),
            F.create_map(F.lit("user"), "user").alias("labels"),
        )


    @sf.pipeline
    def typed():
        return sessions(parsed(events), accounts)
    """
)


def typed_pipeline(folder: Path) -> Path:
    import datetime
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    users = [f"u{index}" for index in range(5)]
    lines = [
        json.dumps(
            {
                "user": users[index % 5],
                "ts": f"2026-03-0{1 + index % 3}T{index % 24:02d}:1{index % 10}:00",
                "amount": index * 1.25,
            }
        )
        for index in range(120)
    ]
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    opened = [datetime.datetime(2025, 1, 1 + index, 8, 30) for index in range(5)]
    table = pa.table({"user": users, "opened": pa.array(opened, pa.timestamp("us"))})
    pq.write_table(table, folder / "accounts.parquet", use_deprecated_int96_timestamps=True)  # as older Spark writes
    (folder / "pipeline.py").write_text(TYPED, encoding="utf-8")
    return folder / "pipeline.py"


@pytest.mark.parametrize("engine", ["spark", "sail"])
def test_verify_keeps_every_type_a_stage_reads_and_writes(spark: Any, tmp_path: Path, engine: str) -> None:
    report = verify(load_pipeline(str(typed_pipeline(tmp_path))), engine=engine)
    assert report.ok, "\n".join(report.messages())
    assert sorted(report.checked) == ["parsed", "sessions"]


def test_verify_prints_the_report_and_no_engine_log_lines(tmp_path: Path) -> None:
    """As a person runs it: a new process (its own JVM), a timestamp window over JSON lines, a Sail stage compared with
    Spark; the terminal shows the verdict only, the JVM's lines go to .sparkflow/_engine.log."""
    import subprocess
    import sys

    typed_pipeline(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "sparkflow.cli", "verify", "pipeline.py", "--engine", "sail"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "typed: ok (2 partitioned stage(s) checked, 2 compared with Spark)\n"
    assert done.stderr == ""
    assert "Setting default log level" in (tmp_path / ".sparkflow" / "_engine.log").read_text()
