"""``sparkflow plan``: the estimate of a run before it runs, its golden files, its errors, and the estimate beside
the measured seconds in ``sparkflow run --json``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sparkflow import shrink
from sparkflow.cli import main
from sparkflow.compiler import plan_pipeline
from sparkflow.engines import ENGINES
from sparkflow.estimate import estimate_plan, local_estimate
from sparkflow.estimate.model import CLOUD_TASK_START_S
from sparkflow.estimate.report import document, to_json
from sparkflow.loading import load_pipeline
from sparkflow.targets.local import LOCAL

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GiB, MiB = 1024**3, 1024**2


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("target", ["aws", "gcp"])
@pytest.mark.parametrize("name", sorted(path.parent.name for path in EXAMPLES.glob("*/pipeline.py")))
def test_checked_in_estimates_are_current(name: str, target: str) -> None:
    pipeline = load_pipeline(str(EXAMPLES / name / "pipeline.py"))
    text = to_json(estimate_plan(plan_pipeline(pipeline, target), pipeline, target, {}))
    golden = EXAMPLES / name / f"{name}.plan-{target}.json"
    assert golden.read_text(encoding="utf-8") == text, "run `make definitions` after a deliberate change"


def test_plan_check_reports_a_stale_estimate(tmp_path: Path) -> None:
    folder = tmp_path / "wordcount"
    folder.mkdir()
    for item in (EXAMPLES / "wordcount").iterdir():
        if item.name == "pipeline.py":
            (folder / item.name).write_text(item.read_text())
    (folder / "data").symlink_to(EXAMPLES / "wordcount" / "data")
    assert invoke("plan", str(folder / "pipeline.py"), "--check").exit_code == 1  # missing
    assert invoke("plan", str(folder / "pipeline.py"), "--write").exit_code == 0
    assert invoke("plan", str(folder / "pipeline.py"), "--check").exit_code == 0
    golden = folder / "wordcount.plan-aws.json"
    golden.write_text(golden.read_text().replace('"chunks": 134', '"chunks": 1'))
    stale = invoke("plan", str(folder / "pipeline.py"), "--check")
    assert stale.exit_code == 1
    assert '-      "chunks": 1,' in stale.output and '+      "chunks": 134,' in stale.output


def test_a_split_stage_follows_the_chunk_model() -> None:
    """--input books=1GiB: the map phase has ceil(1 GiB / chunk) tasks, each a cold start plus its share of the
    bytes at the engine's throughput; the partition task gives the key stage a reducer per chunk of its shuffle, the
    combined partial results (counts has combine=: its measured shrink, wordcount.shrink.json), each reading its
    share of them; the state machine enters every chunk's and reducer's child state once."""
    pipeline = load_pipeline(str(EXAMPLES / "wordcount" / "pipeline.py"))
    plan = plan_pipeline(pipeline, "aws")
    counts = plan.task("counts")
    assert counts.fanout is not None
    data = document(estimate_plan(plan, pipeline, "aws", {"books": GiB}))
    stage = next(item for item in data["stages"] if item["stage"] == "counts")
    chunks = math.ceil(GiB / counts.fanout.chunk_bytes)
    measured = shrink.load(pipeline.origin.file, pipeline.name)["counts"].ratio
    shuffled = round(GiB * measured)
    reducers = math.ceil(shuffled / counts.fanout.chunk_bytes)
    assert (stage["chunks"], stage["buckets"], stage["tasks"]) == (chunks, reducers, chunks + reducers + 3)
    throughput = ENGINES["spark"].chunk_model.throughput
    each = CLOUD_TASK_START_S["spark"] + GiB / chunks / throughput
    reduce = CLOUD_TASK_START_S["spark"] + shuffled / reducers / throughput
    phases = {phase["phase"]: phase["seconds_each"] for phase in stage["phases"]}
    assert [phases["map"], phases["partition"], phases["reduce"]] == [
        round(each, 1),
        round(CLOUD_TASK_START_S["spark"], 1),
        round(reduce, 1),
    ]
    # split, the Choice that skips a stage a resumed run finds committed, map with its items, partition, reduce with
    # its items, commit
    assert stage["state_transitions"] == 1 + 1 + (1 + chunks) + 1 + (1 + reducers) + 1
    assert stage["usage"]["lambda_requests"] == chunks + reducers + 3
    gb_seconds = counts.memory_mb / 1024 * stage["task_seconds"]
    assert stage["usage"]["lambda_gb_seconds"] == pytest.approx(gb_seconds, rel=1e-3)


def test_more_input_costs_more_and_unconfirmed_prices_are_named_not_counted() -> None:
    pipeline = load_pipeline(str(EXAMPLES / "revenue" / "pipeline.py"))
    plan = plan_pipeline(pipeline, "gcp")
    small = document(estimate_plan(plan, pipeline, "gcp", {"orders": GiB}))
    large = document(estimate_plan(plan, pipeline, "gcp", {"orders": 100 * GiB}))
    assert large["total"]["cost_usd_priced"] > small["total"]["cost_usd_priced"] > 0
    assert large["total"]["seconds"] > small["total"]["seconds"]
    assert "workflows_internal_steps" in small["total"]["unpriced"]
    assert small["total"]["cost_usd"]["workflows_internal_steps"] is None
    assert small["prices"]["workflows_internal_steps"]["note"].startswith("not confirmed")


def at_80_columns(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "80"}).invoke(main, list(args), catch_exceptions=False)


def unwrapped(output: str) -> str:
    """Lines wrapped to the terminal's width joined again (a continuation line is indented by two more)."""
    return re.sub(r"\n  +", " ", output)


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_human_output_has_a_row_per_stage_and_totals_in_80_columns(target: str) -> None:
    arguments = ["plan", str(EXAMPLES / "revenue" / "pipeline.py"), "--target", target, "--input", "orders=10GiB"]
    result = at_80_columns(*arguments)
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if len(line) > 80] == []
    assert re.search(r"┃ stage +┃ runs on +┃ tasks ┃ seconds ┃ cost \(USD\) ┃", result.output)
    for text in ("enrich", "revenue_by_country", "total", "prices checked", "not priced: "):
        assert text in result.output
    wide = at_80_columns(*arguments, "--wide")
    assert re.search(r"┃ stage +┃ runs on +┃ +memory ┃ timeout ┃ +input ┃ chunks ┃ buckets ┃ tasks ┃", wide.output)
    assert unwrapped(wide.output).count("\n") == unwrapped(result.output).count("\n")  # the same rows and notes
    assert at_80_columns(*arguments, "--json").output == at_80_columns(*arguments, "--json", "--wide").output


def test_json_is_sorted_and_names_the_price_date() -> None:
    result = invoke("plan", str(EXAMPLES / "clickstream" / "pipeline.py"), "--json", "--input", "events=3GB")
    data = json.loads(result.output)
    assert result.output == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert data["prices_checked"] == "2026-12-03" and data["sources"] == {"events": 3 * GiB}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("books=lots", r"--input books='lots' is not a size: .*; e\.g\. --input books=10GiB"),
        ("pages=1GB", r"--input pages=1GB: pipeline 'wordcount' has no source 'pages' \(sources: books\)"),
    ],
)
def test_a_bad_input_size_names_the_option_and_the_fix(value: str, message: str) -> None:
    result = CliRunner().invoke(main, ["plan", str(EXAMPLES / "wordcount" / "pipeline.py"), "--input", value])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert re.search(message, result.output), result.output


def test_an_input_without_a_size_says_how_to_write_one() -> None:
    result = CliRunner().invoke(main, ["plan", str(EXAMPLES / "wordcount" / "pipeline.py"), "--input", "books"])
    assert result.exit_code == 2
    assert "'books': write NAME=SIZE, e.g. --input books=10GiB" in result.output


def test_a_source_of_unknown_size_asks_for_one(tmp_path: Path) -> None:
    pipeline = tmp_path / "remote.py"
    pipeline.write_text(
        "import sparkflow as sf\n"
        "logs = sf.source('logs', 's3://bucket/logs/', format='text')\n"
        "@sf.stage(partition='rows')\n"
        "def keep(logs):\n"
        "    return logs\n"
        "@sf.pipeline(storage='s3://bucket/sf/')\n"
        "def remote():\n"
        "    return keep(logs)\n"
    )
    result = CliRunner().invoke(main, ["plan", str(pipeline)])
    assert result.exit_code == 2
    assert "source 'logs' (s3://bucket/logs/) has no size to estimate with: pass --input logs=SIZE" in result.output


COMPRESSED = """
import sparkflow as sf
from pyspark.sql import functions as F
logs = sf.source('logs', 'logs/', format='text')
archive = sf.source('archive', 's3://bucket/archive/2024.log.zst', format='text', size='3GiB')
@sf.stage(partition='rows', chunk_size='64KiB')
def words(lines):
    return lines.select(F.explode(F.split('value', ' ')).alias('word'))
@sf.stage(partition_by='word')
def counts(words):
    return words.groupBy('word').count()
@sf.pipeline(storage='s3://bucket/sf/')
def compressed():
    return counts(words(logs)), counts(words(archive))
"""


def test_compressed_files_are_read_whole_and_plan_says_so(tmp_path: Path) -> None:
    """A compressed file cannot be split: plan notes each source holding some (local files, or a remote location
    naming one), warns of one larger than a chunk of a stage that splits it, and of one a run would refuse; --json
    says the same."""
    import gzip
    import os

    (tmp_path / "pipeline.py").write_text(COMPRESSED)
    (tmp_path / "logs" / "day=1").mkdir(parents=True)
    (tmp_path / "logs" / "day=1" / "big.log.gz").write_bytes(gzip.compress(os.urandom(100 * 1024)))
    (tmp_path / "logs" / "small.log.bz2").write_bytes(b"BZh9" + bytes(60))
    (tmp_path / "logs" / "plain.log").write_text("plain\n" * 100)
    (tmp_path / "logs" / "old.log.xz").write_bytes(b"xz")
    result = invoke("plan", str(tmp_path / "pipeline.py"))
    assert result.exit_code == 0, result.output
    big = (tmp_path / "logs" / "day=1" / "big.log.gz").stat().st_size
    lines = [line for line in unwrapped(result.output).splitlines() if line.startswith(("note:", "warning:"))]
    assert lines == [
        "note: source archive: 1 compressed file (zstd, 3.0 GiB) cannot be split: it is read whole, in one chunk",
        "warning: source archive: 2024.log.zst (3.0 GiB compressed) is larger than a chunk of stage counts_2 "
        "(64.0 KiB): one task reads it whole, and more once decompressed; store it as smaller files (or uncompressed) "
        "to spread it over tasks",
        f"note: source logs: 2 compressed files (bzip2, gzip, {(big + 64) / 1024:,.1f} KiB) cannot be split: each is "
        "read whole, in one chunk",
        f"warning: source logs: day=1/big.log.gz ({big / 1024:,.1f} KiB compressed) is larger than a chunk of stage "
        "counts (64.0 KiB): one task reads it whole, and more once decompressed; store it as smaller files (or "
        "uncompressed) to spread it over tasks",
        "warning: source logs: 'old.log.xz' is compressed with xz, which sparkflow does not read (Spark has no codec "
        "for it and reads its compressed bytes as text). sparkflow reads the compressions Spark decompresses: gzip "
        "(.gz, .gzip), bzip2 (.bz2), zstd (.zst, .zstd), zlib (.deflate): decompress the file or compress it with one "
        "of those; sparkflow run refuses it before anything runs",
    ]
    data = json.loads(invoke("plan", str(tmp_path / "pipeline.py"), "--json").output)
    assert data["compressed"]["logs"] == {
        "files": 2,
        "bytes": big + 64,
        "compressions": ["bzip2", "gzip"],
        "largest": {"file": "day=1/big.log.gz", "bytes": big},
        "larger_than_a_chunk_of": {"counts": 64 * 1024},
        "refused": lines[-1]
        .removeprefix("warning: source logs: ")
        .removesuffix("; sparkflow run refuses it before anything runs"),
    }
    assert data["compressed"]["archive"]["larger_than_a_chunk_of"] == {"counts_2": 64 * 1024}


def test_the_local_estimate_uses_the_run_engine_and_the_files_read(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(EXAMPLES / "daily-revenue" / "pipeline.py"))
    plan = plan_pipeline(pipeline, LOCAL)
    bigger = tmp_path / "orders.csv"
    rows = (EXAMPLES / "daily-revenue" / "data" / "orders.csv").read_text()
    bigger.write_text(rows * 2000)
    options = {"workers": 2, "chunk_bytes": None}
    spark = local_estimate(plan, pipeline, {"orders": str(bigger)}, engine=None, **options)
    duck = local_estimate(plan, pipeline, {"orders": str(bigger)}, engine="duckdb", **options)
    assert set(spark.stages) == {task.id for task in plan.tasks}
    assert duck.stages["daily-totals"] < spark.stages["daily-totals"] and duck.run < spark.run
    small = local_estimate(plan, pipeline, {}, engine=None, **options)
    assert small.stages["daily-totals"] < spark.stages["daily-totals"]


def test_run_json_puts_the_estimate_beside_the_measured_seconds(tmp_path: Path) -> None:
    pipeline = str(EXAMPLES / "daily-revenue" / "pipeline.py")
    result = invoke("run", pipeline, "--storage", str(tmp_path), "--engine", "duckdb", "--json")
    data = json.loads(result.output)
    assert data["status"] == "succeeded"
    assert data["estimated_seconds"] > 0 and data["seconds"] > 0
    for node in data["nodes"].values():
        assert node["estimated_seconds"] > 0 and node["seconds"] > 0
