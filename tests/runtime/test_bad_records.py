"""Bad input records under each ``on_bad_record=`` policy, on both engines, in whole and split stages, CSV and JSON.

Each case runs the node ``totals`` event by event, as a state machine would (whole; or split, every map chunk,
commit), on Spark in this process or on DuckDB in a worker process. The input holds two bad records: a value that
is not an INT and a record that does not parse (a CSV row with a field too many, a truncated JSON line). The split
runs use chunks so small that both bad records lie in chunks starting inside the file, named by byte offset.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from sparkflow.cli import main
from sparkflow.compiler import plan_pipeline
from sparkflow.errors import InputError
from sparkflow.layout import work_location
from sparkflow.loading import load_pipeline
from sparkflow.progress import summary_table
from sparkflow.runtime import workers
from sparkflow.runtime.execute import handle_event
from sparkflow.runtime.local import run_plan
from tests.runtime.configs import runtime_config

pytestmark = pytest.mark.spark

PIPELINE = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F
    import sparkflow as sf
    schema = "user STRING, amount INT"
    events = sf.source("events", "{file}", format="{format}", schema=schema, on_bad_record="{policy}")

    @sf.stage({partition})
    def totals(events: DataFrame) -> DataFrame:
        return events.{body}

    @sf.pipeline
    def bad_records():
        return totals(events)
    """
)
DATA = {
    "csv": "user,amount\na,1\nb,2\nc,x\nd,4\ne,5,extra\nf,6\n",
    "json": (
        '{"user": "a", "amount": 1}\n{"user": "b", "amount": 2}\n{"user": "c", "amount": "x"}\n'
        '{"user": "d", "amount": 4}\n{"user": "e", "amount": \n{"user": "f", "amount": 6}\n'
    ),
}
BAD = {  # the bad records, and their lines in DATA
    "csv": [("c,x", 4), ("e,5,extra", 6)],
    "json": [('{"user": "c", "amount": "x"}', 3), ('{"user": "e", "amount": ', 5)],
}
CHUNK = {"csv": 16, "json": 40}  # bytes per chunk: 3 (csv) and 5 (json) chunks, the bad records in chunks >= 1
GOOD = [("a", 10), ("b", 20), ("d", 40), ("f", 60)]
# (engine, format, layout): make test runs four combinations that cover every pair of values; the other four run
# in make long-checks.
PAIRS = {("spark", "csv", "whole"), ("spark", "json", "split"), ("duckdb", "csv", "split"), ("duckdb", "json", "whole")}
COMBINATIONS = [
    pytest.param(
        engine,
        format,
        layout,
        id=f"{engine}-{format}-{layout}",
        marks=() if (engine, format, layout) in PAIRS else pytest.mark.long,
    )
    for engine in ("spark", "duckdb")
    for format in ("csv", "json")
    for layout in ("whole", "split")
]


ROWS = ('partition="rows"', 'select("user", (F.col("amount") * 10).alias("amount"))')
KEYS = ('partition_by="user"', 'groupBy("user").agg((F.sum("amount") * 10).alias("amount"))')


def write_pipeline(folder: Path, format: str, policy: str, stage: tuple[str, str] = ROWS) -> tuple[Path, str]:
    """The pipeline file and its data file (the path the runtime names: symlinks resolved)."""
    data = folder / ("events.csv" if format == "csv" else "events.jsonl")
    data.write_text(DATA[format])
    module = folder / "pipeline.py"
    partition, body = stage
    module.write_text(PIPELINE.format(file=data.name, format=format, policy=policy, partition=partition, body=body))
    return module, os.path.realpath(data)


@contextmanager
def handler(module: Path, storage: Path, engine: str) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """What runs one event: ``handle_event`` here (Spark), or a worker process of ``engine``."""
    config = runtime_config(pipeline=load_pipeline(str(module)), storage_root=str(storage), engine=engine)
    if engine == "spark":
        yield lambda event: handle_event(event, config)
        return
    yield workers.WorkerPool(config, engine).handle_event


def base_event(storage: Path) -> dict[str, Any]:
    return {"version": 1, "pipeline": "bad_records", "node": "totals", "run": {"id": "r1", "storage": f"{storage}/"}}


def run_node(
    handle: Callable[[dict[str, Any]], dict[str, Any]], storage: Path, chunk_bytes: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The node's final result and its map tasks' results: one whole task, or split, map every chunk, partition
    and reduce every reducer (a stage split by key), commit."""
    base = base_event(storage)
    if chunk_bytes is None:
        return handle(base), []
    split = handle({**base, "phase": "split", "chunk_bytes": chunk_bytes})["output"]
    maps = [handle({**base, "phase": "map", "chunk": chunk}) for chunk in range(split["chunks"])]
    if split["buckets"]:
        reducers = handle({**base, "phase": "partition"})["output"]["buckets"]
        for reducer in range(reducers):
            handle({**base, "phase": "reduce", "chunk": reducer})
    return handle({**base, "phase": "commit"}), maps


def committed_rows(spark: Any, location: str) -> list[tuple[Any, ...]]:
    manifest = json.loads((Path(location) / "_COMMITTED.json").read_text())
    frame = spark.read.parquet(*(str(Path(location) / name) for name in manifest["files"]))
    return sorted(tuple(row) for row in frame.collect())


def offset(format: str, record: str) -> int:
    return DATA[format].index(record + "\n")


def log_lines(tmp_path: Path, message: str) -> list[dict[str, Any]]:
    lines = (tmp_path / "runtime-logs.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["message"] == message]


@pytest.mark.parametrize(("engine", "format", "layout"), COMBINATIONS)
def test_fail_names_the_file_the_place_and_the_record(tmp_path: Path, engine: str, format: str, layout: str) -> None:
    module, data = write_pipeline(tmp_path, format, "fail")
    (record, line), _ = BAD[format]
    if layout == "whole":
        where, count = f"line {line} of {data!r}", "the first of 2 bad records"
    else:  # the chunk holding it starts inside the file: named by its offset there
        where, count = f"byte offset {offset(format, record)} of {data!r}", "the only bad record"
    pattern = (
        rf"stage 'totals': source 'events' has a bad record at {re.escape(where)}: {re.escape(repr(record))} "
        rf"does not parse as {format} with the schema 'user STRING, amount INT' \({count} in what this task "
        r"read\)\. Fix the record, or declare on_bad_record=\"skip\" \(drop and count bad records\) or "
        rf"\"quarantine\" .* on sf\.source\('events'\) at {re.escape(str(module))}:5$"
    )
    storage = tmp_path / "store"
    with handler(module, storage, engine) as handle, pytest.raises(InputError, match=pattern):
        run_node(handle, storage, None if layout == "whole" else CHUNK[format])
    assert not (storage / "bad_records" / "r1" / "totals" / "_COMMITTED.json").exists()


@pytest.mark.parametrize(("engine", "format", "layout"), COMBINATIONS)
def test_skip_drops_bad_records_and_counts_them(
    spark: Any, tmp_path: Path, engine: str, format: str, layout: str
) -> None:
    module, _ = write_pipeline(tmp_path, format, "skip")
    storage = tmp_path / "store"
    with handler(module, storage, engine) as handle:
        result, maps = run_node(handle, storage, None if layout == "whole" else CHUNK[format])
    output = result["output"]
    assert (output["rows"], output["rejected"]) == (4, 2)
    assert "rejects" not in output
    if layout == "split":  # each bad record counted by the one chunk task that read it, added up at commit
        assert len(maps) > 2 and maps[0]["output"]["rejected"] == 0
        assert sum(task["output"]["rejected"] for task in maps) == 2
    run = storage / "bad_records" / "r1"
    assert committed_rows(spark, str(run / "totals")) == GOOD
    assert not (run / "_rejects").exists()
    assert log_lines(tmp_path, "stage end")[-1]["rejected"] == 2
    warned = log_lines(tmp_path, "bad records rejected")
    assert sum(record["rejected"] for record in warned) == 2
    assert warned[0]["severity"] == "WARNING" and warned[0]["source"] == "events"


@pytest.mark.parametrize(("engine", "format", "layout"), COMBINATIONS)
def test_quarantine_keeps_bad_records_under_the_run(
    spark: Any, tmp_path: Path, engine: str, format: str, layout: str
) -> None:
    module, data = write_pipeline(tmp_path, format, "quarantine")
    storage = tmp_path / "store"
    with handler(module, storage, engine) as handle:
        result, _ = run_node(handle, storage, None if layout == "whole" else CHUNK[format])
    run = storage / "bad_records" / "r1"
    rejects = run / "_rejects" / "totals"
    output = result["output"]
    assert (output["rows"], output["rejected"], output["rejects"]) == (4, 2, str(rejects))
    assert committed_rows(spark, str(run / "totals")) == GOOD
    kept = [json.loads(line) for path in sorted(rejects.iterdir()) for line in path.read_text().splitlines()]
    expected = [
        {
            "source": "events",
            "file": data,
            "line": line if layout == "whole" else None,
            "offset": offset(format, record),
            "record": record,
        }
        for record, line in BAD[format]
    ]
    assert kept == expected
    if layout == "whole":
        assert [path.name for path in rejects.iterdir()] == ["records.jsonl"]
    else:  # one file per chunk task that found bad records
        assert all(re.fullmatch(r"parts-chunk-\d{5}\.jsonl", path.name) for path in rejects.iterdir())


def test_key_stage_adds_up_the_counts_of_its_map_tasks(spark: Any, tmp_path: Path) -> None:
    """A stage split by key counts bad records in its map (shuffle) tasks; its commit adds them up."""
    module, _ = write_pipeline(tmp_path, "csv", "skip", KEYS)
    storage = tmp_path / "store"
    with handler(module, storage, "spark") as handle:
        result, maps = run_node(handle, storage, CHUNK["csv"])
    assert [task["output"]["rejected"] for task in maps] == [0, 1, 1]
    assert (result["output"]["rows"], result["output"]["rejected"]) == (4, 2)
    assert committed_rows(spark, str(storage / "bad_records" / "r1" / "totals")) == GOOD


def test_a_retried_chunk_task_rewrites_its_quarantined_records(spark: Any, tmp_path: Path) -> None:
    """A chunk task that quarantined records and runs again (its commit was lost) leaves them once, counted once."""
    module, _ = write_pipeline(tmp_path, "csv", "quarantine")
    storage = tmp_path / "store"
    base = base_event(storage)
    run = storage / "bad_records" / "r1"
    kept = run / "_rejects" / "totals" / "parts-chunk-00001.jsonl"
    with handler(module, storage, "spark") as handle:
        chunks = handle({**base, "phase": "split", "chunk_bytes": CHUNK["csv"]})["output"]["chunks"]
        for chunk in range(chunks):
            handle({**base, "phase": "map", "chunk": chunk})
        before = kept.read_text()
        work = Path(work_location(str(storage), "bad_records", "r1", "totals"))
        (work / "parts" / "chunk-00001" / "_COMMITTED.json").unlink()  # died before committing
        again = handle({**base, "phase": "map", "chunk": 1, "attempt": "retry"})
        committed = handle({**base, "phase": "commit"})
    assert again["status"] == "committed" and again["output"]["rejected"] == 1
    assert kept.read_text() == before and len(before.splitlines()) == 1
    assert committed["output"]["rejected"] == 2


def test_run_summary_adds_up_the_chunks(spark: Any, tmp_path: Path) -> None:
    """`sparkflow run`: the split stage's count in the summary (table and --json) is the sum over its chunks."""
    module, _ = write_pipeline(tmp_path, "csv", "skip")
    pipeline = load_pipeline(str(module))
    summary = run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(tmp_path / "a"), chunk_bytes=16)
    node = summary.nodes["totals"]
    assert (summary.status, node.chunks, node.rows, node.rejected, node.rejects) == ("succeeded", 3, 4, 2, None)
    console = Console(width=240, record=True)
    console.print(summary_table(summary))
    table = console.export_text()
    assert re.search(r"┃ rows ┃ rejected ┃", table)
    assert re.search(r"│ totals +│ committed +│ +3 │ +4 │ +2 │", table)
    arguments = ["run", str(module), "--storage", str(tmp_path / "b"), "--chunk-size", "16B", "--json"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["nodes"]["totals"]["rejected"] == 2
