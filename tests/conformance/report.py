"""The suite's outputs: the per-engine table in docs/engines.md (between fixed markers), the checked-in baseline
(entry -> engine -> class), and the regressions against it. Everything is sorted, so a run without a change writes
the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.conformance.compare import CLASSES, Verdict
from tests.conformance.explained import EXPLAINED, VARIES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "engines.md"
BASELINE = Path(__file__).resolve().parent / "baseline.json"
#: What engine="auto" holds a stage's code against (sparkflow.compiler.passes.engine_choice): every API where an
#: engine does not give Spark's answer, from the baseline and from :data:`FOUND_ELSEWHERE`.
DIFFERENCES = ROOT / "sparkflow" / "engine_differences.json"
#: Differences PySpark's examples do not show and sparkflow's own suites found (the oracle, the TPC-H-like workload),
#: each pinned by the test named beside it; docs/engines.md explains them.
FOUND_ELSEWHERE: dict[str, dict[str, str]] = {
    "sail": {
        # test_engine_parity.py::test_known_difference_sail_round_in_sql_text: SQL text keeps Sail's own semantics
        # (sparkflow/runtime/sail_semantics.py rewrites the calls of pyspark.sql.functions only)
        "functions.expr": "values differ",
        "DataFrame.selectExpr": "values differ",
        # test_engine_parity.py::test_known_difference_sail_to_date_of_a_timestamp_string
        "functions.to_date": "unsupported",
        # test_sail.py::test_an_api_sail_lacks_is_engine_unsupported_naming_the_line_and_not_retried
        "DataFrame.rdd": "unsupported",
    },
}
BEGIN = "<!-- conformance:begin (written by `make conformance`; edit tests/conformance/explained.py instead) -->"
END = "<!-- conformance:end -->"

#: entry -> engine -> verdict.
Verdicts = dict[str, dict[str, Verdict]]
#: entry -> engine -> class.
Baseline = dict[str, dict[str, str]]


def counts(verdicts: Verdicts, engine: str) -> Counter[str]:
    """How many entries of each class ``engine`` has."""
    return Counter(by_engine[engine].klass for by_engine in verdicts.values() if engine in by_engine)


def summary(verdicts: Verdicts, engines: list[str]) -> str:
    """The counts table: one row per engine, one column per class (``not run on spark`` apart: not counted)."""
    counted = CLASSES[:-1]
    lines = [
        f"| engine | {' | '.join(counted)} | entries | equal share |",
        f"|---|{'---:|' * (len(counted) + 2)}",
    ]
    for engine in engines:
        found = counts(verdicts, engine)
        total = sum(found[klass] for klass in counted)
        share = f"{100 * found['equal'] / total:.0f} %" if total else "-"
        cells = " | ".join(str(found[klass]) for klass in counted)
        lines.append(f"| {engine} | {cells} | {total} | {share} |")
    return "\n".join(lines)


def render(verdicts: Verdicts, engines: list[str]) -> str:
    """The generated part of docs/engines.md: the counts, why values or types differ, the by-entry table, and the
    entries Spark cannot run here."""
    skipped = sorted(name for name, by_engine in verdicts.items() if _not_run(by_engine))
    run = sorted(name for name in verdicts if name not in skipped)
    lines = [
        BEGIN,
        "",
        f"{len(run)} entries ({sum(1 for name in run if name.startswith('functions.'))} functions), "
        f"each compared with Spark on {', '.join(f'`{engine}`' for engine in engines)}; "
        f"{len(skipped)} more that Spark itself cannot run here are listed at the end.",
        "",
        summary(verdicts, engines),
        "",
        "#### Why values or types differ",
        "",
        "| entry | engine | class | why |",
        "|---|---|---|---|",
    ]
    for name in run:
        for engine in engines:
            verdict = verdicts[name].get(engine)
            if verdict is not None and verdict.klass in ("values differ", "types differ"):
                lines.append(f"| `{name}` | {engine} | {verdict.klass} | {_cell(_why(name, engine, verdict))} |")
    lines += [
        "",
        "#### Every entry",
        "",
        f"| entry | {' | '.join(engines)} |",
        f"|---|{'---|' * len(engines)}",
    ]
    for name in run:
        cells = " | ".join(verdicts[name][engine].klass if engine in verdicts[name] else "-" for engine in engines)
        lines.append(f"| `{name}` | {cells} |")
    lines += ["", "#### Not run on Spark here", "", "| entry | why |", "|---|---|"]
    for name in skipped:
        reason = next(iter(verdicts[name].values())).reason
        lines.append(f"| `{name}` | {_cell(reason)} |")
    partial = [(name, next(iter(verdicts[name].values())).partial) for name in run]
    lines += [
        "",
        "#### Partly run on Spark here (classed on the other examples)",
        "",
        "| entry | the first example Spark cannot run |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {_cell(reason)} |" for name, reason in partial if reason]
    lines += ["", END]
    return "\n".join(lines)


def write_docs(text: str, path: Path = DOCS) -> None:
    """Put ``text`` (from :func:`render`, markers included) in place of what is between the markers of ``path``."""
    current = path.read_text(encoding="utf-8")
    start, stop = current.find(BEGIN), current.find(END)
    if start < 0 or stop < start:
        raise SystemExit(f"{path} has no conformance markers ({BEGIN!r} ... {END!r})")
    path.write_text(current[:start] + text + current[stop + len(END) :], encoding="utf-8")


def read_baseline(path: Path = BASELINE) -> Baseline:
    if not path.exists():
        return {}
    found: Baseline = json.loads(path.read_text(encoding="utf-8"))
    return found


def write_baseline(baseline: Baseline, path: Path = BASELINE) -> None:
    path.write_text(json.dumps(baseline, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def write_differences(baseline: Baseline, path: Path = DIFFERENCES) -> None:
    """Every API where an engine does not give Spark's answer, by engine (what ``engine="auto"`` reads)."""
    found: dict[str, dict[str, str]] = {}
    for name, by_engine in baseline.items():
        for engine, klass in by_engine.items():
            if klass in ("types differ", "values differ", "unsupported"):
                found.setdefault(engine, {})[name] = klass
    for engine, extra in FOUND_ELSEWHERE.items():
        for name, klass in extra.items():
            found.setdefault(engine, {}).setdefault(name, klass)
    path.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def classes(verdicts: Verdicts) -> Baseline:
    """The baseline's form of ``verdicts``: entry -> engine -> class."""
    return {name: {engine: found.klass for engine, found in by_engine.items()} for name, by_engine in verdicts.items()}


def regressions(baseline: Baseline, verdicts: Verdicts) -> list[str]:
    """``entry (engine): class`` for every entry and engine whose baseline class is ``equal`` and is no longer."""
    found = []
    for name, by_engine in sorted(verdicts.items()):
        for engine, verdict in sorted(by_engine.items()):
            if baseline.get(name, {}).get(engine) == "equal" and verdict.klass != "equal":
                found.append(f"{name} ({engine}): {verdict.klass}: {verdict.reason}")
    return found


def merged(baseline: Baseline, verdicts: Verdicts, accept: bool) -> Baseline:
    """The baseline to write: ``verdicts``' classes over ``baseline``; a regressed entry keeps ``equal`` unless
    ``accept`` (so that the regression fails every run until it is fixed or accepted)."""
    updated = {name: dict(by_engine) for name, by_engine in baseline.items()}
    for name, by_engine in classes(verdicts).items():
        for engine, klass in by_engine.items():
            kept = updated.setdefault(name, {})
            if accept or kept.get(engine) != "equal":
                kept[engine] = klass
    return updated


def _not_run(by_engine: dict[str, Verdict]) -> bool:
    return bool(by_engine) and all(verdict.klass == "not run on spark" for verdict in by_engine.values())


def _why(name: str, engine: str, verdict: Verdict) -> str:
    """The cause (tests/conformance/explained.py), then the first differing result (not for an entry whose values
    change from run to run)."""
    explained = EXPLAINED.get((name, engine))
    if not explained:
        return verdict.reason
    return explained if (name, engine) in VARIES else f"{explained}: {verdict.reason}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
