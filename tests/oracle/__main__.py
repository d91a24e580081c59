"""The long campaign: ``python -m tests.oracle [--cases N] [--seed S] [--runs all|fallback] [--engines E,...]
[--keep DIR]``.

Runs cases ``S`` to ``S + N - 1`` (default: 300 cases from seed 1), each compared with one plain PySpark job, whole
and split on every engine (``--runs all``, the default) or a rotation (``--runs fallback``); ``--engines sail``
keeps only the runs of the engines named. Prints a
line per case, a summary table (cases, runs, mismatches, failures, refusals, seconds per run kind) and, for every
case that went wrong, its seed, its ``pipeline.py``, the runs' errors and a few differing rows. Exits 1 on any
mismatch or failure. The folders of cases that went wrong are kept (under ``--keep``, default a new temporary folder),
and every case's outcome is appended to ``results.jsonl`` there: run again with the same ``--keep`` and a campaign
that was killed goes on where it stopped (cases already in the journal are not run again).

Repeat one case: ``python -m tests.oracle --seed 17 --cases 1``. Choose the short run's seeds again (after changing the
generator): ``python -m tests.oracle --pick 30 --seed 1 --cases 200``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from tests.oracle.generate import pick_seeds
from tests.oracle.run import ALL_RUNS, ENGINES, RUN_MODES, CaseResult, check_case, default_spark, runs_for

_STATUSES = ("ok", "mismatch", "known", "failed", "refused", "thin")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.oracle", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300, help="how many cases (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="the first case's seed (default 1)")
    parser.add_argument("--runs", choices=RUN_MODES, default="all", help="which runs each case gets (default all)")
    parser.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help="comma-separated engines whose runs a case keeps, e.g. sail for a campaign of one engine (default all)",
    )
    parser.add_argument("--keep", type=Path, default=None, help="where case folders go (default: a temporary folder)")
    parser.add_argument("--shown", type=int, default=5, help="differing rows shown per output (default 5)")
    parser.add_argument(
        "--pick",
        type=int,
        metavar="N",
        help="print N seeds among --cases seeds from --seed on that cover what the short run must cover, and exit",
    )
    args = parser.parse_args(argv)
    engines = tuple(name.strip() for name in args.engines.split(",") if name.strip())
    if not engines or set(engines) - set(ENGINES):
        parser.error(f"--engines {args.engines!r}: give some of {', '.join(ENGINES)}")
    if args.pick:
        from tests.oracle.test_oracle import REQUIRED

        with tempfile.TemporaryDirectory(prefix="sparkflow-oracle-pick-") as scratch:
            picked = pick_seeds(REQUIRED, args.pick, range(args.seed, args.seed + args.cases), Path(scratch))
        print(", ".join(str(seed) for seed in picked))
        return 0
    root = args.keep or Path(tempfile.mkdtemp(prefix="sparkflow-oracle-"))
    root.mkdir(parents=True, exist_ok=True)
    journal = root / "results.jsonl"
    seeds = range(args.seed, args.seed + args.cases)
    done = {record["seed"]: record for record in _read(journal) if record["seed"] in seeds}
    if done:
        print(f"{len(done)} of the {len(seeds)} cases are already in {journal}: running the others", flush=True)
    started = time.monotonic()
    spark = default_spark() if len(done) < len(seeds) else None
    for seed in seeds:
        if seed in done:
            continue
        case_started = time.monotonic()
        runs = [(kind, engine) for kind, engine in runs_for(seed, args.runs) if engine in engines]
        result = check_case(spark, seed, root / f"case-{seed}", runs)
        record = _record(result, time.monotonic() - case_started, args.shown)
        with open(journal, "a", encoding="utf-8") as handle:  # one line per case: a killed campaign resumes
            handle.write(json.dumps(record) + "\n")
        done[seed] = record
        states = ", ".join(f"{run['label']} {run['status']} {run['seconds']:.1f}s" for run in record["runs"])
        verdict = "ok" if record["ok"] else "WRONG"
        print(f"seed {seed:5d} {verdict:5s} {record['seconds']:6.1f}s  {states}", flush=True)
        if result.reference_error:
            print(f"           the reference failed: {result.reference_error}", flush=True)
        if result.clean:
            shutil.rmtree(root / f"case-{seed}", ignore_errors=True)
    records = [done[seed] for seed in seeds]
    print()
    print(summary(records, time.monotonic() - started))
    for record in records:
        if not record["clean"]:
            print()
            print("=" * 100)
            print(record["report"])
    bad = sum(1 for record in records if not record["ok"])
    print()
    print(f"{len(records)} cases, {bad} with a mismatch or failure; case folders and {journal.name} under {root}")
    sys.stdout.flush()
    return 1 if bad else 0


def _record(result: CaseResult, seconds: float, shown: int) -> dict[str, Any]:
    """What the journal keeps of a case: enough for the summary and the report."""
    return {
        "seed": result.case.seed,
        "ok": result.ok,
        "clean": result.clean,
        "seconds": round(seconds, 3),
        "reference_seconds": round(result.reference_seconds, 3),
        "reference_error": result.reference_error,
        "runs": [{"label": run.label, "status": run.status, "seconds": round(run.seconds, 3)} for run in result.runs],
        "report": "" if result.clean else result.report(shown),
    }


def _read(journal: Path) -> list[dict[str, Any]]:
    if not journal.exists():
        return []
    records = []
    for line in journal.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # the last line of a campaign killed while writing it
            continue
    return records


def summary(records: list[dict[str, Any]], seconds: float) -> str:
    """The table: one line per run kind and engine (and the reference), then the total."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    spent: dict[str, float] = defaultdict(float)
    for record in records:
        counts["reference"]["failed" if record["reference_error"] else "ok"] += 1
        spent["reference"] += record["reference_seconds"]
        for run in record["runs"]:
            counts[run["label"]][run["status"]] += 1
            spent[run["label"]] += run["seconds"]
    header = (
        "| runs | count | ok | mismatches | known differences | failures | refused (skew) | thin | seconds | mean s |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    labels = ["reference", *[f"{kind}/{engine}" for kind, engine in ALL_RUNS]]
    for label in labels:
        found = counts.get(label)
        if not found:
            continue
        total = sum(found.values())
        cells = [found[status] for status in _STATUSES]
        lines.append(
            f"| {label} | {total} | {' | '.join(str(cell) for cell in cells)} | {spent[label]:.1f} | "
            f"{spent[label] / total:.2f} |"
        )
    runs = sum(sum(counts[label].values()) for label in labels[1:])
    everything: Counter[str] = Counter()
    for label in labels[1:]:
        everything.update(counts[label])
    everything["failed"] += counts["reference"]["failed"]
    cases_seconds = sum(record["seconds"] for record in records)
    lines.append(
        f"| **all runs** | {runs} | {' | '.join(str(everything[status]) for status in _STATUSES)} | "
        f"{cases_seconds:.1f} | |"
    )
    bad = sum(1 for record in records if not record["ok"])
    lines.insert(
        0,
        f"cases: {len(records)}, runs: {runs}, cases with a mismatch or failure: {bad}, "
        f"seconds: {cases_seconds:.1f} (cases), {seconds:.1f} (this invocation)",
    )
    lines.insert(1, "")
    return "\n".join(lines)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # No interpreter finalization: Arrow's thread pools can abort a finished process (docs/concepts/guarantees.md).
    os._exit(code)
