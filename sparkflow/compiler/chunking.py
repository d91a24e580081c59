"""How big a chunk one task can take: the stated model behind the split pass.

A chunk must fit the task's memory, finish well within its timeout, and fit its local disk (inputs are copied
there, outputs written there before upload):

    chunk = min(memory x share / expansion,  throughput x timeout x TIME_SHARE,  scratch / SCRATCH_COPIES)

``share`` is the part of the task's memory the engine may take, ``expansion`` how many bytes of engine memory one
byte of input needs at peak, ``throughput`` how many input bytes per second one task processes; all three per
engine (:mod:`sparkflow.engines`). ``bench/chunk_model.py`` measured Spark on this
project's machines (2 cores, a word count over 50-100 MiB of text): 23-26 MiB/s, and 0.2-0.4 bytes of peak
memory above the start-up footprint per input byte. The model keeps 20 MiB/s and 4.0: a stage's own work (a
join, a wide aggregate, a sort) holds far more than a word count, and a wrong guess here costs more chunks, not
a failed task. The DuckDB and Sail numbers are estimates from PERFORMANCE-NOTES (about 4x Spark's speed on 200 MB).
"""

from __future__ import annotations

from sparkflow.engines import ENGINES, MiB
from sparkflow.targets.base import FunctionLimits

TIME_SHARE = 0.5  # half the timeout: room for a slow start, a slow store, a retry of a storage call
SCRATCH_COPIES = 3  # input copy, engine spill, output before upload
MIN_CHUNK = 1 * MiB
#: The machine the throughputs were measured on: a machine with more vCPUs is taken to scale with them.
MODEL_VCPUS = 2


def task_seconds(input_bytes: float, engine: str, *, start_s: float, vcpus: float = MODEL_VCPUS) -> float:
    """How long one task of ``engine`` takes on ``input_bytes``: its start-up plus the bytes over the engine's
    throughput, scaled by the machine's vCPUs over the model's. The estimate times every task with it, and the place
    pass keeps a stage off a placement where it would run past its timeout."""
    return start_s + input_bytes / (ENGINES[engine].chunk_model.throughput * vcpus / MODEL_VCPUS)


def chunk_bytes(memory_mb: int, timeout_s: int, engine: str, limits: FunctionLimits) -> int:
    """The largest chunk a task of this memory, timeout and engine handles safely."""
    spec = ENGINES[engine]
    model = spec.chunk_model
    by_memory = memory_mb * MiB * spec.memory_share / model.expansion
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
    spec = ENGINES[engine]
    model = spec.chunk_model
    compute = [memory_mb * MiB * spec.memory_share / model.expansion]
    if timeout_s is not None:
        compute.append(model.throughput * timeout_s * TIME_SHARE)
    disk = scratch_bytes if scratch_bytes is not None else memory_mb * MiB * (1 - spec.memory_share)
    return int(min(min(compute) * WHOLE_HEADROOM, disk / SCRATCH_COPIES))
