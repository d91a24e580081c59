"""The conformance suite's fixed sample: entries of every theme, on every engine, each in the class the baseline
holds (``make conformance`` runs them all and writes the baseline); and the parts of the suite on their own.

Spark runs in this process on the test session's SparkSession while each other engine's worker process runs the same
entry, so the sample takes about as long as Spark alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.conformance import arrow, report
from tests.conformance.capture import run_entry
from tests.conformance.compare import Verdict, classify
from tests.conformance.explained import EXPLAINED, VARIES
from tests.conformance.extract import Entry, Example, by_name, pyspark_root
from tests.conformance.process import EngineProcess
from tests.conformance.results import Outcome, Result
from tests.conformance.suite import OTHERS, TIMEOUT, verdicts

#: The sample, by theme: entries that are equal, differ or are unsupported on one engine or another.
SAMPLE: dict[str, tuple[str, ...]] = {
    "dates": ("functions.date_add", "functions.datediff", "functions.months_between", "functions.to_timestamp"),
    "strings": ("functions.regexp_replace", "functions.split", "functions.levenshtein", "functions.trim"),
    "math": ("functions.round", "functions.log", "functions.floor", "functions.degrees"),
    "arrays and maps": ("functions.array_contains", "functions.slice", "functions.explode", "functions.create_map"),
    "aggregates": ("functions.sum", "functions.count_if", "functions.max_by", "GroupedData.sum"),
    "windows": ("functions.row_number", "functions.lag", "functions.ntile", "Window.rowsBetween"),
    "JSON": ("functions.get_json_object", "functions.from_json", "functions.json_object_keys"),
    "casts": ("Column.cast", "Column.try_cast", "functions.to_date"),
    "UDFs": ("functions.udf", "functions.call_udf"),
}


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process in UTC while Spark runs the sample here (PySpark gives naive timestamps in the process's time
    zone; the workers run in UTC)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.spark
def test_the_sample_is_in_the_baseline_classes(spark: Any, tmp_path: Path, utc: None) -> None:
    entries = [by_name()[name] for names in SAMPLE.values() for name in names]
    baseline = report.read_baseline()
    workers = {engine: EngineProcess(engine, tmp_path / engine) for engine in OTHERS}
    for worker in workers.values():
        worker.start()  # the engines start while Spark runs the first entry
    reference: dict[str, Outcome] = {}
    found: dict[str, dict[str, Outcome]] = {engine: {} for engine in OTHERS}
    try:
        for entry in entries:
            for worker in workers.values():
                worker.submit(entry, TIMEOUT)
            reference[entry.name] = run_entry(entry, spark, TIMEOUT)
            for engine, worker in workers.items():
                found[engine][entry.name] = worker.outcome()
    finally:
        for worker in workers.values():
            worker.stop()
    classed = verdicts(entries, reference, found)
    wrong = [
        f"{name} ({engine}): baseline {baseline.get(name, {}).get(engine)!r}, now {verdict.klass!r}: {verdict.reason}"
        for name, by_engine in classed.items()
        for engine, verdict in by_engine.items()
        if baseline.get(name, {}).get(engine) != verdict.klass
    ]
    assert not wrong, "\n".join(["classes other than the baseline's (run make conformance):", *wrong])
    assert all(worker.starts == 1 for worker in workers.values())


def test_every_theme_has_an_equal_and_a_different_entry_on_each_engine() -> None:
    """The sample shows both sides of each engine (what agrees and what does not), from the baseline."""
    baseline = report.read_baseline()
    for engine in OTHERS:
        seen = [baseline[name][engine] for names in SAMPLE.values() for name in names]
        assert "equal" in seen and len(set(seen)) > 2, engine


def test_every_difference_in_the_baseline_has_its_cause() -> None:
    """docs/engines.md gives the cause of every `values differ` and `types differ` (and only of those)."""
    differing = {
        (name, engine)
        for name, by_engine in report.read_baseline().items()
        for engine, klass in by_engine.items()
        if klass in ("values differ", "types differ")
    }
    assert sorted(differing - set(EXPLAINED)) == [], "add their causes to tests/conformance/explained.py"
    assert sorted(set(EXPLAINED) - differing) == [], "these no longer differ: remove them from explained.py"
    assert set(VARIES) <= set(EXPLAINED)


def test_entries_come_from_pysparks_own_docstrings() -> None:
    found = by_name()
    assert {"DataFrame.dropDuplicates", "GroupedData.agg", "Column.cast", "Window.rowsBetween"} <= set(found)
    assert len([name for name in found if name.startswith("functions.")]) > 400
    date_add = found["functions.date_add"]
    lines = (pyspark_root() / date_add.path).read_text(encoding="utf-8").splitlines()
    assert lines[date_add.line - 1].startswith("def date_add(")
    for example in date_add.examples:  # each example at its own line of the installed file, in order
        assert lines[example.line - 1].strip() == ">>> " + example.source.splitlines()[0]
    assert [example.line for example in date_add.examples] == sorted(example.line for example in date_add.examples)
    assert "sf.date_add(df.dt, 1)" in date_add.examples[2].source


def _entry(*sources: str, raises: bool = False) -> Entry:
    examples = tuple(Example(source, line, raises) for line, source in enumerate(sources, 1))
    return Entry("test.entry", "sql/functions/builtin.py", 1, examples)


def _result(line: int, kind: Any, **fields: Any) -> Result:
    return Result(line, "example", kind, **fields)


def test_frames_compare_by_values_then_types() -> None:
    spark = Outcome("e", (_result(1, "frame", types=("int",), rows=((1,), (2,))),))
    same = Outcome("e", (_result(1, "frame", types=("int",), rows=((2,), (1,))),))
    wider = Outcome("e", (_result(1, "frame", types=("bigint",), rows=((1,), (2,))),))
    other = Outcome("e", (_result(1, "frame", types=("bigint",), rows=((1,), (3,))),))
    assert classify(spark, same, "x") == Verdict("equal")
    assert classify(spark, wider, "x").klass == "types differ"
    assert classify(spark, other, "x") == Verdict("values differ", "line 1 `example`: Spark (2,), x (3,)")


def test_sorted_rows_compare_in_order_and_floats_with_the_oracles_tolerance() -> None:
    spark = Outcome("e", (_result(1, "frame", types=("double",), rows=((1.0,), (2.0,)), ordered=True),))
    close = Outcome("e", (_result(1, "frame", types=("double",), rows=((1.0 + 1e-12,), (2.0,)), ordered=True),))
    swapped = Outcome("e", (_result(1, "frame", types=("double",), rows=((2.0,), (1.0,)), ordered=True),))
    assert classify(spark, close, "x").klass == "equal"
    assert "another order" in classify(spark, swapped, "x").reason


def test_failures_class_an_entry() -> None:
    ran = Outcome("e", (_result(1, "value", value=3), _result(2, "value", value=4)))
    assert classify(ran, Outcome("e", failures=((2, "AttributeError: no"),)), "x") == Verdict(
        "unsupported", "line 2: AttributeError: no"
    )
    assert classify(ran, Outcome("e", timed_out=True), "x").klass == "unsupported"
    spark_failed = Outcome("e", failures=((1, "AnalysisException: off"),))
    assert classify(spark_failed, ran, "x") == Verdict("not run on spark", "line 1: AnalysisException: off")
    # An example Spark cannot run is left out; the entry is classed on the others.
    partly = Outcome("e", (_result(1, "value", value=3),), failures=((2, "AnalysisException: off"),))
    engine = Outcome("e", (_result(1, "value", value=3),), failures=((2, "NameError: x"),))
    assert classify(partly, engine, "x") == Verdict("equal", partial="line 2: AnalysisException: off")


def test_an_example_documented_to_raise_compares_by_raising() -> None:
    spark = Outcome("e", (_result(1, "raised", value="ArithmeticException"),))
    assert classify(spark, Outcome("e", (_result(1, "raised", value="ValueError"),)), "x").klass == "equal"
    assert classify(spark, Outcome("e", (_result(1, "value", value=1),)), "x").klass == "values differ"


def test_capture_turns_show_and_print_into_results() -> None:
    """Run in this process without an engine: plain Python examples, the namespace's print and the time bound."""
    entry = _entry("x = [1, 2]\n", "print(x, 'a')\n", "len(x)\n", "1 / 0\n", "[][1]\n", raises=False)
    outcome = run_entry(entry, session=_NoSession(), timeout=10)
    found = [(result.kind, result.value) for result in outcome.results]
    assert found == [("value", [1, 2]), ("value", "a"), ("value", 2)]
    assert [line for line, _ in outcome.failures] == [4, 5]
    assert outcome.failures[0][1] == "ZeroDivisionError: division by zero"
    slow = run_entry(_entry("while True: pass\n"), session=_NoSession(), timeout=0.5)
    assert slow.timed_out


class _NoSession:
    """A stand-in session: no settings, no SparkContext."""

    @property
    def sparkContext(self) -> Any:
        raise AttributeError("no SparkContext")


def test_arrow_types_are_named_as_spark_names_them() -> None:
    table = pa.table(
        {
            "i": pa.array([1], pa.int32()),
            "ts": pa.array([0], pa.timestamp("us", tz="UTC")),
            "ntz": pa.array([0], pa.timestamp("us")),
            "m": pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int64())),
            "s": pa.array([{"x": 1, "y": [1.5]}]),
            "d": pa.array([None], pa.decimal128(10, 2)),
        }
    )
    assert arrow.types(table) == (
        "int",
        "timestamp",
        "timestamp_ntz",
        "map<string,bigint>",
        "struct<x:bigint,y:array<double>>",
        "decimal(10,2)",
    )
    row = arrow.rows(table)[0]
    assert row[3:] == ({"a": 1}, (1, [1.5]), None)


def test_the_report_names_regressions_and_keeps_them_in_the_baseline() -> None:
    baseline = {"functions.a": {"sail": "equal", "duckdb": "unsupported"}, "functions.b": {"sail": "equal"}}
    now = {
        "functions.a": {"sail": Verdict("values differ", "line 3: ..."), "duckdb": Verdict("equal")},
        "functions.b": {"sail": Verdict("equal")},
    }
    assert report.regressions(baseline, now) == ["functions.a (sail): values differ: line 3: ..."]
    assert report.merged(baseline, now, accept=False)["functions.a"] == {"sail": "equal", "duckdb": "equal"}
    assert report.merged(baseline, now, accept=True)["functions.a"]["sail"] == "values differ"
    text = report.render(now, ["sail", "duckdb"])
    assert text.startswith(report.BEGIN) and text.endswith(report.END)
    assert "| `functions.a` | sail | values differ | line 3: ... |" in text
    assert text == report.render(dict(reversed(now.items())), ["sail", "duckdb"])


def test_an_entry_past_its_time_is_stopped_and_a_worker_that_does_not_answer_replaced(tmp_path: Path) -> None:
    worker = EngineProcess("duckdb", tmp_path, grace=1.0)
    try:
        slow = worker.run(_entry("import time\n", "time.sleep(30)\n"), timeout=0.5)  # the worker's own bound
        assert slow.timed_out and worker.starts == 1
        assert [result.value for result in worker.run(_entry("1 + 1\n"), timeout=10).results] == [2]
        deaf = _entry("import signal, time\n", "signal.setitimer(signal.ITIMER_REAL, 0)\n", "time.sleep(30)\n")
        assert worker.run(deaf, timeout=0.5).timed_out  # killed after its bound and the grace
        assert [result.value for result in worker.run(_entry("2 + 2\n"), timeout=10).results] == [4]
        assert worker.starts == 2
    finally:
        worker.stop()
