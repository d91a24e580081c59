"""The whole suite: ``python -m tests.conformance [--engines E ...] [--entries NAME ...] [--accept] [--keep DIR]``
(``make conformance``).

Runs every entry (:mod:`tests.conformance.extract`) on Spark, then on each other engine, one worker process per
engine, one engine at a time; classes each entry on each engine against Spark (:mod:`tests.conformance.compare`);
prints the counts per class for each engine. A whole run (every entry, every engine) also writes the table in
docs/engines.md and the baseline, tests/conformance/baseline.json. An entry whose baseline class is ``equal`` and is
no longer is a regression: the run names it and exits 1, and the baseline keeps ``equal`` for it until it is fixed
or the new class is accepted with ``--accept``.

Names given to ``--entries`` are entries (``functions.date_add``) or prefixes ending in a dot (``functions.``); such
a run writes nothing but still checks its entries against the baseline.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

from tests.conformance import report
from tests.conformance.compare import spark_ran
from tests.conformance.extract import Entry, entries
from tests.conformance.suite import OTHERS, REFERENCE, TIMEOUT, run_engine, verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", choices=OTHERS, default=list(OTHERS), help="engines besides Spark")
    parser.add_argument("--entries", nargs="+", metavar="NAME", help="only these entries (or prefixes: 'functions.')")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds per entry (default {TIMEOUT:g})")
    parser.add_argument("--accept", action="store_true", help="write regressed classes into the baseline too")
    parser.add_argument(
        "--keep", type=Path, help="a folder to run the workers in and keep their logs and outcomes.pickle in"
    )
    args = parser.parse_args(argv)
    chosen = _chosen(args.entries)
    if not chosen:
        parser.error("no entry matches --entries")
    whole = args.entries is None and list(args.engines) == list(OTHERS)
    with tempfile.TemporaryDirectory(prefix="sparkflow-conformance-") as scratch:
        return run(chosen, args.engines, args.keep or Path(scratch), args.timeout, args.accept, whole)


def run(chosen: list[Entry], engines: list[str], folder: Path, timeout: float, accept: bool, whole: bool) -> int:
    """Run ``chosen`` on Spark and ``engines`` with workers in ``folder``; report, and write when ``whole``."""
    started = time.monotonic()
    print(f"{len(chosen)} entries on {REFERENCE} and {', '.join(engines)}; workers in {folder}", flush=True)
    reference = run_engine(REFERENCE, chosen, folder, timeout, _progress)
    runnable = [entry for entry in chosen if spark_ran(reference[entry.name])]
    found = {engine: run_engine(engine, runnable, folder, timeout, _progress) for engine in engines}
    with open(folder / "outcomes.pickle", "wb") as handle:
        pickle.dump({REFERENCE: reference, **found}, handle)
    classed = verdicts(chosen, reference, found)
    print()
    print(report.summary(classed, engines))
    baseline = report.read_baseline()
    regressed = report.regressions(baseline, classed)
    if whole:
        report.write_docs(report.render(classed, engines))
        report.write_baseline(report.merged(baseline, classed, accept))
        print(f"\nwrote {report.DOCS.relative_to(report.ROOT)} and {report.BASELINE.relative_to(report.ROOT)}")
    print(f"{time.monotonic() - started:.0f} s")
    if regressed:
        print(f"\n{len(regressed)} regression(s): entries equal in the baseline that are no longer", file=sys.stderr)
        for line in regressed:
            print(f"  {line}", file=sys.stderr)
        return 0 if accept else 1
    return 0


def _chosen(names: list[str] | None) -> list[Entry]:
    if not names:
        return list(entries())
    return [
        entry
        for entry in entries()
        if any(entry.name == name or (name.endswith(".") and entry.name.startswith(name)) for name in names)
    ]


def _progress(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no interpreter finalization: Arrow's thread pools can abort a finished process (README)
