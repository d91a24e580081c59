"""Whole-process measurements shared by the benches: wall seconds and peak resident memory of a process tree.

The JVM that PySpark starts is a child of the Python process that nobody waits for, so ``wait4``'s rusage of
children misses it: the tree's resident memory (VmRSS summed over the process and all its descendants, JVM and
DuckDB workers included) is sampled from /proc every 50 ms instead. Time runs from the start of the process to
its exit (its output goes to files, not pipes, so a JVM still shutting down does not hold the clock).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

SAMPLE_SECONDS = 0.05


@dataclass(frozen=True)
class Sample:
    """One measured process: wall seconds, peak resident bytes of its tree, and what it printed."""

    seconds: float
    peak_rss: int
    stdout: str


class TimedOut(RuntimeError):
    """The process ran longer than it was allowed to; it and its descendants were stopped."""


def run_measured(
    command: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None, timeout: float = 3600
) -> Sample:
    """Run ``command`` to its end; raise SystemExit with the end of its stderr when it fails, :class:`TimedOut`
    (after killing its whole process group: JVM and workers too) when it runs over ``timeout`` seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), env=env, cwd=cwd, stdout=out, stderr=err, start_new_session=True)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            if time.perf_counter() - started > timeout:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise TimedOut(f"stopped after {timeout:.0f} s")
            time.sleep(SAMPLE_SECONDS)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        if process.returncode != 0:
            tail = err.read().decode("utf-8", "replace")[-3000:]
            raise SystemExit(f"{' '.join(command[:4])} ... failed (exit {process.returncode}):\n{tail}")
    return Sample(seconds, peak, stdout)


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (Linux /proc; children lists where the kernel has them)."""
    total, frontier, seen = 0, [root], {root}
    while frontier:
        pid = frontier.pop()
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    children = [int(child) for child in handle.read().split()]
                frontier.extend(child for child in children if child not in seen)
                seen.update(children)
        except (OSError, ValueError):
            continue  # the process ended while it was read
    return total


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))
