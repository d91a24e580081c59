"""How much of its input a stage writes out: the one rule the place pass and the estimate size stages with.

A stage's *shrink* is the bytes it writes per byte it reads (an aggregate or a filter writes less, an explode may
write more). Where it comes from, in order:

1. **measured**: ``sparkflow run --record-shrink`` writes, beside the pipeline file, ``<pipeline>.shrink.json``
   with each task's bytes in (its sources' and upstream outputs' files) and bytes out (its committed output), as
   the local run saw them. Commit it: ``sparkflow compile`` and ``sparkflow plan`` read it. The ratio is applied
   linearly to any input size: for an aggregate that is an upper bound (new keys grow slower than the input), and
   a tiny sample overstates it (a Parquet file's fixed footer), so measure on a sample of some megabytes.
2. **combined** (a ``partition_by=`` stage with ``combine=``, no measurement): its map tasks shuffle partial
   results, one row per key and chunk, and its output is the merge of them. We assume they are at most
   :data:`COMBINED_SHRINK` of the input. This is an assumption, not a measurement; ``sparkflow plan`` says so.
3. otherwise the stage writes as many bytes as it reads (1.0), as before; ``sparkflow plan`` says so.

A combined stage's shuffle (the partial results its map tasks write) is taken to be its output's size: the merge
can only make it smaller.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sparkflow.plan import Plan

#: The default bound on a combined stage's partial results, per input byte (see the module's docstring, rule 2).
COMBINED_SHRINK = 0.1
#: What a shrink file's name ends with, after the pipeline's name.
SUFFIX = ".shrink.json"
_VERSION = 1

Basis = Literal["measured", "combined", "assumed"]


@dataclass(frozen=True)
class Measured:
    """One task's bytes in and out in a local run (its shrink is their ratio)."""

    bytes_in: int
    bytes_out: int

    @property
    def ratio(self) -> float:
        return self.bytes_out / self.bytes_in if self.bytes_in else 1.0


@dataclass(frozen=True)
class Shrink:
    """A stage's shrink and where it comes from."""

    ratio: float
    basis: Basis


def of(task_id: str, *, combined: bool, measured: Mapping[str, Measured]) -> Shrink:
    """The shrink of task ``task_id`` (``combined``: a key stage with ``combine=``), by the module's rules."""
    found = measured.get(task_id)
    if found is not None and found.bytes_in > 0:
        return Shrink(found.ratio, "measured")
    if combined:
        return Shrink(COMBINED_SHRINK, "combined")
    return Shrink(1.0, "assumed")


def from_run(plan: Plan, outputs: Mapping[str, int | None], sources: Mapping[str, int]) -> dict[str, Measured]:
    """Each dataset task's bytes in and out in a finished run: ``outputs`` the bytes each node committed (None: not
    known), ``sources`` each source's bytes. A task whose bytes are not all known is left out."""
    found: dict[str, Measured] = {}
    for task in plan.tasks:
        out = outputs.get(task.id)
        if task.output != "dataset" or out is None:
            continue
        fused = {inner.id for inner in task.fused}
        reads = [read for item in (*task.fused, task) for read in item.inputs if read.carries_rows]
        sizes = [sources.get(read.node) if read.kind == "source" else outputs.get(read.node) for read in reads]
        known = [size for read, size in zip(reads, sizes, strict=True) if read.node not in fused]
        if known and all(size is not None for size in known):
            found[task.id] = Measured(sum(size for size in known if size is not None), out)
    return found


def path_for(pipeline_file: str, pipeline_name: str) -> str:
    """Where a pipeline's shrink file is: beside its module."""
    return os.path.join(os.path.dirname(os.path.abspath(pipeline_file)), f"{pipeline_name}{SUFFIX}")


def load(pipeline_file: str, pipeline_name: str) -> dict[str, Measured]:
    """The measurements of a pipeline's shrink file (none when it has none)."""
    path = path_for(pipeline_file, pipeline_name)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    return {name: Measured(int(item["bytes_in"]), int(item["bytes_out"])) for name, item in document["stages"].items()}


def record(
    pipeline_file: str, pipeline_name: str, measured: Mapping[str, Measured], sample: Mapping[str, int] | None = None
) -> str:
    """Write ``measured`` to the pipeline's shrink file (replacing the stages it names, keeping the others) as
    deterministic JSON, with the bytes of each source it was measured on (``sample``); return its path."""
    path = path_for(pipeline_file, pipeline_name)
    stages = {**load(pipeline_file, pipeline_name), **measured}
    document: dict[str, object] = {
        "version": _VERSION,
        "pipeline": pipeline_name,
        "about": "bytes each stage wrote per byte it read in a local run (sparkflow run --record-shrink); "
        "sparkflow compile and plan size stages with it",
        "stages": {
            name: {"bytes_in": item.bytes_in, "bytes_out": item.bytes_out, "ratio": round(item.ratio, 6)}
            for name, item in sorted(stages.items())
        },
    }
    if sample:
        document["measured_on_source_bytes"] = dict(sorted(sample.items()))
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path
