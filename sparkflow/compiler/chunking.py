"""How big a chunk one task can take: the stated model behind the split pass.

A chunk must fit the task's memory, finish well within its timeout, and fit its local disk (inputs are copied
there, outputs written there before upload):

    chunk = min(memory x DRIVER_SHARE / expansion,  throughput x timeout x TIME_SHARE,  scratch / SCRATCH_COPIES)

``expansion`` is how many bytes of engine memory one byte of input needs at peak, ``throughput`` how many
input bytes per second one task processes; both per engine. ``bench/chunk_model.py`` measured Spark on this
project's machines (2 cores, a word count over 50-100 MiB of text): 23-26 MiB/s, and 0.2-0.4 bytes of peak
memory above the start-up footprint per input byte. The model keeps 20 MiB/s and 4.0: a stage's own work (a
join, a wide aggregate, a sort) holds far more than a word count, and a wrong guess here costs more chunks, not
a failed task. The DuckDB numbers are estimates from PERFORMANCE-NOTES (about 4x Spark's speed on 200 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkflow.targets.base import FunctionLimits

MiB = 1024**2
DRIVER_SHARE = 0.6  # the JVM's share of the function's memory (the rest: Python, the OS, the page cache)
TIME_SHARE = 0.5  # half the timeout: room for a slow start, a slow store, a retry of a storage call
SCRATCH_COPIES = 3  # input copy, engine spill, output before upload
MIN_CHUNK = 1 * MiB


@dataclass(frozen=True)
class EngineModel:
    """Measured behaviour of an engine on one task."""

    expansion: float  # peak engine memory per input byte
    throughput: float  # input bytes per second per task


MODELS = {
    "spark": EngineModel(expansion=4.0, throughput=20 * MiB),
    "duckdb": EngineModel(expansion=2.0, throughput=40 * MiB),
}


def chunk_bytes(memory_mb: int, timeout_s: int, engine: str, limits: FunctionLimits) -> int:
    """The largest chunk a task of this memory, timeout and engine handles safely."""
    model = MODELS[engine]
    by_memory = memory_mb * MiB * DRIVER_SHARE / model.expansion
    by_time = model.throughput * timeout_s * TIME_SHARE
    candidates = [by_memory, by_time]
    if limits.scratch_bytes is not None:
        candidates.append(limits.scratch_bytes.value / SCRATCH_COPIES)
    return max(MIN_CHUNK, int(min(candidates)))


# A whole stage may read this many times what fits its memory and time at once: Spark streams and spills to
# disk, and the chunk model is conservative. Local disk is the hard bound (inputs are copied there first).
WHOLE_HEADROOM = 8


def whole_capacity(memory_mb: int, engine: str, scratch_bytes: int | None, *, timeout_s: int | None = None) -> int:
    """The most input bytes one machine (a function or a container) should read in a whole stage.

    ``scratch_bytes`` is its local disk; None when the disk is memory (Cloud Run), whose part beyond the
    engine's share then holds the copies. ``timeout_s`` bounds the time (None: no time limit to plan for).
    """
    model = MODELS[engine]
    compute = [memory_mb * MiB * DRIVER_SHARE / model.expansion]
    if timeout_s is not None:
        compute.append(model.throughput * timeout_s * TIME_SHARE)
    disk = scratch_bytes if scratch_bytes is not None else memory_mb * MiB * (1 - DRIVER_SHARE)
    return int(min(min(compute) * WHOLE_HEADROOM, disk / SCRATCH_COPIES))
