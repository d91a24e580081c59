"""`sparkflow run` on every example gives what one plain PySpark job gives; values pass through the KV store."""

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
from tests.examples import example, long_but
from tests.runtime.reference import reference_outputs, rows

pytestmark = pytest.mark.spark


def run_example(path: Path, storage: Path, **options: Any) -> Any:
    pipeline = load_pipeline(str(path))
    return pipeline, run_plan(plan_pipeline(pipeline, "aws"), pipeline, storage_root=str(storage), **options)


def committed_rows(spark: Any, location: str) -> list[tuple[Any, ...]]:
    manifest = json.loads((Path(location) / "_COMMITTED.json").read_text())
    return rows(spark.read.parquet(*(str(Path(location) / name) for name in manifest["files"])))


@pytest.mark.parametrize("path", long_but("wordcount", "clickstream", "revenue", "daily-revenue"))
def test_local_run_equals_plain_pyspark(spark: Any, path: Path, tmp_path: Path) -> None:
    pipeline, summary = run_example(path, tmp_path)
    assert summary.status == "succeeded", summary
    expected = reference_outputs(spark, pipeline)
    for sink, location in summary.outputs.items():
        assert committed_rows(spark, location) == rows(expected[sink]), sink
        assert summary.nodes[sink].rows == len(rows(expected[sink]))


def test_value_stage_passes_through_sqlite(spark: Any, tmp_path: Path) -> None:
    from sparkflow.runtime.kv import open_kv

    pipeline, summary = run_example(example("clickstream"), tmp_path)
    threshold = summary.nodes["slow_threshold"]
    assert threshold.output == f"kv:clickstream/{summary.run_id}/slow_threshold"
    database = tmp_path / "clickstream" / summary.run_id / "_kv.sqlite"
    store = open_kv(f"sqlite:///{database}")
    try:
        assert store.get(f"clickstream/{summary.run_id}/slow_threshold") == threshold.value
    finally:
        store.close()
    reference = reference_outputs(spark, pipeline)["slow_pages"]
    assert committed_rows(spark, summary.outputs["slow_pages"]) == rows(reference)


def test_value_stage_passes_through_dynamodb(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    path = example("clickstream")
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="values",
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        pipeline, summary = run_example(path, tmp_path, kv="dynamodb://values")
        assert summary.status == "succeeded", summary
        key = f"clickstream/{summary.run_id}/slow_threshold"
        item = dynamodb.get_item(TableName="values", Key={"key": {"S": key}}, ConsistentRead=True)["Item"]
        assert json.loads(item["value"]["S"]) == summary.nodes["slow_threshold"].value
    expected = reference_outputs(spark, pipeline)["slow_pages"]
    assert committed_rows(spark, summary.outputs["slow_pages"]) == rows(expected)


def test_cli_run_json_summary(spark: Any, tmp_path: Path) -> None:
    path = example("wordcount")
    books = tmp_path / "books.txt"
    books.write_text("to be or not to be\nthat is the question\n")
    result = CliRunner().invoke(
        main, ["run", str(path), "--storage", str(tmp_path / "store"), "--input", f"books={books}", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "succeeded"
    assert set(summary["nodes"]) == {"counts", "top"}
    assert summary["nodes"]["counts"]["fused"] == ["words"]  # words ran inside counts' map tasks
    assert summary["nodes"]["counts"]["rows"] == 8
    top = committed_rows(spark, summary["outputs"]["top"])
    assert ("be", 2) in top and ("to", 2) in top and len(top) == 8


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: folder / "missing", r"source 'books': nothing at '.*missing': fix the path, or pass "),
        (lambda folder: folder, r"source 'books': the folder '.*' holds no data files: fix the path"),
    ],
    ids=["missing", "empty folder"],
)
def test_a_local_source_is_checked_before_anything_runs(tmp_path: Path, make: Any, message: str) -> None:
    from sparkflow.errors import InputError

    pipeline = load_pipeline(str(example("wordcount")))
    (tmp_path / "books" / "_hidden").mkdir(parents=True)
    (tmp_path / "books" / "_hidden" / "part.txt").write_text("not data: hidden\n")
    declared = f"{example('wordcount')}:{line_of(example('wordcount'), 'books = sf.source')}: "
    with pytest.raises(InputError, match=re.escape(declared) + message):
        run_plan(
            plan_pipeline(pipeline, LOCAL),
            pipeline,
            storage_root=str(tmp_path / "root"),
            inputs={"books": str(make(tmp_path / "books"))},
        )
    assert not (tmp_path / "root" / "wordcount").exists()  # nothing ran, nothing was written


def line_of(path: Path, text: str) -> int:
    return next(number for number, content in enumerate(path.read_text().splitlines(), 1) if text in content)
