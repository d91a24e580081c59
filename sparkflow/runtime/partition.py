"""The partition phase of a key stage: how many reducers, from what the map tasks really shuffled.

The split task fixes the number of *fine* buckets P before any row is read (from the input's size), and every map
task hashes its rows into those P buckets. How much each bucket holds is known only once the map phase is done: a
combined word count shuffles a few percent of its input, so P reducers sized from the input would each read almost
nothing. As Spark's adaptive execution coalesces shuffle partitions, one task between map and reduce reads every map
task's index once, adds up each fine bucket's bytes, and gives each reducer a run of **contiguous** fine buckets
whose bytes stay within the stage's chunk budget. Contiguous buckets are one contiguous byte range of each map object
(:meth:`sparkflow.runtime.shuffle.Index.span`), so a reducer still makes one ranged GET per map object, and it reads
its ranges from one small file this phase wrote for it instead of reading M commit manifests itself: a run makes
M + R x (1 + M) GETs at most, not 2 x M x R.

This module holds the pure rules (grouping, the reducer files' shape) and the reads; the phase itself, which also
refuses skew and writes the files in order, is :func:`sparkflow.runtime.fanout.run_phase`'s ``partition``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sparkflow.errors import InputError
from sparkflow.runtime import shuffle, storage

SHUFFLE = "shuffle"  # the map tasks' shuffle parts, below the stage's work folder (see map_part)
REDUCE = "reduce"  # the reducers' files, below the split folder
REDUCERS = "reducers.json"  # the phase's answer, written last: a file that exists means the phase is complete
#: Manifests read (and reducer files written) at once: the phase waits on storage round trips, not on its CPU.
CONCURRENCY = 16

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class MapObject:
    """One map task's shuffle object: where it is, relative to the stage's work folder, and its index."""

    path: str
    index: shuffle.Index


def concurrently(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``function`` over ``items``, :data:`CONCURRENCY` at a time, results in the items' order."""
    if len(items) <= 1:
        return [function(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor  # here: it imports logging, and the runtime imports this module

    with ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(items)), thread_name_prefix="sparkflow-partition") as pool:
        return list(pool.map(function, items))


def map_part(param: str, chunk: int) -> str:
    """Where a map task of a key stage commits its shuffle object, relative to the stage's work folder."""
    return posixpath.join(SHUFFLE, param, f"chunk-{chunk:05d}")


def read_objects(work: str, inputs: list[dict[str, Any]], stage: str) -> list[list[MapObject]]:
    """Per split input (the split plan's ``inputs``), every map task's shuffle object, in chunk order: each map
    task's commit manifest is read once, :data:`CONCURRENCY` at a time."""
    wanted = [(item["param"], chunk) for item in inputs for chunk in range(item["chunks"])]

    def read(wanted_one: tuple[str, int]) -> MapObject:
        param, chunk = wanted_one
        relative = map_part(param, chunk)
        manifest = storage.read_manifest(storage.join(work, relative))
        if manifest is None:
            raise InputError(f"stage {stage!r}: chunk {chunk} of {param!r} is not mapped")
        return MapObject(posixpath.join(relative, manifest["files"][0]), shuffle.Index.from_json(manifest["index"]))

    found = iter(concurrently(read, wanted))
    return [[next(found) for _ in range(item["chunks"])] for item in inputs]


def bucket_sizes(objects: list[list[MapObject]], buckets: int) -> list[int]:
    """Each fine bucket's bytes, over every map object of every split input."""
    sizes = [0] * buckets
    for per_input in objects:
        for found in per_input:
            for bucket, size in enumerate(found.index.sizes()):
                sizes[bucket] += size
    return sizes


def group(sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """Contiguous runs ``[low, high)`` of the fine buckets, one per reducer, greedily: a run takes the next bucket
    while its bytes stay within ``budget``; a bucket larger than the budget is a run with no other bytes (skew is
    refused before, see :func:`skewed`). Empty buckets never start a run: they join the run they follow, so no
    reducer reads nothing. At least one run, covering every bucket.

    Example: ``group([5, 0, 5, 9, 1], 10) == [(0, 3), (3, 5)]``.
    """
    runs: list[tuple[int, int]] = []
    low, held = 0, 0
    for bucket, size in enumerate(sizes):
        if held and size and held + size > budget:
            runs.append((low, bucket))
            low, held = bucket, 0
        held += size
    runs.append((low, max(len(sizes), low + 1)))
    return runs


def skewed(sizes: list[int], budget: int, factor: int) -> int | None:
    """The first fine bucket larger than ``factor`` times both the budget and the mean bucket (a few keys hold most
    rows), or None. Both conditions matter: tiny chunks make every bucket larger than the budget (Parquet's
    per-file overhead), and evenly large buckets are no skew (the split planned too few buckets)."""
    mean = sum(sizes) / max(1, len(sizes))
    return next((bucket for bucket, size in enumerate(sizes) if size > factor * budget and size > factor * mean), None)


def reducer_file(objects: list[list[MapObject]], params: list[str], low: int, high: int) -> dict[str, Any]:
    """What reducer ``[low, high)`` reads, per split input: one range ``[path, start, lengths]`` per map object
    where its buckets hold anything (paths relative to the work folder), and where none does, a ``sample`` range
    that carries the input's columns (a reducer must still build an empty DataFrame of the right schema)."""
    inputs: list[dict[str, Any]] = []
    size = 0
    for param, per_input in zip(params, objects, strict=True):
        ranges = [found for found in (item.index.span(item.path, low, high) for item in per_input) if found]
        described: dict[str, Any] = {"param": param, "ranges": [_encode(found) for found in ranges]}
        if not ranges:
            described["sample"] = _encode(per_input[0].index.sample(per_input[0].path))
        size += sum(found.end - found.start for found in ranges)
        inputs.append(described)
    return {"buckets": [low, high], "bytes": size, "inputs": inputs}


def reducer_uri(split_folder: str, reducer: int) -> str:
    return storage.join(split_folder, REDUCE, f"r-{reducer:05d}.json")


def reducer_ranges(work: str, described: dict[str, Any]) -> tuple[list[shuffle.Range], shuffle.Range | None]:
    """One input's ranges of a reducer file (absolute again) and its sample range (None when it has ranges)."""
    ranges = [_decode(work, item) for item in described["ranges"]]
    sample = described.get("sample")
    return ranges, None if sample is None else _decode(work, sample)


def _encode(found: shuffle.Range) -> list[Any]:
    return [found.uri, found.start, list(found.lengths)]


def _decode(work: str, item: list[Any]) -> shuffle.Range:
    path, start, lengths = item
    return shuffle.Range(storage.join(work, path), int(start), tuple(int(n) for n in lengths))
