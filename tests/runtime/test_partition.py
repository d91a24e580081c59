"""The partition phase (issue 28): reducers are runs of contiguous fine buckets sized by what the map tasks really
shuffled. The grouping rules alone first (contiguous, within the budget, at least one, skew named, empty buckets),
then the reducer files over real shuffle indexes, then a combined word count whose shuffle is a small part of its
input: far fewer reducers than the split's buckets, and the rows one plain PySpark job gives."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.errors import EventError
from sparkflow.layout import work_location
from sparkflow.loading import load_pipeline
from sparkflow.runtime import partition, shuffle
from sparkflow.runtime.execute import handle_event
from sparkflow.runtime.fanout import SKEW_FACTOR
from sparkflow.runtime.local import run_plan
from sparkflow.targets.local import LOCAL
from tests.examples import example
from tests.runtime.configs import runtime_config
from tests.runtime.reference import committed_rows, reference_outputs, rows


def covers_every_bucket(runs: list[tuple[int, int]], buckets: int) -> bool:
    """Runs in order, each non-empty, one starting where the last ended, from bucket 0 to the last."""
    return (
        runs[0][0] == 0
        and runs[-1][1] == buckets
        and all(low < high and (index == 0 or runs[index - 1][1] == low) for index, (low, high) in enumerate(runs))
    )


@pytest.mark.parametrize(
    ("sizes", "budget", "expected"),
    [
        ([5, 0, 5, 9, 1], 10, [(0, 3), (3, 5)]),  # the docstring's example: a run fills up to the budget exactly
        ([1] * 10, 100, [(0, 10)]),  # a small shuffle: one reducer for every bucket
        ([0] * 7, 10, [(0, 7)]),  # empty everywhere: still one reducer (it commits the empty output's schema)
        ([3, 30, 3, 3], 10, [(0, 1), (1, 2), (2, 4)]),  # a bucket over the budget is a run of its own
        ([10, 10, 10], 10, [(0, 1), (1, 2), (2, 3)]),  # buckets as large as the budget: one each, as before
        ([0, 0, 11, 0, 2], 10, [(0, 4), (4, 5)]),  # empty buckets start no run: no reducer reads nothing
        ([4, 0, 0, 7], 10, [(0, 3), (3, 4)]),
        ([4], 1, [(0, 1)]),
    ],
)
def test_reducers_are_contiguous_runs_within_the_budget(
    sizes: list[int], budget: int, expected: list[tuple[int, int]]
) -> None:
    runs = partition.group(sizes, budget)
    assert runs == expected
    assert covers_every_bucket(runs, len(sizes))
    for low, high in runs:  # over the budget only where one bucket alone is
        assert sum(sizes[low:high]) <= budget or len([size for size in sizes[low:high] if size]) == 1


def test_greedy_runs_never_leave_two_neighbours_that_fit_together() -> None:
    """Greedy: a run ends only because the next bucket would not fit, so no two neighbouring runs fit in one."""
    sizes = [(n * 7919) % 13 for n in range(500)]
    runs = partition.group(sizes, 40)
    assert covers_every_bucket(runs, 500)
    for (low, middle), (_, high) in pairwise(runs):
        assert sum(sizes[low:middle]) <= 40 < sum(sizes[low : middle + 1])
        assert sum(sizes[low:high]) > 40
    assert len(runs) < len(sizes) / 2


def test_skew_is_a_bucket_over_both_the_budget_and_the_mean() -> None:
    budget = 10
    hot = [1] * 20 + [SKEW_FACTOR * budget + 1] + [1] * 20
    assert partition.skewed(hot, budget, SKEW_FACTOR) == 20
    assert partition.skewed([SKEW_FACTOR * budget] + [0] * 9, budget, SKEW_FACTOR) is None  # not over the budget
    even = [SKEW_FACTOR * budget + 5] * 4  # evenly large: too few buckets planned, not skew
    assert partition.skewed(even, budget, SKEW_FACTOR) is None
    assert partition.skewed([0] * 5, budget, SKEW_FACTOR) is None


def test_a_reducer_file_names_one_range_per_map_object_its_buckets_are_in() -> None:
    """Two map objects of one input, three buckets: bucket 1 is empty in the first object, everything is empty in
    the second input. Buckets 1-2 make one range per object (contiguous bytes), none where they hold nothing; an
    input they are empty in everywhere gets a sample range, for its columns."""
    first = partition.MapObject("shuffle/a/chunk-00000/attempts/x/buckets.data", shuffle.Index(((5,), (), (7, 2))))
    second = partition.MapObject("shuffle/a/chunk-00001/attempts/y/buckets.data", shuffle.Index(((), (), ())))
    empty = partition.MapObject("shuffle/b/chunk-00000/attempts/z/buckets.data", shuffle.Index(((), (), ()), 4))
    objects = [[first, second], [empty]]
    assert partition.bucket_sizes(objects, 3) == [5, 0, 9]
    document = partition.reducer_file(objects, ["a", "b"], 1, 3)
    assert document == {
        "buckets": [1, 3],
        "bytes": 9,
        "inputs": [
            {"param": "a", "ranges": [[first.path, 5, [7, 2]]]},
            {"param": "b", "ranges": [], "sample": [empty.path, 0, [4]]},
        ],
    }
    ranges, sample = partition.reducer_ranges("s3://b/work", json.loads(json.dumps(document))["inputs"][0])
    assert ranges == [shuffle.Range(f"s3://b/work/{first.path}", 5, (7, 2))] and sample is None
    ranges, sample = partition.reducer_ranges("s3://b/work", document["inputs"][1])
    assert ranges == [] and sample == shuffle.Range(f"s3://b/work/{empty.path}", 0, (4,))


WORDS = """\
import sparkflow as sf
from pyspark.sql import functions as F
books = sf.source("books", "books.txt", format="text")
@sf.stage(partition="rows")
def words(lines):
    return lines.select(F.explode(F.split("value", " ")).alias("word")).where("word != ''")
def summed(partials):
    return partials.groupBy("word").agg(F.sum("count").alias("count"))
@sf.stage(partition_by="word", combine=summed)
def counts(words):
    return words.groupBy("word").count()
@sf.pipeline
def wordcount():
    return counts(words(books))
"""


@pytest.mark.spark
def test_a_combined_word_count_runs_far_fewer_reducers_than_buckets(spark: Any, tmp_path: Path) -> None:
    """640 KB of text over 40 distinct words in 64 KB chunks: the split plans a bucket per chunk's worth of input
    (10), but the map tasks shuffle one row per word and chunk, a few KB: one reducer takes them all."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "wordcount.py").write_text(WORDS)
    vocabulary = [f"w{n:02d}" for n in range(40)]
    line = " ".join(vocabulary[(n * 7) % 40] for n in range(60))
    (code / "books.txt").write_text("\n".join(f"{line} {vocabulary[n % 40]}" for n in range(3000)) + "\n")
    pipeline = load_pipeline(str(code / "wordcount.py"))
    summary = run_plan(
        plan_pipeline(pipeline, LOCAL),
        pipeline,
        storage_root=str(tmp_path / "store"),
        run_id="r",
        chunk_bytes=64 * 1024,
        keep_work=True,
    )
    assert summary.status == "succeeded", summary
    split = Path(work_location(str(tmp_path / "store"), "wordcount", "r", "counts")) / "split"
    buckets = json.loads((split / "plan.json").read_text())["buckets"]
    reducers = json.loads((split / partition.REDUCERS).read_text())["reducers"]
    assert buckets >= 8 and summary.nodes["counts"].buckets == len(reducers) <= buckets // 4, (buckets, reducers)
    assert reducers[0][0] == 0 and reducers[-1][1] == buckets
    assert json.loads((split / "reduce-items.json").read_text()) == [{"chunk": r} for r in range(len(reducers))]
    expected = reference_outputs(spark, pipeline)
    assert committed_rows(spark, summary.outputs["counts"]) == rows(expected["counts"])


def test_a_stage_split_by_rows_has_no_partition_phase(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(example("wordcount")))
    config = runtime_config(pipeline=pipeline, storage_root=str(tmp_path))
    event = {"version": 1, "pipeline": "wordcount", "node": "words", "phase": "partition"}
    with pytest.raises(EventError, match=r"stage 'words' is split by rows in plan '[0-9a-f]{16}': its phases are "):
        handle_event({**event, "run": {"id": "r1", "storage": f"{tmp_path}/"}}, config)
