"""Measure the two numbers of the chunk-size model (sparkflow/compiler/chunking.py) for the Spark engine:

* throughput: input bytes one task processes per second (word count over text, whole process minus its
  start-up, which a tiny input measures);
* expansion: peak memory of the task's processes per input byte above the start-up footprint.

Run: ``.venv/bin/python bench/chunk_model.py [--sizes 25,50,100]`` (MiB of text). Prints one row per size and
the model's constants next to what was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from measure import tree_rss

from sparkflow.engines import ENGINES, MiB

PIPELINE = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F
    import sparkflow as sf

    books = sf.source("books", "books.txt", format="text")

    @sf.stage
    def counts(lines: DataFrame) -> DataFrame:
        words = lines.select(F.explode(F.split(F.lower("value"), r"[^a-z']+")).alias("word")).where("word != ''")
        return words.groupBy("word").count()

    @sf.pipeline
    def model():
        return counts(books)
    """
)
WORDS = [f"w{n}" for n in range(50_000)]


def write_text(path: Path, size: int) -> None:
    rng = random.Random(7)
    with open(path, "w") as handle:
        written = 0
        while written < size:
            line = " ".join(rng.choices(WORDS, k=12)) + "\n"
            handle.write(line)
            written += len(line)


def run_once(folder: Path, run: str) -> tuple[float, int]:
    """Wall seconds and peak resident memory (bytes) of one whole-process stage run, JVM included.

    The JVM is a grandchild of this process that nobody waits for, so resource usage of children misses it:
    the process tree's resident memory is sampled from /proc every 50 ms instead.
    """
    event = {"version": 1, "pipeline": "model", "node": "counts", "run": {"id": run, "storage": f"{folder}/store/"}}
    env = {**os.environ, "SPARKFLOW_PIPELINE": str(folder / "pipeline.py"), "SPARKFLOW_STORAGE_ROOT": str(folder)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "sparkflow.runtime", json.dumps(event)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"the stage failed (exit {process.returncode})")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="25,50,100", help="MiB of text per measurement, comma-separated")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="sparkflow-model-") as scratch:
        folder = Path(scratch)
        (folder / "pipeline.py").write_text(PIPELINE)
        write_text(folder / "books.txt", 64 * 1024)
        base_seconds, base_peak = run_once(folder, "base")
        print(f"start-up (64 KiB input): {base_seconds:.2f} s, peak {base_peak / MiB:,.0f} MiB")
        print(f"{'input MiB':>10} {'seconds':>8} {'MiB/s':>7} {'peak MiB':>9} {'expansion':>10}")
        for size in sizes:
            write_text(folder / "books.txt", size * MiB)
            seconds, peak = run_once(folder, f"s{size}")
            throughput = size / max(seconds - base_seconds, 0.01)
            expansion = max(peak - base_peak, 0) / (size * MiB)
            print(f"{size:>10} {seconds:>8.2f} {throughput:>7.1f} {peak / MiB:>9,.0f} {expansion:>10.2f}")
    model = ENGINES["spark"].chunk_model
    print(f"model (spark): throughput {model.throughput / MiB:.0f} MiB/s, expansion {model.expansion:.1f}")


if __name__ == "__main__":
    main()
