"""The split pass: which stages run split, with what chunk budget, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparkflow.compiler import CompileError, compile_pipeline, plan_pipeline
from sparkflow.compiler.chunking import MiB, chunk_bytes
from sparkflow.engines import ENGINES
from sparkflow.loading import load_pipeline
from sparkflow.targets.aws import check, limits
from tests.examples import example


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pipeline_under_test.py"
    path.write_text("import sparkflow as sf\n" + body)
    return path


def test_examples_split_their_partitioned_stages() -> None:
    plan = plan_pipeline(load_pipeline(str(example("revenue"))), "aws")
    enrich, by_country = plan.task("enrich"), plan.task("revenue_by_country")
    assert enrich.fanout is not None and enrich.fanout.mode == "key"
    assert enrich.fanout.split == ("orders", "customers")  # a join: both inputs bucketed by the same key
    assert by_country.fanout is not None and by_country.fanout.split == ("enriched",)
    (words,) = plan_pipeline(load_pipeline(str(example("wordcount"))), "aws").task("counts").fused
    assert words.fanout is not None and words.fanout.mode == "rows" and words.fanout.split == ("lines",)


def test_small_declared_input_runs_whole(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "small = sf.source('small', 'small.csv', size='10MB')\n"
        "@sf.stage(partition='rows')\n"
        "def copy(small):\n    return small\n"
        "@sf.pipeline\ndef p():\n    return copy(small)\n",
    )
    assert plan_pipeline(load_pipeline(str(path)), "aws").task("copy").fanout is None


def test_chunk_size_forces_a_split_and_sets_the_budget(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "small = sf.source('small', 'small.csv', size='10MB')\n"
        "@sf.stage(partition='rows', chunk_size='1MB')\n"
        "def copy(small):\n    return small\n"
        "@sf.pipeline\ndef p():\n    return copy(small)\n",
    )
    fanout = plan_pipeline(load_pipeline(str(path)), "aws").task("copy").fanout
    assert fanout is not None and fanout.chunk_bytes == MiB


def test_chunk_budget_follows_the_model() -> None:
    model = ENGINES["spark"].chunk_model
    expected = int(min(2048 * MiB * 0.6 / model.expansion, model.throughput * 900 * 0.5, 10_240 * MiB / 3))
    assert chunk_bytes(2048, 900, "spark", limits.FUNCTION) == expected
    assert chunk_bytes(10_240, 900, "spark", limits.FUNCTION) > chunk_bytes(2048, 900, "spark", limits.FUNCTION)
    assert chunk_bytes(10_240, 60, "spark", limits.FUNCTION) < chunk_bytes(10_240, 900, "spark", limits.FUNCTION)


def test_a_whole_stage_forced_onto_a_function_too_small_for_it_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "huge = sf.source('huge', 's3://bucket/huge/', format='parquet', size='500GB')\n"
        "@sf.stage(memory='10GB', placement='function')\n"
        "def everything(huge):\n    return huge\n"
        "@sf.pipeline\ndef p():\n    return everything(huge)\n",
    )
    with pytest.raises(
        CompileError, match=r"pipeline_under_test.py:3: stage 'everything' runs on its whole input \(500.0 GB"
    ):
        plan_pipeline(load_pipeline(str(path)), "aws")


def test_split_stage_history_and_state_do_not_grow_with_chunks() -> None:
    pipeline = load_pipeline(str(example("wordcount")))
    plan = plan_pipeline(pipeline, "aws")
    document = json.loads(compile_pipeline(pipeline, "aws"))
    maps = [state for state in document["States"].values() if state["Type"] == "Map"]
    assert len(maps) == 2  # counts (with words fused into it): map and reduce
    for state in maps:
        assert state["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
        assert state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        assert state["ResultPath"] is None
        (item,) = state["ItemProcessor"]["States"].values()
        assert item["OutputPath"] is None and item["Retry"]  # each chunk retried on its own, answering {}
    assert check.estimate_history_events(plan, document) < 200  # the same for 1 chunk or 10,000
