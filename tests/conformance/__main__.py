"""The whole suite: ``python -m tests.conformance [--engines E ...] [--entries NAME ...] [--accept] [--keep DIR]``
(``make conformance``).

Runs every entry (:mod:`tests.conformance.extract`) on Spark, then on each other engine, one worker process per
engine, one engine at a time; classes each entry on each engine against Spark (:mod:`tests.conformance.compare`);
prints the counts per class for each engine. A whole run (every entry, every engine) also writes the table in
docs/engines.md, the baseline, tests/conformance/baseline.json, and what ``engine="auto"`` reads,
sparkflow/engine_differences.json. An entry whose baseline class is ``equal`` and is
no longer is a regression: the run names it and exits 1, and the baseline keeps ``equal`` for it until it is fixed
or the new class is accepted with ``--accept``.

Names given to ``--entries`` are entries (``functions.date_add``) or prefixes ending in a dot (``functions.``); such
a run writes nothing but still checks its entries against the baseline. ``--keep DIR`` keeps the workers' logs and
every outcome (``DIR/outcomes.pickle``); ``--outcomes DIR/outcomes.pickle`` reports on kept outcomes instead of
running (after a change to tests/conformance/explained.py, say).
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
from tests.conformance.results import Outcome
from tests.conformance.suite import OTHERS, REFERENCE, TIMEOUT, run_engine, verdicts

#: engine -> entry -> outcome, the reference's included.
Outcomes = dict[str, dict[str, Outcome]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", choices=OTHERS, default=list(OTHERS), help="engines besides Spark")
    parser.add_argument("--entries", nargs="+", metavar="NAME", help="only these entries (or prefixes: 'functions.')")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds per entry (default {TIMEOUT:g})")
    parser.add_argument("--accept", action="store_true", help="write regressed classes into the baseline too")
    parser.add_argument("--keep", type=Path, help="a folder to run the workers in and keep their logs and outcomes in")
    parser.add_argument("--outcomes", type=Path, help="report on the outcomes.pickle a run kept instead of running")
    args = parser.parse_args(argv)
    chosen = _chosen(args.entries)
    if not chosen:
        parser.error("no entry matches --entries")
    started = time.monotonic()
    if args.outcomes:
        with open(args.outcomes, "rb") as handle:
            found: Outcomes = pickle.load(handle)
    else:
        with tempfile.TemporaryDirectory(prefix="sparkflow-conformance-") as scratch:
            found = run(chosen, args.engines, args.keep or Path(scratch), args.timeout)
    code = finish(chosen, args.engines, found, args.accept, whole=args.entries is None)
    print(f"{time.monotonic() - started:.0f} s")
    return code


def run(chosen: list[Entry], engines: list[str], folder: Path, timeout: float) -> Outcomes:
    """Run ``chosen`` on Spark, then what Spark ran on each of ``engines``, with workers in ``folder``; keep the
    outcomes in ``folder/outcomes.pickle``."""
    print(f"{len(chosen)} entries on {REFERENCE} and {', '.join(engines)}; workers in {folder}", flush=True)
    reference = run_engine(REFERENCE, chosen, folder, timeout, _progress)
    runnable = [entry for entry in chosen if spark_ran(reference[entry.name])]
    found = {REFERENCE: reference}
    for engine in engines:
        found[engine] = run_engine(engine, runnable, folder, timeout, _progress)
    with open(folder / "outcomes.pickle", "wb") as handle:
        pickle.dump(found, handle)
    return found


def finish(chosen: list[Entry], engines: list[str], found: Outcomes, accept: bool, whole: bool) -> int:
    """Class ``found``, print the counts and the regressions; write the docs' table and the baseline when the
    outcomes are a whole run's (every entry, every engine). 1 when an entry regressed (0 with ``accept``)."""
    missing = [entry.name for entry in chosen if entry.name not in found[REFERENCE]]
    others = {engine: found[engine] for engine in engines if engine in found}
    classed = verdicts([entry for entry in chosen if entry.name not in missing], found[REFERENCE], others)
    print()
    print(report.summary(classed, list(others)))
    baseline = report.read_baseline()
    regressed = report.regressions(baseline, classed)
    if whole and not missing and list(others) == list(OTHERS):
        report.write_docs(report.render(classed, list(others)))
        written = report.merged(baseline, classed, accept)
        report.write_baseline(written)
        report.write_differences(written)
        paths = (report.DOCS, report.BASELINE, report.DIFFERENCES)
        print(f"\nwrote {', '.join(str(path.relative_to(report.ROOT)) for path in paths)}")
    elif missing:
        print(f"\n{len(missing)} entries have no outcome (e.g. {missing[0]}): nothing written")
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
    # No interpreter finalization: Arrow's thread pools can abort a finished process (docs/concepts/guarantees.md).
    os._exit(code)
