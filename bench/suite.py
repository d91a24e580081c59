"""``make bench``: every performance figure of sparkflow in one table, each row measured side by side in one run.

Rows, grouped; each group's first row is its baseline, and every ratio is against that baseline of this run:

* cold start of a tiny stage (10k-row CSV, group by, Parquet), whole process: plain PySpark with
  ``SparkSession.builder.getOrCreate()`` defaults, sparkflow/spark, sparkflow/spark with the images' CDS archive,
  sparkflow/duckdb (:mod:`cold_start`);
* warm invocation: the second event handled by one process, spark and duckdb (:mod:`cold_start`);
* word count over generated text and the revenue example's join + aggregate over generated CSV (``--gb``): one
  plain PySpark job (the example's own stage functions composed, writing the tables the pipeline writes) against
  the same code on sqlframe's DuckDB session alone (what DuckDB itself takes) and ``sparkflow run`` on spark and on
  duckdb, with the compiled split (:mod:`split_wordcount`); the report adds the phases of each engine's last split
  run (:mod:`phases`);
* compile time of 10 ... 10,000 stages, chain and fan-out/in (:mod:`compile_time`), against Kubeflow Pipelines'
  compiler on the same shapes (:mod:`kfp_peer`, in the separate environment ``make bench`` makes);
* deployable size per engine: the duckdb engine's Lambda .zip (unzipped) against the Spark image's contents, and
  the sail engine's image and what its zip would hold (:mod:`sail_size`).

Every timed row is the median of ``--runs`` whole processes (``--data-runs`` for the word count and the join, 2 by
default to keep ``make bench`` well under an hour), the variants of a group interleaved run by run so that machine
noise hits them alike; a process that takes longer than ``--timeout`` seconds is stopped (with its JVM and workers),
shown as over the limit, and that variant is not run again. The peak column is the peak resident memory of the
process tree (JVM and DuckDB workers included), sampled every 50 ms (:mod:`measure`). The table is printed and
written, with the machine and the command, to ``bench/results/latest.md`` (raw runs in ``latest.json``).

    .venv/bin/python bench/suite.py [--runs 3] [--data-runs 2] [--gb 1] [--timeout 600] [--quick] [--only cold,data]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cold_start
import phases
import split_wordcount
from measure import TimedOut, median, run_measured

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
GiB = 1024**3
MiB = 1024**2
# The revenue example's join, as one plain PySpark job: its own stage functions composed, read and written directly.
JOIN_PLAIN = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, sys.argv[4])
    DUCKDB = sys.argv[5:] == ["duckdb"]  # the same code on sqlframe's DuckDB session instead of Spark
    SAIL = sys.argv[5:] == ["sail"]  # the same code on a Sail server in this process, through Spark Connect
    if DUCKDB:
        from sqlframe import activate
        activate("duckdb")
    from pyspark.sql import SparkSession
    from pipeline import enrich, revenue_by_country  # the example's own stage functions, run as plain functions
    if SAIL:
        from pysail.spark import SparkConnectServer
        server = SparkConnectServer(ip="127.0.0.1", port=0)
        server.start(background=True)
        host, port = server.listening_address
        spark = SparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
    else:
        spark = SparkSession.builder.master("local[*]").getOrCreate()
    schema = "order_id INT, customer_id INT, amount DOUBLE, order_date DATE"
    orders = spark.read.csv(sys.argv[1], header=True, schema=schema)
    customers = spark.read.csv(sys.argv[2], header=True, schema="customer_id INT, name STRING, country STRING")
    # The pipeline's two tables: the enriched orders by country (its sink), then the revenue read from them.
    # sqlframe hands partitionBy to DuckDB's COPY as it is (DuckDB's option is partition_by) and reads a folder only
    # through a glob.
    writer = enrich(orders, customers).write
    if DUCKDB:
        os.makedirs(sys.argv[3], exist_ok=True)
        writer.option("partition_by", "country").parquet(sys.argv[3] + "/enriched", mode="overwrite")
    else:
        writer.parquet(sys.argv[3] + "/enriched", mode="overwrite", partitionBy="country")
    enriched = spark.read.parquet(sys.argv[3] + "/enriched" + ("/*/*.parquet" if DUCKDB else ""))
    revenue_by_country(enriched).write.mode("overwrite").parquet(sys.argv[3] + "/revenue")
    """
)
COMPILE_ONE = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[3])
    from compile_time import measure
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), (sys.argv[4:] or ["aws"])[0], 1)))
    """
)
GCP_SIZES = (10, 100, 500)  # stages of the GCP definition-size rows: issue 18 wants 500 to fit in both shapes
COUNTRIES = ["FR", "IN", "US", "DE", "BR", "JP", "CN", "GB", "NG", "MX"]
ENGINES = ("spark", "sail", "duckdb")
TIMEOUT = [600.0]  # seconds one measured process may take (--timeout)


@dataclass
class Row:
    """One line of the table: a variant's values over the runs (seconds or bytes) and its peaks."""

    group: str
    variant: str
    unit: str  # "s" or "bytes"
    values: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)
    note: str = ""

    failed: int = 0
    stopped_after: float | None = None  # the time limit it ran over; it is not run again

    def run(
        self, command: list[str], env: dict[str, str] | None = None, read: Callable[[str], float] | None = None
    ) -> None:
        """Measure ``command`` once: its seconds, or what ``read`` takes from its last line of output. A failure
        is noted on the row and the run goes on (one broken variant does not lose an hour of measurements); a
        variant that ran over the time limit once is not run again."""
        if self.stopped_after is not None:
            return
        try:
            sample = run_measured(command, env, timeout=TIMEOUT[0])
            self.values.append(sample.seconds if read is None else read(sample.stdout.strip().splitlines()[-1]))
            self.peaks.append(sample.peak_rss)
        except TimedOut:
            self.stopped_after = TIMEOUT[0]
            self.note = f"stopped: over the {TIMEOUT[0]:,.0f} s limit (--timeout); not run again"
            _log(f"{self.group} / {self.variant}: {self.note}")
        except (SystemExit, Exception) as error:
            self.failed += 1
            first = next((line for line in reversed(str(error).splitlines()) if line.strip()), type(error).__name__)
            self.note = f"failed {self.failed}x: {first[:160]}"
            _log(f"{self.group} / {self.variant} failed: {error}")

    @property
    def value(self) -> float | None:
        return median(self.values) if self.values else None


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)
    profiles: list[tuple[str, str]] = field(default_factory=list)  # (title, Markdown table of a run's phases)

    def row(self, group: str, variant: str, unit: str = "s", note: str = "") -> Row:
        made = Row(group, variant, unit, note=note)
        self.rows.append(made)
        return made

    def baseline(self, row: Row) -> Row:
        return next(item for item in self.rows if item.group == row.group)

    def ratio(self, row: Row) -> float | None:
        base = self.baseline(row).value
        return None if row.value is None or not base else row.value / base

    def markdown(self) -> str:
        lines = [
            "| measurement | variant | median | vs baseline | peak memory | runs | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            value = row.value
            shown = "—" if value is None else f"{value:,.3f} s" if row.unit == "s" else f"{value / MiB:,.1f} MB"
            if row.unit == "B/stage" and value is not None:
                shown = f"{value:,.0f} B/stage"
            ratio = self.ratio(row)
            baseline = self.baseline(row) is row
            rel = "baseline" if baseline and value is not None else "—" if ratio is None else f"{ratio:.3f}"
            base = self.baseline(row).value
            if value is None and row.stopped_after is not None:
                shown = f"> {row.stopped_after:,.0f} s"
                rel = f"> {row.stopped_after / base:.1f}" if base and not baseline else rel
            peak = f"{median(row.peaks) / MiB:,.0f} MiB" if row.peaks else "—"
            group = row.group if baseline else ""
            lines.append(f"| {group} | {row.variant} | {shown} | {rel} | {peak} | {len(row.values)} | {row.note} |")
        return "\n".join(lines)


# ---- the measurements --------------------------------------------------------------------------------------


def cold_and_warm(table: Table, runs: int, scratch: Path) -> None:
    folder = scratch / "tiny"
    folder.mkdir()
    variants = cold_start.prepare(folder)
    group = "cold start, tiny stage (whole process)"
    plain = table.row(group, "plain PySpark, `SparkSession.builder.getOrCreate()` defaults")
    spark = table.row(group, "sparkflow/spark (`python -m sparkflow.runtime EVENT`)")
    cds = table.row(group, "sparkflow/spark + CDS archive (as in the image)")
    sail = table.row(group, "sparkflow/sail")
    duck = table.row(group, "sparkflow/duckdb")
    warm_group = "warm invocation (2nd event in one process)"
    note = "peak: the whole process, cold call included"
    warm = [
        (table.row(warm_group, "sparkflow/spark", note=note), variants.env),
        (table.row(warm_group, "sparkflow/sail", note=note), variants.sail_env),
        (table.row(warm_group, "sparkflow/duckdb", note=note), variants.duck_env),
    ]
    for index in range(runs):
        _log(f"cold start, run {index + 1}/{runs}")
        plain.run(variants.baseline(f"b{index}"), variants.env)
        spark.run(variants.stage(f"cold-{index}"), variants.env)
        cds.run(variants.stage(f"cds-{index}"), variants.cds_env)
        sail.run(variants.stage(f"sail-{index}"), variants.sail_env)
        duck.run(variants.stage(f"duck-{index}"), variants.duck_env)
        for number, (row, env) in enumerate(warm):
            row.run(variants.warm(f"w{number}-{index}"), env, read=lambda line: float(json.loads(line)[1]))


CHUNK_TASK = textwrap.dedent(
    r"""
    from pyspark.sql import DataFrame, functions as F
    import sparkflow as sf

    books = sf.source("books", "books.txt", format="text")

    @sf.stage
    def counted(books: DataFrame) -> DataFrame:
        words = books.select(F.explode(F.split(F.lower("value"), r"\W+")).alias("word")).where("word != ''")
        return words.groupBy("word").count()

    @sf.pipeline
    def chunk():
        return counted(books)
    """
)


def chunk_task(table: Table, runs: int, scratch: Path, megabytes: int = 64) -> None:
    """One task reading a chunk of ``megabytes`` of text (a word count), as a deployed function runs it: the container
    entry with one event, a whole process per engine; what matters is its peak memory (the function's size)."""
    folder = scratch / "chunk"
    folder.mkdir()
    (folder / "pipeline.py").write_text(CHUNK_TASK)
    split_wordcount.generate(folder / "books.txt", megabytes)
    env = {
        **os.environ,
        "SPARKFLOW_PIPELINE": str(folder / "pipeline.py"),
        "SPARKFLOW_PLAN": cold_start._ship_plan(folder),
        "SPARKFLOW_STORAGE_ROOT": str(folder / "store"),
    }
    group = f"a {megabytes} MiB chunk task (word count, whole process)"
    rows = [(table.row(group, f"sparkflow/{engine}"), engine) for engine in ENGINES]
    for index in range(runs):
        _log(f"{group}, run {index + 1}/{runs}")
        for row, engine in rows:
            run = {"id": f"r{index}-{engine}", "storage": f"{folder / 'store'}/"}
            event = {"version": 1, "pipeline": "chunk", "node": "counted", "run": run}
            row.run([sys.executable, "-m", "sparkflow.runtime", json.dumps(event)], {**env, "SPARKFLOW_ENGINE": engine})


def wordcount(table: Table, runs: int, scratch: Path, gb: float) -> None:
    folder = scratch / "wordcount"
    folder.mkdir()
    books = folder / "books.txt"
    _log(f"generating {gb:g} GiB of text")
    split_wordcount.generate(books, max(1, round(gb * 1024)))
    example = ROOT / "examples" / "wordcount" / "pipeline.py"
    plain = [sys.executable, "-c", split_wordcount.PLAIN, str(books), str(folder / "plain"), str(example.parent)]
    group = f"word count, {_size(books.stat().st_size)} of text"
    _split_against_plain(table, runs, folder, group, plain, example, {"books": str(books)})
    books.unlink()


def join(table: Table, runs: int, scratch: Path, gb: float) -> None:
    folder = scratch / "revenue"
    folder.mkdir()
    orders, customers = folder / "orders.csv", folder / "customers.csv"
    _log(f"generating {gb:g} GiB of orders")
    generate_orders(orders, customers, gb)
    example = ROOT / "examples" / "revenue" / "pipeline.py"
    plain = [sys.executable, "-c", JOIN_PLAIN, str(orders), str(customers), str(folder / "plain"), str(example.parent)]
    group = f"join + aggregate (revenue), {_size(orders.stat().st_size)} of orders CSV"
    inputs = {"orders": str(orders), "customers": str(customers)}
    _split_against_plain(table, runs, folder, group, plain, example, inputs)
    orders.unlink()


def _split_against_plain(
    table: Table, runs: int, folder: Path, group: str, plain: list[str], example: Path, inputs: dict[str, str]
) -> None:
    """One plain PySpark job against the same code on DuckDB alone and ``sparkflow run`` of ``example`` on each
    engine, interleaved run by run; the phases of each engine's last split run go to the report."""
    alone = (([], "one plain PySpark job (the example's stage functions composed)"),)
    alone += (
        (["sail"], "the same code on a Sail server (one process, no sparkflow)"),
        (["duckdb"], "the same code on sqlframe's DuckDB session (one process, no sparkflow)"),
    )
    rows = [table.row(group, label) for _, label in alone]
    rows += [table.row(group, f"`sparkflow run`, {engine} (compiled split)") for engine in ENGINES]
    for index in range(runs):
        _log(f"{group}, run {index + 1}/{runs}")
        for row, (engine, _) in zip(rows[: len(alone)], alone, strict=True):
            row.run([*plain, *engine])
            shutil.rmtree(folder / "plain", ignore_errors=True)  # the output folder of each
        for row, engine in zip(rows[len(alone) :], ENGINES, strict=True):
            store = folder / engine
            row.run(
                [
                    sys.executable,
                    "-c",
                    split_wordcount.RUN,
                    str(example),
                    str(store),
                    json.dumps(inputs),
                    "split",
                    "0",
                    engine,
                ]
            )
            if row.values and index == runs - 1:
                run = phases.newest_run(store)
                table.profiles.append((f"{group}: `sparkflow run`, {engine}", phases.markdown(run, row.values[-1])))
        for engine in ENGINES:  # outputs and intermediate data: up to several GiB
            shutil.rmtree(folder / engine, ignore_errors=True)


def generate_orders(orders: Path, customers: Path, gb: float) -> None:
    """About ``gb`` GiB of orders (the example's columns) over 200,000 customers in 10 countries, with DuckDB."""
    import duckdb

    rows = max(1000, int(gb * GiB / 33))  # ~33 bytes a row at these sizes
    countries = ", ".join(f"'{country}'" for country in COUNTRIES)
    connection = duckdb.connect()
    connection.execute(
        "COPY (SELECT i AS order_id, (hash(i) % 200000)::INT + 1 AS customer_id, "
        "round((hash(i * 7) % 100000) / 100.0, 2) AS amount, "
        "DATE '2026-01-01' + (hash(i * 13) % 365)::INT AS order_date "
        f"FROM range(1, {rows} + 1) t(i)) TO '{orders}' (HEADER, DELIMITER ',')"
    )
    connection.execute(
        f"COPY (SELECT i AS customer_id, 'Name ' || i AS name, [{countries}][(hash(i) % 10)::INT + 1] AS country "
        f"FROM range(1, 200001) t(i)) TO '{customers}' (HEADER, DELIMITER ',')"
    )
    connection.close()


def compile_times(table: Table, runs: int, sizes: list[int], kfp_python: str | None, kfp_max: int) -> None:
    import compile_time

    peer_name = f"Kubeflow Pipelines compiler (kfp {_kfp_version(kfp_python)})"
    for shape in compile_time.SHAPES:
        for stages in sizes:
            group = f"compile, {shape} of {stages:,} stages"
            peer = table.row(group, peer_name)
            ours = table.row(group, "sparkflow (`plan_pipeline` + emit + check, aws)")
            for index in range(runs):
                _log(f"compile {shape} {stages}, run {index + 1}/{runs}")
                if kfp_python and stages <= kfp_max:
                    command = [kfp_python, str(BENCH / "kfp_peer.py"), shape, str(stages)]
                    peer.run(command, read=lambda line: float(json.loads(line)["seconds"]))
                command = [sys.executable, "-c", COMPILE_ONE, shape, str(stages), str(BENCH)]
                ours.run(command, read=lambda line: float(json.loads(line)["total"]))
            if ours.value is not None:
                ours.note = f"{ours.value / stages * 1e6:,.0f} µs/stage"
            if not kfp_python:
                peer.note = "not run: no kfp environment (`make bench` makes .venv-bench)"
            elif stages > kfp_max:
                peer.note = f"not run: over --kfp-max {kfp_max:,} ({_kfp_growth(table, shape)})"
            elif peer.value is not None:
                peer.note = f"{peer.value / stages * 1e6:,.0f} µs/stage"


def gcp_definition_sizes(table: Table) -> None:
    """Bytes of Workflows source per stage, chain and fan-out/in, and whether the definition fits."""
    for shape in ("chain", "fan-out/in"):
        group = f"GCP Workflows source per stage, {shape}"
        totals: list[tuple[int, int]] = []
        for stages in GCP_SIZES:
            row = table.row(group, f"{stages:,} stages", unit="B/stage")
            command = [sys.executable, "-c", COMPILE_ONE, shape, str(stages), str(BENCH), "gcp"]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            row.values.append(measured["bytes"] / stages)
            row.note = f"{measured['bytes']:,} bytes in all; fits the 128 KB limit: {measured['fits']}"
            totals.append((stages, measured["bytes"]))
        # What one more stage costs, without the subworkflows every definition holds once.
        (fewer, smaller), (more, larger) = totals[-2], totals[-1]
        row.note += f"; {(larger - smaller) / (more - fewer):,.0f} B per added stage"


def _kfp_growth(table: Table, shape: str) -> str:
    """How kfp's time grew between the two largest sizes measured in this run, as an exponent of n."""
    measured = [
        (int(row.group.rsplit(" of ", 1)[1].split()[0].replace(",", "")), row.value)
        for row in table.rows
        if row.group.startswith(f"compile, {shape} of ") and row.variant.startswith("Kubeflow") and row.value
    ]
    if len(measured) < 2:
        return "growth not measured"
    (small, small_s), (large, large_s) = measured[-2], measured[-1]
    exponent = math.log(large_s / small_s) / math.log(large / small)
    return f"its time grew as n^{exponent:.1f} from {small:,} to {large:,} stages in this run"


def sizes(table: Table, scratch: Path) -> None:
    """The duckdb engine's Lambda .zip (unzipped) and the sail engine's image and zip against what the Spark image
    holds beyond its base."""
    import importlib.metadata

    import sail_size

    from sparkflow.compiler import plan_pipeline
    from sparkflow.loading import load_pipeline
    from sparkflow.shipping.requirements import engine_requirements
    from sparkflow.targets.aws import lambda_zip

    group = "deployable size (unzipped)"
    here = _this_machine()
    spark_dists, _ = lambda_zip.closure(engine_requirements("spark"), list(importlib.metadata.distributions()), here)
    spark_files = [Path(str(dist.locate_file(item))) for dist in spark_dists for item in dist.files or []]
    spark_bytes = sum(path.stat().st_size for path in spark_files if path.suffix != ".pyc" and path.is_file())
    jdk, jdk_bytes = _jdk_size()
    spark = table.row(
        group,
        "spark: the image's Python packages (sparkflow's pins, pyspark included) + a JDK",
        unit="bytes",
        note=f"{len(spark_dists)} distributions {spark_bytes / MiB:,.0f} MB (installed files, no .pyc) + "
        f"{jdk} {jdk_bytes / MiB:,.0f} MB",
    )
    spark.values.append(spark_bytes + jdk_bytes)
    pipeline = load_pipeline(str(ROOT / "examples" / "wordcount" / "pipeline.py"))
    plan = plan_pipeline(pipeline, "aws")
    builds = [
        ("python3.12 wheels from the index (the deployable zip)", lambda_zip.RUNTIMES["3.12"]),
        (f"{here.name} wheels for this machine, with bytecode", here),
    ]
    for label, runtime in builds:
        _log(f"building the duckdb zip: {label}")
        built = lambda_zip.build_zip(
            pipeline, plan, scratch / f"zip-{len(table.rows)}", engine="duckdb", runtime=runtime
        )
        row = table.row(
            group,
            f"duckdb: Lambda .zip, {label}",
            unit="bytes",
            note=f"{built.unzipped_bytes / lambda_zip.UNZIPPED_LIMIT.value:.0%} of Lambda's 250 MB; "
            f"{built.zipped_bytes / MiB:,.0f} MB zipped; biggest {built.contributors[0][0]} "
            f"{built.contributors[0][1] / MiB:,.0f} MB",
        )
        row.values.append(built.unzipped_bytes)
    runtime = lambda_zip.RUNTIMES["3.12"]
    _log("measuring the sail image and zip: python3.12 wheels")
    image = sail_size.measure_image("sail", runtime, scratch / "sail")
    zipped = sail_size.measure_zip(runtime, scratch / "sail")
    for variant, contents, note in (
        (
            "sail: the image's Python packages, python3.12 wheels (no JDK)",
            image,
            f"{len(image.sizes) - 1} distributions + sparkflow; pysail {image.of('pysail') / MiB:,.0f} MB, "
            f"pyspark-client {image.of('pyspark-client') / MiB:,.0f} MB",
        ),
        (
            "sail: what a Lambda .zip would hold, python3.12 wheels (not built: over the limit)",
            zipped,
            f"{zipped.total / lambda_zip.UNZIPPED_LIMIT.value:.0%} of Lambda's 250 MB; pysail and pyarrow alone "
            f"{zipped.of('pysail', 'pyarrow') / MiB:,.0f} MB",
        ),
    ):
        table.row(group, variant, unit="bytes", note=note).values.append(contents.total)


def _this_machine() -> Any:
    from sparkflow.targets.aws.lambda_zip import LambdaRuntime

    glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "glibc 2.17").split()[1].split(".")
    return LambdaRuntime(
        f"python{sys.version_info[0]}.{sys.version_info[1]}",
        sys.version_info[:2],
        (int(glibc[0]), int(glibc[1])),
        "this machine",
    )


def _jdk_size() -> tuple[str, int]:
    java = shutil.which("java")
    if java is None:
        return "no JDK found", 0
    home = Path(os.path.realpath(java)).parent.parent
    total = sum(path.stat().st_size for path in home.rglob("*") if path.is_file() and not path.is_symlink())
    return f"the JDK here ({home})", total


# ---- the report --------------------------------------------------------------------------------------------


def targets(table: Table) -> list[str]:
    """The issue's targets, each met or not, from this run's figures."""

    def find(group_start: str, variant_start: str) -> Row | None:
        found = [r for r in table.rows if r.group.startswith(group_start) and r.variant.startswith(variant_start)]
        return found[0] if found else None

    def verdict(row: Row | None, limit: float, text: str, *, of_limit: float | None = None) -> str:
        if row is None:
            return f"- {text}: not measured"
        measured = table.ratio(row) if of_limit is None else (row.value or 0) / of_limit
        if measured is None or row.value is None:
            if row.stopped_after is not None:
                return f"- {text}: not met (stopped after {row.stopped_after:,.0f} s)"
            if table.baseline(row).stopped_after is not None:
                return f"- {text}: unknown (the baseline was stopped after {row.stopped_after or TIMEOUT[0]:,.0f} s)"
            return f"- {text}: not measured"
        return f"- {text}: {measured:.3f} ({'met' if measured <= limit else 'not met'}, target ≤ {limit:g})"

    lines = [
        verdict(find("cold start", "sparkflow/sail"), 0.15, "sail cold start / plain PySpark's"),
        verdict(find("cold start", "sparkflow/duckdb"), 0.2, "duckdb cold start / plain PySpark's"),
        verdict(find("cold start", "sparkflow/spark ("), 0.5, "sparkflow/spark cold start / plain PySpark's"),
        verdict(
            find("cold start", "sparkflow/spark + CDS"), 0.35, "sparkflow/spark + CDS cold start / plain PySpark's"
        ),
    ]
    for shape in ("chain", "fan-out/in"):
        rows = [
            (int(r.group.rsplit(" of ", 1)[1].split()[0].replace(",", "")), r.value)
            for r in table.rows
            if r.group.startswith(f"compile, {shape} of ") and r.variant.startswith("sparkflow") and r.value
        ]
        if rows:
            stages, seconds = rows[-1]
            growth = (seconds / stages) / (rows[-2][1] / rows[-2][0]) if len(rows) > 1 else 1.0
            reached = "10,000 stages not measured" if stages < 10_000 else "met" if seconds < 10 else "not met"
            lines.append(
                f"- compile {shape} of {stages:,} stages: {seconds:.2f} s ({reached}, target < 10 s at 10,000); "
                f"time per stage there / at the size before: {growth:.2f} "
                f"({'linear' if growth <= 1.5 else 'faster than linear'}, read as linear when ≤ 1.5)"
            )
    warm_sail = find("warm invocation", "sparkflow/sail")
    if warm_sail is not None and warm_sail.value is not None:
        met = "met" if warm_sail.value <= 0.05 else "not met"
        lines.append(f"- sail warm invocation: {warm_sail.value:.3f} s ({met}, target ≤ 0.05 s)")
    chunk_sail = find("a 64 MiB chunk task", "sparkflow/sail")
    if chunk_sail is not None and chunk_sail.peaks:
        peak = median(chunk_sail.peaks) / MiB
        met = "met" if peak <= 1024 else "not met"
        lines.append(f"- sail 64 MiB chunk task peak memory: {peak:,.0f} MiB ({met}, target ≤ 1,024 MiB)")
    for group, duckdb_limit in (("word count", 0.4), ("join", 0.3)):
        for engine, limit in (("spark", 1.3), ("sail", 0.35), ("duckdb", duckdb_limit)):
            text = f"{group}: sparkflow run on {engine} / the single PySpark job"
            lines.append(verdict(find(group, f"`sparkflow run`, {engine}"), limit, text))
        alone = f"{group}: the same code on DuckDB alone / the single PySpark job (what DuckDB itself takes)"
        lines.append(verdict(find(group, "the same code on sqlframe"), duckdb_limit, alone))
    for row in table.rows:
        if row.group.startswith("GCP Workflows source") and row.value is not None and "added stage" in row.note:
            fits = "fits the 128 KB limit: yes" in row.note
            met = "met" if row.value <= 250 and fits else "not met"
            lines.append(f"- {row.group}, {row.variant}: {row.value:,.0f} B/stage, fits: {fits} ({met}, target ≤ 250)")
    for row in table.rows:
        if row.group.startswith("deployable size") and row.variant.startswith("duckdb"):
            lines.append(verdict(row, 1.0, f"{row.variant} / Lambda's 250 MB", of_limit=250 * MiB))
    return lines


def profile_sections(table: Table) -> list[str]:
    """Where each engine's last split run spent its time, phase by phase (:mod:`phases`)."""
    lines: list[str] = []
    for title, markdown in table.profiles:
        lines += ["", f"Phases of {title} (its last run):", "", markdown]
    return lines


def machine() -> list[str]:
    import importlib.metadata

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    memory = next(
        (
            int(line.split()[1]) * 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("pyspark", "duckdb", "sqlframe", "sqlglot")
    )
    return [
        f"- {os.cpu_count()} cores ({cpu}), {memory / GiB:,.1f} GiB memory, {platform.system()} {platform.release()}",
        f"- Java: {java[0] if java else 'not found'}; Python {platform.python_version()}; {versions}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="whole processes per variant; the median is shown")
    parser.add_argument("--data-runs", type=int, default=2, help="runs of the word count and join rows (default 2)")
    parser.add_argument("--gb", type=float, default=1.0, help="GiB of generated text and of orders (default 1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one process may take (default 600)")
    parser.add_argument("--sizes", default="10,100,1000,10000", help="stage counts to compile")
    parser.add_argument("--kfp-python", default=str(ROOT / ".venv-bench" / "bin" / "python"))
    parser.add_argument("--kfp-max", type=int, default=1000, help="largest pipeline kfp compiles (it grows ~n^2)")
    parser.add_argument("--quick", action="store_true", help="1 run, 8 MiB of data, 10 and 100 stages")
    parser.add_argument("--out", default=str(BENCH / "results" / "latest.md"))
    parser.add_argument("--only", default="cold,data,compile,size", help="which groups to measure")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.data_runs, args.gb, args.sizes = 1, 1, 8 / 1024, "10,100"
        args.kfp_max = min(args.kfp_max, 100)
    TIMEOUT[0] = args.timeout
    kfp_python = args.kfp_python if os.path.exists(args.kfp_python) else None
    only = set(args.only.split(","))
    started, load = time.perf_counter(), os.getloadavg()
    table = Table()
    steps: list[tuple[str, Callable[[Path], None]]] = [
        ("cold", lambda scratch: cold_and_warm(table, args.runs, scratch)),
        ("data", lambda scratch: chunk_task(table, args.runs, scratch, 8 if args.quick else 64)),
        ("data", lambda scratch: wordcount(table, args.data_runs, scratch, args.gb)),
        ("data", lambda scratch: join(table, args.data_runs, scratch, args.gb)),
        (
            "compile",
            lambda scratch: compile_times(
                table, args.runs, [int(n) for n in args.sizes.split(",")], kfp_python, args.kfp_max
            ),
        ),
        ("size", lambda scratch: sizes(table, scratch)),
        ("compile", lambda scratch: gcp_definition_sizes(table)),
    ]
    with tempfile.TemporaryDirectory(prefix="sparkflow-suite-") as scratch:
        for name, step in steps:
            if name in only:
                step(Path(scratch))
    elapsed = time.perf_counter() - started
    command = " ".join(["bench/suite.py", *sys.argv[1:]])
    report = "\n".join(
        [
            f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC with `{command}` in "
            f"{elapsed / 60:,.1f} min (medians of {args.runs} runs, {args.data_runs} for the word count and join; "
            f"each process stopped after {args.timeout:,.0f} s; load average {load[0]:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end).",
            "",
            *machine(),
            "",
            table.markdown(),
            "",
            "Targets:",
            *targets(table),
            *profile_sections(table),
        ]
    )
    print(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n", encoding="utf-8")
    raw = [
        {"group": r.group, "variant": r.variant, "unit": r.unit, "values": r.values, "peaks": r.peaks}
        for r in table.rows
    ]
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")


def _kfp_version(python: str | None) -> str:
    if python is None:
        return "not installed"
    found = subprocess.run([python, "-c", "import kfp; print(kfp.__version__)"], capture_output=True, text=True)
    return found.stdout.strip() or "not installed"


def _size(size: int) -> str:
    return f"{size / GiB:,.2f} GiB" if size >= GiB / 2 else f"{size / MiB:,.0f} MiB"


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
