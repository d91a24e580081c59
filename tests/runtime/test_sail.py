"""engine="sail" runs the stage's unchanged PySpark code on Sail and gives what one plain PySpark job gives: a stage
with a module-level Python UDF, a pandas UDF, a lag window and a timestamp cast, whole and split, compared by rows
and by the Parquet types of the files each engine writes. What Sail cannot run is an EngineUnsupported error that
names the API and the user's line and is not retried; a Sail stage runs where only /tmp is writable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from sparkflow.targets.local import LOCAL
from tests.runtime.reference import committed_rows, reference_outputs, rows
from tests.runtime.test_tpch_parity import parquet_schema

pytestmark = pytest.mark.spark

SESSIONS = textwrap.dedent(
    """
    import pandas as pd
    from pyspark.sql import DataFrame, Window, functions as F

    import sparkflow as sf

    events = sf.source("events", "events.jsonl", format="json")


    @F.udf("string")
    def section(url):
        return url.split("/")[1] if url else None


    @F.pandas_udf("double")
    def minutes(seconds: pd.Series) -> pd.Series:
        return seconds / 60.0


    @sf.stage(partition="rows")
    def parsed(events: DataFrame) -> DataFrame:
        return events.select(
            "user", F.to_timestamp("ts").alias("ts"), section("url").alias("section"), F.col("bytes").cast("int")
        )


    @sf.stage(partition_by="user")
    def gaps(parsed: DataFrame) -> DataFrame:
        previous = F.lag("ts").over(Window.partitionBy("user").orderBy("ts"))
        seconds = F.col("ts").cast("long") - previous.cast("long")
        return parsed.select(
            "user", "ts", "section", "bytes", seconds.alias("gap_s"), minutes(seconds.cast("double")).alias("gap_min")
        )


    @sf.pipeline
    def sessions():
        return gaps(parsed(events))
    """
)


def events(count: int = 300) -> str:
    lines = []
    for index in range(count):
        user = f"u{index % 7}"
        stamp = f"2026-03-{1 + index % 5:02d}T{index % 24:02d}:{(index * 7) % 60:02d}:{(index * 13) % 60:02d}"
        url = None if index % 11 == 0 else f"/{['docs', 'blog', 'shop'][index % 3]}/page{index}"
        lines.append(json.dumps({"user": user, "ts": stamp, "url": url, "bytes": index * 37 % 5000}))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def sessions_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sessions")
    (folder / "pipeline.py").write_text(SESSIONS, encoding="utf-8")
    (folder / "events.jsonl").write_text(events(), encoding="utf-8")
    return folder / "pipeline.py"


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_udfs_a_window_and_a_timestamp_cast_on_sail_equal_one_plain_job(
    spark: Any, sessions_pipeline: Path, tmp_path: Path, split: bool
) -> None:
    pipeline = load_pipeline(str(sessions_pipeline))
    summary = run_plan(
        plan_pipeline(pipeline, LOCAL),
        pipeline,
        storage_root=str(tmp_path),
        engine="sail",
        chunk_bytes=4096 if split else None,
    )
    assert summary.status == "succeeded", summary.error
    assert ((summary.nodes["gaps"].buckets or 1) > 1) == split
    expected = reference_outputs(spark, pipeline)["gaps"]
    location = summary.outputs["gaps"]
    assert committed_rows(spark, location) == rows(expected)
    expected.coalesce(1).write.parquet(str(tmp_path / "spark"))
    on_sail, on_spark = parquet_schema(Path(location)), parquet_schema(tmp_path / "spark")
    assert [column[:2] for column in on_sail] == [column[:2] for column in on_spark]


UNSUPPORTED = textwrap.dedent(
    """
    from pyspark.sql import DataFrame

    import sparkflow as sf

    numbers = sf.source("numbers", "numbers.csv", schema="n INT")


    @sf.stage
    def doubled(numbers: DataFrame) -> DataFrame:
        pairs = numbers.rdd.map(lambda row: (row.n, row.n * 2))
        return pairs.toDF(["n", "twice"])


    @sf.pipeline(engine="sail")
    def rdd_user():
        return doubled(numbers)
    """
)


def test_an_api_sail_lacks_is_engine_unsupported_naming_the_line_and_not_retried(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(UNSUPPORTED, encoding="utf-8")
    (tmp_path / "numbers.csv").write_text("n\n1\n2\n", encoding="utf-8")
    pipeline = load_pipeline(str(tmp_path / "pipeline.py"))
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "store"))
    assert summary.status == "failed"
    node = summary.nodes["doubled"]
    assert node.attempts == 1  # final: not retried
    assert node.error is not None
    assert f"{tmp_path / 'pipeline.py'}:11" in node.error
    assert "the sail engine cannot run DataFrame.rdd" in node.error and 'engine="spark"' in node.error


# Where Lambda runs a function: the code (the working directory) and every other folder read-only, /tmp writable.
READ_ONLY = """#!/usr/bin/env bash
for folder in /work /root /usr /etc /opt /home /var "$PWD"; do
  [ -d "$folder" ] || continue
  mount --rbind "$folder" "$folder" && mount -o remount,bind,ro "$folder" || exit 90
done
touch "$PWD/probe" 2>/dev/null && exit 91
exec "$@"
"""

SAIL_RUN = """
import sys
from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from sparkflow.targets.local import LOCAL
pipeline = load_pipeline("pipeline.py")
summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=sys.argv[1], engine="sail", chunk_bytes=4096)
print("RESULT", summary.status, summary.nodes["gaps"].rows, summary.error)
"""


def test_a_sail_stage_runs_where_only_tmp_is_writable(sessions_pipeline: Path, tmp_path: Path) -> None:
    """The code, the interpreter and every folder but /tmp read-only and no HOME, as in Lambda: a split run whose
    Sail worker process starts its server, spills and writes only under /tmp."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], check=False).returncode:
        pytest.skip("unprivileged mount namespaces (unshare -rm) are not available here")
    code = tmp_path / "code"
    shutil.copytree(sessions_pipeline.parent, code)
    script = tmp_path / "read-only.sh"
    script.write_text(READ_ONLY, encoding="utf-8")
    script.chmod(0o755)
    storage = Path("/tmp") / f"sparkflow-test-{os.getpid()}-{tmp_path.name}"
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("SPARK", "SAIL", "HOME"))}
    environment.update({"TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        done = subprocess.run(
            ["unshare", "-rm", str(script), sys.executable, "-c", SAIL_RUN, str(storage)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=code,
            timeout=300,
            check=False,
        )
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RESULT succeeded 300 None" in done.stdout, done.stdout + done.stderr[-3000:]


def test_an_empty_result_is_committed_with_its_columns(sessions_pipeline: Path, tmp_path: Path) -> None:
    """A filter that keeps nothing: Sail writes no file at all, so the engine writes one with the columns and no rows,
    as Spark does (found by the oracle's Sail campaign)."""
    import pyarrow.dataset as ds

    (tmp_path / "pipeline.py").write_text(
        SESSIONS.replace(
            "def gaps(parsed: DataFrame) -> DataFrame:\n",
            'def gaps(parsed: DataFrame) -> DataFrame:\n    parsed = parsed.where("bytes < 0")\n',
        ),
        encoding="utf-8",
    )
    shutil.copy(sessions_pipeline.parent / "events.jsonl", tmp_path / "events.jsonl")
    pipeline = load_pipeline(str(tmp_path / "pipeline.py"))
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "s"), engine="sail")
    assert summary.status == "succeeded", summary.error
    table = ds.dataset(summary.outputs["gaps"], format="parquet").to_table()
    assert table.num_rows == 0
    assert table.column_names == ["user", "ts", "section", "bytes", "gap_s", "gap_min"]
