"""Reading results: ``sparkflow show`` and ``sf.read_output`` find a run's outputs and a pipeline's sinks without the
user knowing where sparkflow put them (the newest run that published, a run id, or a run folder)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import sparkflow as sf
from sparkflow.cli import main
from sparkflow.results import ResultError, locate
from tests.examples import example

pytestmark = pytest.mark.spark
REVENUE = str(example("revenue"))


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A storage root where revenue ran twice (first on duckdb, then on spark) and clickstream once (duckdb)."""
    root = str(tmp_path_factory.mktemp("storage"))
    runner = CliRunner()
    for run_id, engine in (("first", "duckdb"), ("second", "spark")):
        result = runner.invoke(main, ["run", REVENUE, "--storage", root, "--run-id", run_id, "--engine", engine])
        assert result.exit_code == 0, result.output
    clickstream = ["run", str(example("clickstream")), "--storage", root, "--run-id", "c1", "--engine", "duckdb"]
    assert runner.invoke(main, clickstream).exit_code == 0
    return root


def show(*arguments: str) -> Any:
    return CliRunner().invoke(main, ["show", *arguments])


def test_show_prints_the_newest_runs_output_in_80_columns(storage: str) -> None:
    arguments = ["show", REVENUE, "revenue_by_country", "--storage", storage]
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if len(line) > 80 and storage not in line] == []
    lines = result.output.splitlines()
    assert "country" in lines[1] and "revenue" in lines[1] and "orders" in lines[1]
    location = f"{storage}/revenue/second/revenue_by_country"
    last = re.sub(r"\n  +", " ", result.output).splitlines()[-1]  # the location goes to a line of its own if long
    assert last == f"6 of 6 row(s) of output revenue_by_country of run second: {location}"


def test_show_as_json_and_csv_gives_the_rows_read_output_gives(storage: str) -> None:
    table = sf.read_output(REVENUE, "enrich", storage=storage, run_id="first")
    expected = sorted(table.to_pylist(), key=repr)
    shown = show(REVENUE, "enrich", "--storage", storage, "--run-id", "first", "--json", "--limit", "1000")
    found = [json.loads(line) for line in shown.output.splitlines()]
    assert sorted(found, key=repr) == sorted(
        ({**row, "order_date": row["order_date"].isoformat()} for row in expected), key=repr
    )
    as_csv = show(REVENUE, "enrich", "--storage", storage, "--csv", "--limit", "5")
    rows = list(csv.reader(io.StringIO(as_csv.output)))
    assert rows[0] == table.column_names and len(rows) == 6
    frame = sf.read_output(REVENUE, "enrich", storage=storage, pandas=True)
    assert len(frame) == table.num_rows and list(frame.columns) == table.column_names


def test_show_reads_a_run_folder_and_sinks(storage: str) -> None:
    folder = f"{storage}/revenue/first"
    assert show(folder, "revenue_by_country").exit_code == 0
    history = sf.read_output(REVENUE, "revenue_history", storage=storage)  # Delta: both runs appended
    runs = sf.read_output(REVENUE, "revenue_by_country", storage=storage)
    assert history.num_rows == 2 * runs.num_rows
    orders = sf.read_output(REVENUE, "enriched_orders", storage=storage)  # Parquet, country=XX/ folders
    assert sorted(orders.column_names) == sorted(sf.read_output(REVENUE, "enrich", storage=storage).column_names)
    shown = show(REVENUE, "revenue_history", "--storage", storage, "--limit", "2")
    last = re.sub(r"\n  +", " ", shown.output).splitlines()[-1]  # the location wrapped below it when long
    assert shown.exit_code == 0 and last.startswith("2 row(s) of sink revenue_history")


def test_a_value_stage_shows_its_value(storage: str) -> None:
    found = locate(str(example("clickstream")), "slow_threshold", storage=storage)
    assert found.kind == "value" and isinstance(found.value, float)
    assert show(str(example("clickstream")), "slow_threshold", "--storage", storage).output.strip() == repr(found.value)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nope"], r"pipeline 'revenue' has no stage or sink 'nope' \(it has: enrich, revenue_by_country, "),
        (["enrich", "--run-id", "third"], r"there is no run 'third' of pipeline 'revenue' under "),
    ],
)
def test_mistakes_get_one_line_saying_what_to_do(storage: str, arguments: list[str], message: str) -> None:
    import re

    result = show(REVENUE, *arguments[:1], "--storage", storage, *arguments[1:])
    assert result.exit_code == 2 and re.search("error: " + message, result.output), result.output


def test_no_run_yet_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ResultError, match=r"no run of pipeline 'revenue' has finished under .*: run it"):
        sf.read_output(REVENUE, "enrich", storage=str(tmp_path))
