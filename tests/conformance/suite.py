"""Running entries on engines and classing them: what ``python -m tests.conformance`` and the sample in ``make test``
share."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from sparkflow.engines import NAMES
from tests.conformance.compare import classify
from tests.conformance.extract import Entry
from tests.conformance.process import EngineProcess
from tests.conformance.report import Verdicts
from tests.conformance.results import Outcome

#: The engine every other engine is compared with.
REFERENCE = "spark"
#: The engines compared with it.
OTHERS: tuple[str, ...] = tuple(name for name in NAMES if name != REFERENCE)
#: An entry's time bound, in seconds: a few seconds is typical; the slowest, `functions.approx_count_distinct` on
#: DuckDB (sqlframe's `spark.range(100000)`), takes 35 s on an idle machine and over 60 s on a busy one.
TIMEOUT = 120.0


def run_engine(
    engine: str,
    entries: Iterable[Entry],
    folder: Path,
    timeout: float = TIMEOUT,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Outcome]:
    """Each of ``entries`` run on ``engine``, one worker process for all (a new one after a timeout)."""
    worker = EngineProcess(engine, folder / engine)
    chosen = list(entries)
    outcomes: dict[str, Outcome] = {}
    started = time.monotonic()
    try:
        for index, entry in enumerate(chosen, 1):
            outcomes[entry.name] = worker.run(entry, timeout)
            if progress and (index % 50 == 0 or index == len(chosen)):
                progress(f"{engine}: {index}/{len(chosen)} entries, {time.monotonic() - started:.0f} s")
    finally:
        worker.stop()
    if progress:
        progress(
            f"{engine}: {worker.starts} worker(s), start-up {worker.start_seconds:.1f} s, "
            f"all {time.monotonic() - started:.0f} s"
        )
    return outcomes


def verdicts(entries: Iterable[Entry], reference: dict[str, Outcome], found: dict[str, dict[str, Outcome]]) -> Verdicts:
    """entry -> engine -> verdict, for each engine of ``found`` (engine -> entry -> outcome) against ``reference``
    (an entry the reference could not run was not sent to the other engines)."""
    classed: Verdicts = {}
    for entry in entries:
        expected = reference[entry.name]
        classed[entry.name] = {
            engine: classify(expected, outcomes.get(entry.name, Outcome(entry.name)), engine)
            for engine, outcomes in found.items()
        }
    return classed
