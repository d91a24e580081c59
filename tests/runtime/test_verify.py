"""sparkflow verify: each partitioned stage run split on the inputs the whole run gave it; a stage whose output
changes is named with its line, its declaration, rows that differ and what to declare instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.loading import load_pipeline
from sparkflow.verify import Report, verify
from tests.examples import long_but

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
    assert "misdeclared: 4 stage(s) wrongly declared (6 partitioned stage(s) checked)" in result.output


@pytest.mark.parametrize("path", long_but("wordcount"))
def test_every_example_is_declared_right(spark: Any, path: Path) -> None:
    report: Report = verify(load_pipeline(str(path)))
    assert report.ok, "\n".join(item.message() for item in report.mismatches)
    assert report.checked, "every example has partitioned stages"
