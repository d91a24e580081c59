"""Running one case: the reference (one plain PySpark job) and sparkflow's runs, and their comparison.

The runs of a case, each on engine ``spark``, ``sail`` or ``duckdb``:

* ``whole``: :func:`sparkflow.runtime.local.run_plan` of the plan without the ``split`` and ``fuse`` passes: every
  stage runs whole, as one task;
* ``split``: ``run_plan`` of the normal plan (``plan_pipeline(pipeline, LOCAL)``) with a tiny ``chunk_bytes``, so
  that every split stage reading a source has several chunks and every key stage several buckets (checked).

Every output the pipeline returns is read from the run's output folder as a plain Parquet reader reads it (pyarrow's
dataset discovery, not the manifest) and compared with the reference as a multiset of rows (:mod:`sparkflow.rowsets`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparkflow.rowsets import Difference, Row, difference
from tests.oracle.generate import Case, generate
from tests.runtime.reference import reference_frames

RUN_KINDS = ("whole", "split")
ENGINES = ("spark", "sail", "duckdb")
ALL_RUNS: tuple[tuple[str, str], ...] = tuple((kind, engine) for kind in RUN_KINDS for engine in ENGINES)
MIN_CHUNK_BYTES, MAX_CHUNK_BYTES = 256, 1024
# The documented refusal of a skewed bucket (docs/concepts/split.md, "Input of any size"): not a wrong answer.
_SKEW_REFUSAL = "skew on"


@dataclass
class Table:
    """An output as rows: column names, rows in file order, and problems reading it (files whose schemas differ)."""

    columns: tuple[str, ...]
    rows: list[Row]
    problems: list[str] = field(default_factory=list)


@dataclass
class RunOutcome:
    """One run of a case.

    Attributes:
        status: ``ok``; ``mismatch`` (an output differs from the reference); ``known`` (it differs, and the code uses
            an API where the engine is documented to differ from Spark: see :func:`documented_differences`);
            ``failed`` (the run failed);
            ``refused`` (a documented refusal: a skewed bucket); ``thin`` (right, but a split stage that reads a
            source got only one chunk or a key stage one bucket, so the split was not exercised).
    """

    kind: str
    engine: str
    status: str
    seconds: float
    chunk_bytes: int | None = None
    error: str = ""
    differences: dict[str, Difference] = field(default_factory=dict)
    coverage: list[str] = field(default_factory=list)
    shape: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # node -> (chunks, buckets)

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.engine}"

    def report(self, shown: int = 5) -> str:
        lines = [f"{self.label}: {self.status} ({self.seconds:.1f} s, chunk_bytes={self.chunk_bytes})"]
        if self.error:
            lines.append(f"  error: {self.error}")
        for output, found in self.differences.items():
            lines.append(f"  output {output!r}:")
            lines += [f"    {line}" for line in found.describe(shown).splitlines()]
        lines += [f"  coverage: {problem}" for problem in self.coverage]
        return "\n".join(lines)


@dataclass
class CaseResult:
    """A case, how long its reference took (or why it failed), and its runs."""

    case: Case
    reference_seconds: float
    runs: list[RunOutcome]
    reference_error: str = ""

    @property
    def ok(self) -> bool:
        """No run gave a wrong answer or failed (documented refusals and thin splits are not wrong answers)."""
        return not self.reference_error and all(run.status in ("ok", "refused", "thin", "known") for run in self.runs)

    @property
    def clean(self) -> bool:
        """Every run gave the reference's answer, with the split exercised (no refusal, no thin split)."""
        return not self.reference_error and all(run.status == "ok" for run in self.runs)

    def report(self, shown: int = 5, source: bool = True) -> str:
        """The case's seed, folder, how to repeat it, its ``pipeline.py`` and every run's outcome."""
        case = self.case
        lines = [
            f"seed {case.seed} ({', '.join(sorted(case.tags))})",
            f"folder: {case.folder}",
            f"repeat: python -m tests.oracle --seed {case.seed} --cases 1",
        ]
        if source:
            lines += ["", case.source_text.rstrip(), ""]
        if self.reference_error:
            lines.append(f"the reference failed: {self.reference_error}")
        lines += [run.report(shown) for run in self.runs]
        return "\n".join(lines)


RUN_MODES = ("all", "fallback", "pair", "rotate")


def runs_for(seed: int, mode: str) -> tuple[tuple[str, str], ...]:
    """Which runs case ``seed`` gets besides the reference; every six consecutive seeds cover every (kind, engine)
    pair equally often in every mode.

    * ``all``: whole and split on every engine (6 runs);
    * ``fallback``: whole and split on the engine the seed picks (``seed % 3``), plus one run on the next engine,
      whole or split as ``seed // 3`` alternates (3 runs);
    * ``pair``: whole on the engine the seed picks and split on the next one (2 runs);
    * ``rotate``: one run, the ``seed % 6``-th of whole/spark, whole/sail, whole/duckdb, split/spark, split/sail,
      split/duckdb.
    """
    if mode == "all":
        return ALL_RUNS
    main, other = ENGINES[seed % len(ENGINES)], ENGINES[(seed + 1) % len(ENGINES)]
    if mode == "fallback":
        return (("whole", main), ("split", main), (RUN_KINDS[(seed // len(ENGINES)) % 2], other))
    if mode == "pair":
        return (("whole", main), ("split", other))
    if mode == "rotate":
        return (ALL_RUNS[seed % len(ALL_RUNS)],)
    raise ValueError(f"unknown run mode {mode!r}: use one of {', '.join(RUN_MODES)}")


def chunk_bytes_for(case: Case) -> int:
    """A tiny chunk size (256 to 1024 bytes) that cuts the case's largest source into 2 to 4 chunks: enough to
    exercise every phase, few enough that Spark's per-task cost stays small and that a skewed key rarely meets the
    documented skew refusal (which needs more than four buckets)."""
    parts = 2 + case.seed % 3
    return max(MIN_CHUNK_BYTES, min(MAX_CHUNK_BYTES, case.largest_source() // parts // 64 * 64))


def check_case(
    spark: Any,
    seed: int,
    folder: Path,
    runs: Iterable[tuple[str, str]] = ALL_RUNS,
    chunk_bytes: int | None = None,
    keep: bool = False,
) -> CaseResult:
    """Generate case ``seed`` under ``folder`` (what an earlier, killed attempt left there is removed first),
    compute its reference and run it each way of ``runs``."""
    shutil.rmtree(folder / "case", ignore_errors=True)
    shutil.rmtree(folder / "runs", ignore_errors=True)
    case = generate(seed, folder / "case")
    result = run_case(spark, case, folder / "runs", runs, chunk_bytes or chunk_bytes_for(case))
    if not keep and result.ok:
        shutil.rmtree(folder / "runs", ignore_errors=True)
    return result


def run_case(spark: Any, case: Case, root: Path, runs: Iterable[tuple[str, str]], chunk_bytes: int) -> CaseResult:
    from sparkflow.loading import load_pipeline

    pipeline = load_pipeline(str(case.pipeline_file))
    started = time.monotonic()
    try:
        expected = reference_tables(spark, pipeline, case.outputs)
    except Exception as error:
        return CaseResult(case, time.monotonic() - started, [], f"{type(error).__name__}: {_first_lines(error)}")
    reference_seconds = time.monotonic() - started
    outcomes = [run_once(case, pipeline, expected, kind, engine, root, chunk_bytes) for kind, engine in runs]
    return CaseResult(case, reference_seconds, outcomes)


# --- the reference ---------------------------------------------------------------------------------------------


def reference_tables(spark: Any, pipeline: Any, outputs: Iterable[str]) -> dict[str, Table]:
    """The reference: the outputs of :func:`tests.runtime.reference.reference_frames`, one plain PySpark job."""
    frames = reference_frames(spark, pipeline)
    tables: dict[str, Table] = {}
    for output in outputs:
        arrow = frames[output].toArrow()  # timestamps as UTC instants, whatever the Python process's time zone
        tables[output] = Table(tuple(arrow.column_names), _arrow_rows(arrow))
    return tables


def _arrow_rows(table: Any) -> list[Row]:
    columns = [column.to_pylist() for column in table.columns]
    return list(zip(*columns, strict=True)) if columns else [() for _ in range(table.num_rows)]


# --- sparkflow's runs ------------------------------------------------------------------------------------------


def plan_for(kind: str, pipeline: Any) -> Any:
    from sparkflow.compiler import PASSES, plan_pipeline
    from sparkflow.targets.local import LOCAL

    if kind == "whole":
        return plan_pipeline(pipeline, LOCAL, passes=tuple(p for p in PASSES if p.__name__ not in ("split", "fuse")))
    return plan_pipeline(pipeline, LOCAL)


def run_once(
    case: Case,
    pipeline: Any,
    expected: dict[str, Table],
    kind: str,
    engine: str,
    root: Path,
    chunk_bytes: int,
) -> RunOutcome:
    from sparkflow.runtime.local import run_plan

    started = time.monotonic()
    size = chunk_bytes if kind == "split" else None
    outcome = RunOutcome(kind, engine, "ok", 0.0, size)
    try:
        plan = plan_for(kind, pipeline)
        summary = run_plan(
            plan, pipeline, storage_root=str(root / f"{kind}-{engine}"), engine=engine, chunk_bytes=size, run_id="r"
        )
    except Exception as error:
        outcome.status, outcome.error = "failed", f"{type(error).__name__}: {_first_lines(error)}"
        outcome.seconds = time.monotonic() - started
        return outcome
    outcome.seconds = time.monotonic() - started
    outcome.shape = {name: (node.chunks, node.buckets) for name, node in summary.nodes.items()}
    if summary.status != "succeeded":
        errors = [f"{node.node}: {node.error}" for node in summary.nodes.values() if node.status == "failed"]
        outcome.error = "; ".join(errors) or "the run did not succeed"
        outcome.status = "refused" if _SKEW_REFUSAL in outcome.error else "failed"
        return outcome
    outcome.differences, problems = compare_outputs(expected, summary.outputs)
    if outcome.differences or problems:
        outcome.status, outcome.error = "mismatch", "; ".join(problems)
        documented = documented_differences(pipeline, engine)
        if outcome.differences and not problems and documented:
            outcome.status = "known"
            outcome.error = f"the code uses {', '.join(documented)}, where {engine} is documented to differ from Spark"
    if kind == "split":
        outcome.coverage = coverage_problems(plan, summary, case, chunk_bytes)
        if outcome.coverage and outcome.status == "ok":
            outcome.status = "thin"
    return outcome


def documented_differences(pipeline: Any, engine: str) -> list[str]:
    """The APIs the pipeline's stages use where ``engine`` is documented not to give Spark's answer
    (sparkflow/engine_differences.json, what ``engine="auto"`` avoids): a difference there is a known one."""
    from sparkflow.compiler.apis import uses
    from sparkflow.compiler.passes.engine_choice import differences

    if engine == "spark":
        return []
    used = [uses(call.stage.fn) for call in pipeline.trace().calls.values()]
    return sorted({api for api in differences(engine) for found in used if found.touches(api)})


def compare_outputs(expected: dict[str, Table], outputs: dict[str, str]) -> tuple[dict[str, Difference], list[str]]:
    """Each output of a run (output -> committed location) against the reference: the outputs that differ, and
    problems that are not rows (a missing or unexpected output, part files whose schemas disagree)."""
    problems: list[str] = []
    if set(outputs) != set(expected):
        problems.append(f"the run returned outputs {sorted(outputs)}, the pipeline {sorted(expected)}")
    differences: dict[str, Difference] = {}
    for output, table in expected.items():
        if output not in outputs:
            continue
        found = read_output(outputs[output])
        problems += [f"{output}: {problem}" for problem in found.problems]
        differs = difference(table.rows, found.rows, table.columns, found.columns)
        if differs:
            differences[output] = differs
    return differences, problems


def read_output(location: str) -> Table:
    """A committed output as any Parquet reader sees it: the files pyarrow's dataset discovery finds in its folder
    (names starting with ``_`` or ``.`` skipped, as Spark, pandas and Athena skip them), read file by file. Files
    that differ from the ones its ``_COMMITTED.json`` lists, or whose schemas disagree, are problems."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    folder = Path(location)
    manifest = json.loads((folder / "_COMMITTED.json").read_text(encoding="utf-8"))
    files = sorted(Path(name) for name in ds.dataset(location, format="parquet").files)
    listed = sorted(folder / name for name in manifest["files"])
    problems: list[str] = []
    if files != listed:
        seen = [str(path.relative_to(folder)) for path in files]
        problems.append(f"a reader sees files {seen}, _COMMITTED.json lists {manifest['files']}")
    columns: tuple[str, ...] | None = None
    types: list[str] | None = None
    rows: list[Row] = []
    for path in files:
        table = pq.read_table(path)
        names = tuple(table.column_names)
        kinds = [str(item.type) for item in table.schema]
        if columns is None:
            columns, types = names, kinds
        elif names != columns:
            problems.append(f"file {path.name} has columns {list(names)}, the first file {list(columns)}")
        elif kinds != types:
            problems.append(f"file {path.name} has types {kinds}, the first file {types}")
        rows += _arrow_rows(table)
    return Table(columns or (), rows, problems)


def coverage_problems(plan: Any, summary: Any, case: Case, chunk_bytes: int) -> list[str]:
    """Split stages that should have been cut finer: a stage reading a source (directly or through stages fused into
    it) big enough for several chunks got one; a key stage with more than one chunk got one bucket."""
    problems: list[str] = []
    sources = {source.name: source for source in plan.sources}
    for task in plan.tasks:
        if task.fanout is None:
            continue
        node = summary.nodes[task.id]
        fused = {item.id: item for item in task.fused}
        divisible = False
        for param in task.fanout.split:
            item = next(entry for entry in task.inputs if entry.param == param)
            while item.node in fused:  # a fused stage's chunk comes from its own first input
                upstream = fused[item.node]
                item = next(entry for entry in upstream.inputs if entry.kind != "value")
            if item.kind == "source" and _divisible(
                Path(sources[item.node].uri), case, sources[item.node], chunk_bytes
            ):
                divisible = True
        if divisible and (node.chunks or 0) < 2:
            problems.append(f"{task.id}: {node.chunks} chunk(s) of a source that makes several")
        if task.fanout.mode == "key" and (node.chunks or 0) > 1 and (node.buckets or 0) < 2:
            problems.append(f"{task.id}: {node.buckets} bucket(s) from {node.chunks} chunks")
    return problems


def _divisible(uri: Path, case: Case, source: Any, chunk_bytes: int) -> bool:
    """Whether a source splits into several chunks at ``chunk_bytes``: more than one chunk's bytes of text, CSV or
    JSON lines; Parquet with several files or row groups."""
    location = uri if uri.is_absolute() else case.folder / uri
    files = sorted(location.rglob("*")) if location.is_dir() else [location]
    files = [path for path in files if path.is_file()]
    if source.format != "parquet":
        return sum(path.stat().st_size for path in files) > 2 * chunk_bytes
    import pyarrow.parquet as pq

    groups = sum(pq.ParquetFile(path).num_row_groups for path in files)
    return groups > 1 and sum(path.stat().st_size for path in files) > 2 * chunk_bytes


def _first_lines(error: BaseException, count: int = 3) -> str:
    text = str(error).strip()
    return " | ".join(text.splitlines()[:count]) if text else type(error).__name__


def default_spark() -> Any:
    """The runtime's SparkSession (the one the Spark engine's stages use in this process)."""
    from sparkflow.runtime import spark as engine

    return engine.session(2048)
