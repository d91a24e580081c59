"""The fuse pass: a row-wise stage runs inside the map tasks of the split stage it feeds, when nothing else
reads it; chains and both sides of a join fuse; the result of a run is what the unfused stages give."""

from __future__ import annotations

import json
from pathlib import Path

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.plan import Parallel, Run, Sequence
from tests.compiler.test_split_pass import write
from tests.examples import example

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def test_wordcount_counts_words_in_one_task_per_chunk() -> None:
    plan = plan_pipeline(load_pipeline(str(example("wordcount"))), "aws")
    assert [task.id for task in plan.tasks] == ["counts", "top"]
    counts = plan.task("counts")
    assert [fused.id for fused in counts.fused] == ["words"]
    assert plan.schedule == Sequence((Run("counts"), Run("top")))
    definition = compile_pipeline(load_pipeline(str(example("wordcount"))), "aws")
    maps = [state for state in json.loads(definition)["States"].values() if state["Type"] == "Map"]
    assert len(maps) == 2  # counts' map and reduce; words has no fan-out of its own any more
    assert '"words"' in definition  # named in the events: the map tasks apply it to each chunk


def test_chains_and_both_sides_of_a_join_fuse_but_a_shared_stage_does_not() -> None:
    plan = plan_pipeline(load_pipeline(str(RESOURCES / "fusion.py")), "aws")
    assert [(task.id, [fused.id for fused in task.fused]) for task in plan.tasks] == [
        ("tidy", []),  # read by spend and by_country: written once, read by both
        ("spend", ["paid", "priced"]),  # upstream first
        ("by_country", []),
        ("report", []),
    ]
    assert plan.task("spend").upstream == {"tidy"}
    assert plan.schedule == Sequence((Run("tidy"), Parallel((Run("spend"), Run("by_country"))), Run("report")))


def test_the_fused_stage_takes_the_larger_resources_and_the_smaller_chunk(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "big = sf.source('big', 's3://b/big/', format='text', size='100GB')\n"
        "@sf.stage(partition='rows', memory='4GB', chunk_size='64MB', retries=5)\n"
        "def parse(big):\n    return big\n"
        "@sf.stage(partition_by='value', timeout='10m', chunk_size='256MB')\n"
        "def count(parse):\n    return parse.groupBy('value').count()\n"
        "@sf.pipeline\ndef p():\n    return count(parse(big))\n",
    )
    (task,) = plan_pipeline(load_pipeline(str(path)), "aws").tasks
    assert task.fanout is not None
    assert (task.memory_mb, task.timeout_s, task.retries, task.fanout.chunk_bytes) == (4096, 900, 5, 64 * 1024**2)


def test_no_fusion_across_engines_into_a_whole_stage_or_out_of_a_returned_stage(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "big = sf.source('big', 's3://b/big/', format='text', size='100GB')\n"
        "@sf.stage(partition='rows', engine='duckdb')\ndef fast(big):\n    return big\n"
        "@sf.stage(partition='rows')\ndef slow(fast):\n    return fast\n"
        "@sf.stage(partition='rows')\ndef kept(slow):\n    return slow\n"
        "@sf.stage(timeout='1h')\ndef whole(kept):\n    return kept\n"  # 100 GB whole: serverless Spark's 22 minutes
        "@sf.pipeline\ndef p():\n    kept_rows = kept(slow(fast(big)))\n    return whole(kept_rows), kept_rows\n",
    )
    plan = plan_pipeline(load_pipeline(str(path)), "aws")
    assert [(task.id, [fused.id for fused in task.fused]) for task in plan.tasks] == [
        ("fast", []),  # another engine than its consumer
        ("kept", ["slow"]),  # kept is returned, and whole takes it whole: it fuses nothing into them
        ("whole", []),
    ]
