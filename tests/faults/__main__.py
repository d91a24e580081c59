"""``make faults``: the long randomized fault campaign, then the load runs; prints both tables.

    python -m tests.faults [--seed N] [--faults 210] [--s3-share 0.15] [--budget 420] [--no-load] [--keep DIR]

Exits 1 when a run mismatched, fewer faults fired than asked for, or a load run failed. The seed is printed
first: ``--seed`` with it runs the same trials again (the same pipelines, kinds, tasks and points; when a
SIGKILL lands relative to other tasks still depends on timing).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from tests.faults.driver import campaign, table
from tests.faults.load import Measured, measure

LOADS = (("local", 200), ("local", 2000), ("moto", 30), ("moto", 300))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="seed of the trials (default: a new one, printed)")
    parser.add_argument("--faults", type=int, default=210, help="faults to fire in all (default 210)")
    parser.add_argument("--s3-share", type=float, default=0.15, help="share of runs with storage on moto's S3")
    parser.add_argument("--budget", type=float, default=420, help="seconds the campaign may take at most")
    parser.add_argument("--no-load", action="store_true", help="skip the load runs")
    parser.add_argument("--keep", type=Path, default=None, help="keep every trial's folder under this folder")
    arguments = parser.parse_args(argv)
    seed = arguments.seed if arguments.seed is not None else random.SystemRandom().randrange(10**6)
    started = time.monotonic()
    print(f"fault campaign: seed {seed}, at least {arguments.faults} faults", flush=True)

    with tempfile.TemporaryDirectory(prefix="sparkflow-faults-") as scratch:
        folder = arguments.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        tallies = campaign(
            seed,
            arguments.faults,
            folder,
            s3_share=arguments.s3_share,
            budget=arguments.budget,
            keep=arguments.keep is not None,
        )
    seconds = time.monotonic() - started
    print(f"\n{table(tallies)}\n")
    faults = sum(tally.faults for tally in tallies.values())
    mismatches = sum(tally.mismatches for tally in tallies.values())
    print(
        f"{sum(t.runs for t in tallies.values())} runs, {faults} faults fired, {mismatches} mismatches, {seconds:.0f} s"
    )
    for kind, tally in tallies.items():
        for problem in tally.problems[:5]:
            print(f"  {kind}: {problem[:400]}")

    loads: list[Measured] = []
    if not arguments.no_load:
        print("\nload runs (peak resident memory of the whole process tree, sampled every 50 ms):", flush=True)
        for kind, chunks in LOADS:
            loads.append(measure(kind, chunks))
            print(f"  {kind} {chunks} chunks: {loads[-1].seconds:.1f} s", flush=True)
        print(f"\n{load_table(loads)}\n")
        for failed in (item for item in loads if not item.ok):
            print(f"  {failed.kind} {failed.chunks}: {failed.detail}")
    print(f"make faults took {time.monotonic() - started:.0f} s (seed {seed})")
    ok = mismatches == 0 and faults >= arguments.faults and all(item.ok for item in loads)
    return 0 if ok else 1


def load_table(loads: list[Measured]) -> str:
    lines = [
        "| load run | chunks | seconds | peak memory, process tree | largest process | processes | output |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for item in loads:
        what = "local executor (duckdb workers)" if item.kind == "local" else "moto Step Functions, Distributed Map"
        verdict = "exact" if item.ok else "FAILED"
        lines.append(
            f"| {what} | {item.chunks} | {item.seconds:.1f} | {item.peak_tree_mib:.0f} MiB | "
            f"{item.peak_process_mib:.0f} MiB | {item.processes} | {verdict} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    from sparkflow.runtime.shutdown import exit_now

    exit_now(main(sys.argv[1:]))  # see sparkflow/runtime/shutdown.py: its exit code is make faults' verdict
