"""``sparkflow verify``: check each partitioned stage's declaration on real data.

A stage declared ``partition="rows"`` promises that any split of its input rows gives the same output;
``partition_by=key`` promises that it only needs the rows of one key together. Nothing else checks those
promises, and small runs hide a broken one: they use one chunk, so the answer changes only in the cloud, on big
inputs. Verify runs the pipeline here, on the inputs given (a sample of the real data), twice over:

1. every stage whole (no split, no fusing): the reference outputs;
2. each partitioned stage again on its own, on exactly the inputs the reference run gave it, but split: its input
   cut into several chunks (text, CSV and JSON lines by byte ranges; upstream outputs and Parquet sources
   rewritten as several files first, so that they split too) and, for key stages, its rows hashed into several
   buckets.

Where the two outputs of a stage differ as multisets of rows, the declaration is wrong for this data: the report
names the stage, its file and line, its declaration, a few rows that differ, and what to declare instead. Rows
compare as :mod:`sparkflow.rowsets` says (floats within a relative 1e-9: a split changes the order of additions).

A key stage that declares ``combine=`` and passes that check runs split once more, combined: its map tasks run the
stage on their chunks and its reduce tasks merge those partial results. Where that output differs from the
reference, the combiner is wrong (``stage(A ∪ B) != merge(stage(A) ∪ stage(B))``): the report names the merge's
file and line and the rows that differ.

Each stage that runs on an engine other than Spark (``sail``, ``duckdb``) runs once more, whole, on Spark, on exactly
the inputs the reference run gave it: where its rows or its column types differ, the engine does not give Spark's
answer for this stage's code, and the report names the stage, its file and line, the columns and rows that differ,
and says to run the stage on Spark. This is the check to run before moving a stage off Spark (``compare_engines``
turns it off).

Verify can only find what the sample shows: a stage that deduplicates passes on a sample without duplicates. Run
it in CI beside ``sparkflow compile --check``, on a sample that holds the cases that matter.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.engines import DEFAULT as DEFAULT_ENGINE
from sparkflow.errors import Origin, SparkflowError
from sparkflow.layout import node_location, run_location, value_key, work_location
from sparkflow.plan import Fanout, Plan, PlanTask, Run
from sparkflow.rowsets import difference

DEFAULT_CHUNKS = 4
_SHOWN_ROWS = 3


@dataclass(frozen=True)
class Mismatch:
    """A partitioned stage whose output changed when its input was split."""

    node: str
    stage: str
    origin: Origin
    declaration: str
    mode: str  # rows, key, or combine (the declaration holds, but merging partial results changes the output)
    whole_rows: int
    split_rows: int
    chunks: int
    buckets: int
    only_whole: tuple[tuple[Any, ...], ...]
    only_split: tuple[tuple[Any, ...], ...]
    columns: tuple[str, ...]

    def message(self) -> str:
        shape = f"{self.chunks} chunk{'s' * (self.chunks != 1)}"
        if self.mode != "rows":
            shape += f" and {self.buckets} bucket{'s' * (self.buckets != 1)}"
        if self.mode == "combine":
            lines = [
                f"stage {self.stage!r} declares {self.declaration} ({self.origin}), but merging its partial results "
                f"changes its output: run whole it gives {_count(self.whole_rows)}; split into {shape} and "
                f"combined, {_count(self.split_rows)} (split without combining, it gives the same rows as whole)."
            ]
        else:
            lines = [
                f"stage {self.stage!r} ({self.origin}) is declared {self.declaration}, but its output changes when "
                f"its input is split: run whole it gives {_count(self.whole_rows)}; split into {shape}, "
                f"{_count(self.split_rows)}."
            ]
        split_label = "only when combined" if self.mode == "combine" else "only when split"
        for label, found in ((split_label, self.only_split), ("only when whole", self.only_whole)):
            if found:
                shown = "; ".join(_row(self.columns, row) for row in found[:_SHOWN_ROWS])
                more = f" (and {len(found) - _SHOWN_ROWS} more)" if len(found) > _SHOWN_ROWS else ""
                lines.append(f"  rows {label}: {shown}{more}")
        if self.mode == "rows":
            lines.append(
                '  A stage declared partition="rows" must give the same rows for any split of its input; this one '
                "needs rows from other chunks (it sorts and limits, deduplicates, ranks or aggregates over all of "
                'them). Remove partition="rows" so it runs whole (the default), or declare partition_by="<column>" '
                "if it only needs the rows of one key together."
            )
        elif self.mode == "key":
            lines.append(
                "  A stage declared partition_by= must need only the rows of one key value together; this one needs "
                "rows of different keys. Declare partition_by= the columns it groups, joins or windows by, or "
                "remove partition_by= so it runs whole."
            )
        else:
            lines.append(
                "  A merge must give what the stage gives on all the rows at once when it is run on the union of the "
                "stage's results on any parts of them (stage(A ∪ B) == merge(stage(A) ∪ stage(B))): a count or a sum "
                'merges by summing (F.sum("count")), a max by max; an average, a distinct count or a median does not '
                "merge from its own results. Fix the merge, or remove combine= so map tasks shuffle rows."
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class EngineMismatch:
    """A stage whose output on its engine differs from its output on Spark, on the same inputs."""

    node: str
    stage: str
    origin: Origin
    engine: str
    engine_rows: int
    spark_rows: int
    types: tuple[tuple[str, str, str], ...]  # (column, type on the engine, type on Spark) where they differ
    only_engine: tuple[tuple[Any, ...], ...]
    only_spark: tuple[tuple[Any, ...], ...]
    columns: tuple[str, ...]

    def message(self) -> str:
        lines = [
            f"stage {self.stage!r} ({self.origin}) runs on {self.engine}, but on this sample it does not give what "
            f"Spark gives for the same code and inputs: {_count(self.engine_rows)} on {self.engine}, "
            f"{_count(self.spark_rows)} on Spark."
        ]
        if self.types:
            shown = "; ".join(f"{name}: {ours} (Spark: {theirs})" for name, ours, theirs in self.types)
            lines.append(f"  column types differ: {shown}")
        for label, found in ((f"only on {self.engine}", self.only_engine), ("only on Spark", self.only_spark)):
            if found:
                shown = "; ".join(_row(self.columns, row) for row in found[:_SHOWN_ROWS])
                more = f" (and {len(found) - _SHOWN_ROWS} more)" if len(found) > _SHOWN_ROWS else ""
                lines.append(f"  rows {label}: {shown}{more}")
        lines.append(
            f'  Run this stage on Spark: @sf.stage(engine="spark") (docs/engines.md lists where {self.engine} '
            "differs from Spark)."
        )
        return "\n".join(lines)


@dataclass
class Report:
    """What verify checked and found."""

    pipeline: str
    checked: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)  # stages also run on Spark
    engine_mismatches: list[EngineMismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.engine_mismatches

    def messages(self) -> list[str]:
        found: list[Mismatch | EngineMismatch] = [*self.mismatches, *self.engine_mismatches]
        return [item.message() for item in found]

    def verdict(self) -> str:
        """One line: whether the pipeline passed, what was checked, and what was not."""
        wrong = []
        if self.mismatches:
            wrong.append(f"{len(self.mismatches)} stage(s) wrongly declared")
        if self.engine_mismatches:
            wrong.append(f"{len(self.engine_mismatches)} stage(s) differ from Spark")
        checked = f"{len(self.checked)} partitioned stage(s) checked"
        if self.compared:
            checked += f", {len(self.compared)} compared with Spark"
        skipped = "".join(f"; {node} not checked: {why}" for node, why in self.skipped.items())
        return f"{self.pipeline}: {', '.join(wrong) or 'ok'} ({checked}{skipped})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "ok": self.ok,
            "checked": self.checked,
            "skipped": self.skipped,
            "mismatches": [
                {
                    "node": item.node,
                    "stage": item.stage,
                    "origin": str(item.origin),
                    "declaration": item.declaration,
                    "whole_rows": item.whole_rows,
                    "split_rows": item.split_rows,
                    "chunks": item.chunks,
                    "buckets": item.buckets,
                    "message": item.message(),
                }
                for item in self.mismatches
            ],
            "compared_with_spark": self.compared,
            "engine_mismatches": [
                {
                    "node": item.node,
                    "stage": item.stage,
                    "origin": str(item.origin),
                    "engine": item.engine,
                    "engine_rows": item.engine_rows,
                    "spark_rows": item.spark_rows,
                    "types": [list(found) for found in item.types],
                    "message": item.message(),
                }
                for item in self.engine_mismatches
            ],
        }


class VerifyError(SparkflowError, RuntimeError):
    """Verify could not run the pipeline on the given inputs (the reference run failed)."""


def verify(
    pipeline: Pipeline,
    *,
    inputs: dict[str, str] | None = None,
    engine: str | None = None,
    chunks: int = DEFAULT_CHUNKS,
    storage_root: str | None = None,
    params: Mapping[str, Any] | None = None,
    compare_engines: bool = True,
) -> Report:
    """Check every partitioned stage of ``pipeline`` on ``inputs`` (source name -> location; default: the declared
    locations). See the module docs.

    Args:
        engine: run every stage on this engine instead of its own.
        chunks: how many chunks each split stage's input is cut into (key stages also get this many buckets).
        storage_root: where the runs write (default: a temporary folder, removed afterwards).
        params: parameter values (``sf.param``) every run uses; the others take their defaults.
        compare_engines: also run each stage whose engine is not Spark on Spark, and compare.

    Raises:
        VerifyError: the reference run (every stage whole) failed: the pipeline fails on these inputs anyway.
    """
    if chunks < 2:
        raise SparkflowError(f"--chunks {chunks}: verify needs at least 2 chunks to split anything")
    if storage_root is not None:
        root = os.path.abspath(storage_root)
        return _verify(pipeline, inputs or {}, engine, chunks, root, dict(params or {}), compare_engines)
    with tempfile.TemporaryDirectory(prefix="sparkflow-verify-") as root:
        return _verify(pipeline, inputs or {}, engine, chunks, root, dict(params or {}), compare_engines)


def _verify(
    pipeline: Pipeline,
    inputs: dict[str, str],
    engine: str | None,
    chunks: int,
    root: str,
    params: dict[str, Any],
    compare_engines: bool,
) -> Report:
    from sparkflow.compiler import PASSES, plan_pipeline
    from sparkflow.runtime.local import run_plan
    from sparkflow.targets.local import LOCAL

    whole_passes = tuple(item for item in PASSES if item.__name__ not in ("split", "fuse"))
    plan = plan_pipeline(pipeline, LOCAL, passes=whole_passes)
    report = Report(pipeline.name)
    reference = run_plan(
        plan,
        pipeline,
        storage_root=root,
        run_id="verify-whole",
        inputs=inputs,
        engine=engine,
        publish=False,
        params=params,
    )
    if reference.status != "succeeded":
        failed = next((node for node in reference.nodes.values() if node.status == "failed"), None)
        where = f"stage {failed.node!r} failed: {failed.error}" if failed else "it did not finish"
        raise VerifyError(f"cannot verify pipeline {pipeline.name!r}: run whole on these inputs, {where}")
    calls = pipeline.trace().calls
    for task in plan.tasks:
        if compare_engines and (engine or task.engine) != DEFAULT_ENGINE and task.output == "dataset":
            report.compared.append(task.id)
            found = _compare_with_spark(pipeline, plan, task, inputs, engine or task.engine, root, params)
            if found is not None:
                report.engine_mismatches.append(found)
        reason = _not_checked(task, plan)
        if reason:
            report.skipped[task.id] = reason
            continue
        mismatch = _check(pipeline, plan, task, inputs, engine, chunks, root, params)
        stage = calls[task.id].stage
        if mismatch is None and task.partition == "key" and stage.merge_function() is not None:
            mismatch = _check(pipeline, plan, task, inputs, engine, chunks, root, params, combine=True)
        report.checked.append(task.id)
        if mismatch is not None:
            report.mismatches.append(mismatch)
    return report


def _not_checked(task: PlanTask, plan: Plan) -> str | None:
    if task.partition == "whole":
        return "runs whole"
    if task.output != "dataset":
        return "returns a value"
    if not any(item.carries_rows for item in task.inputs):
        return "has no dataset input to split"
    return None


def _check(
    pipeline: Pipeline,
    plan: Plan,
    task: PlanTask,
    inputs: dict[str, str],
    engine: str | None,
    chunks: int,
    root: str,
    params: dict[str, Any],
    combine: bool = False,
) -> Mismatch | None:
    """Run ``task`` split on the reference run's inputs (``combine``: and combined, with its stage's merge); compare
    its output with the reference's."""
    from sparkflow.runtime.local import run_plan

    run_id = f"verify-{task.id}" + ("-combined" if combine else "")
    os.makedirs(run_location(root, plan.pipeline, run_id), exist_ok=True)  # the run to resume: its inputs go there
    split_params = [item for item in task.inputs if item.carries_rows]
    if task.partition == "rows":
        split_params = split_params[:1]
    overrides = dict(inputs)
    total = _seed_inputs(root, plan, task, run_id, cut=tuple(item.param for item in split_params), chunks=chunks)
    for item in split_params:
        if item.kind == "source":
            location, size = _source_for_splitting(plan, item.node, overrides, root, chunks, pipeline)
            overrides[item.node] = location
            total += size
    chunk_bytes = max(1, math.ceil(total / chunks))
    fanout = Fanout(task.partition, tuple(item.param for item in split_params), chunk_bytes, chunks, combine)
    alone = replace(task, fanout=fanout, fused=())
    single = replace(plan, tasks=(alone,), outputs=(task.id,), schedule=Run(task.id))
    summary = run_plan(
        single,
        pipeline,
        storage_root=root,
        run_id=run_id,
        inputs=overrides,
        engine=engine,
        resume=True,
        publish=False,
        params=params,
    )
    node = summary.nodes[task.id]
    if summary.status != "succeeded":
        how = "split and combined" if combine else "split"
        raise VerifyError(f"cannot verify stage {task.stage!r} ({task.origin}): {how}, it failed: {node.error}")
    whole_columns, whole = _rows(node_location(root, plan.pipeline, "verify-whole", task.id))
    _, split = _rows(node_location(root, plan.pipeline, run_id, task.id))
    found = difference(whole, split)
    if not found:
        return None
    keys = task.partition_by
    declaration = (
        'partition="rows"'
        if task.partition == "rows"
        else f"partition_by={keys[0]!r}"
        if len(keys) == 1
        else f"partition_by={list(keys)!r}"
    )
    origin = task.origin
    if combine:
        stage = pipeline.trace().calls[task.id].stage
        merge = stage.merge_function()
        declaration = "combine=True" if merge is stage.fn else f"combine={getattr(merge, '__name__', repr(merge))}"
        origin = stage.merge_origin()
    return Mismatch(
        node=task.id,
        stage=task.stage,
        origin=origin,
        declaration=declaration,
        mode="combine" if combine else task.partition,
        whole_rows=len(whole),
        split_rows=len(split),
        chunks=node.chunks or 1,
        buckets=node.buckets or 0,
        only_whole=found.missing,
        only_split=found.extra,
        columns=whole_columns,
    )


def _compare_with_spark(
    pipeline: Pipeline,
    plan: Plan,
    task: PlanTask,
    inputs: dict[str, str],
    engine: str,
    root: str,
    params: dict[str, Any],
) -> EngineMismatch | None:
    """Run ``task`` whole on Spark, on the reference run's inputs, and compare its output with the reference's (its
    own engine's): rows as multisets, and each column's type as a Parquet reader sees it."""
    from sparkflow.runtime.local import run_plan

    run_id = f"verify-{task.id}-on-spark"
    os.makedirs(run_location(root, plan.pipeline, run_id), exist_ok=True)
    _seed_inputs(root, plan, task, run_id, cut=())
    single = replace(plan, tasks=(replace(task, fanout=None, fused=()),), outputs=(task.id,), schedule=Run(task.id))
    summary = run_plan(
        single,
        pipeline,
        storage_root=root,
        run_id=run_id,
        inputs=inputs,
        engine=DEFAULT_ENGINE,
        resume=True,
        publish=False,
        params=params,
    )
    if summary.status != "succeeded":
        raise VerifyError(
            f"cannot compare stage {task.stage!r} ({task.origin}) with Spark: on Spark it failed: "
            f"{summary.nodes[task.id].error}"
        )
    ours, theirs = (
        _table(node_location(root, plan.pipeline, "verify-whole", task.id)),
        _table(node_location(root, plan.pipeline, run_id, task.id)),
    )
    types = tuple(
        (field.name, _logical(field.type), _logical(other.type))
        for field, other in zip(ours.schema, theirs.schema, strict=False)
        if _logical(field.type) != _logical(other.type)
    )
    if ours.column_names != theirs.column_names:
        types += (("(columns)", ", ".join(ours.column_names), ", ".join(theirs.column_names)),)
    found = difference(_table_rows(ours), _table_rows(theirs))
    if not found and not types:
        return None
    return EngineMismatch(
        node=task.id,
        stage=task.stage,
        origin=task.origin,
        engine=engine,
        engine_rows=ours.num_rows,
        spark_rows=theirs.num_rows,
        types=types,
        only_engine=found.missing if found else (),
        only_spark=found.extra if found else (),
        columns=tuple(ours.column_names),
    )


# --- the split run's inputs ----------------------------------------------------------------------------------


def _seed_inputs(root: str, plan: Plan, task: PlanTask, run_id: str, cut: tuple[str, ...], chunks: int = 1) -> int:
    """Give run ``run_id`` the reference run's upstream outputs and values that ``task`` reads, the datasets of the
    parameters ``cut`` as ``chunks`` files each; return the bytes of those cut datasets."""
    total = 0
    for item in task.inputs:
        if item.kind == "dataset":
            size = _seed_dataset(root, plan, item.node, run_id, chunks if item.param in cut else 1)
            total += size if item.param in cut else 0
        elif item.kind == "value":
            _seed_value(root, plan, item.node, run_id)
    return total


def _seed_dataset(root: str, plan: Plan, node: str, run_id: str, files: int) -> int:
    """Commit the reference run's output of ``node`` in run ``run_id`` as ``files`` Parquet files of about equal
    rows (so that it splits into that many chunks); return its bytes."""
    from sparkflow.runtime import storage

    source = node_location(root, plan.pipeline, "verify-whole", node)
    target = node_location(root, plan.pipeline, run_id, node)
    work = work_location(root, plan.pipeline, run_id, node)
    seeded = storage.read_manifest(target)
    if seeded is not None:  # the same upstream output feeds two of the stage's parameters
        return int(seeded["bytes"])
    table = _table(source)
    with tempfile.TemporaryDirectory(prefix="sparkflow-verify-") as scratch:
        _write_pieces(table, scratch, files, _int96(_local_files(source)))
        uploaded = storage.upload_attempt(scratch, work, "seed")
    names = [storage.published_name(index) for index in range(len(uploaded))]
    manifest = {
        "kind": "dataset",
        "files": names,
        "from": {name: relative for name, (relative, _) in zip(names, uploaded, strict=True)},
        "rows": table.num_rows,
        "bytes": sum(size for _, size in uploaded),
    }
    storage.publish(target, work, manifest)
    return int(manifest["bytes"])


def _seed_value(root: str, plan: Plan, node: str, run_id: str) -> None:
    """Copy the reference run's value of ``node`` into run ``run_id``'s KV store (keys hold the run id)."""
    from sparkflow.runtime.kv import open_kv

    def kv(run: str) -> Any:
        return open_kv(plan.kv or f"sqlite:///{os.path.join(root, plan.pipeline, run, '_kv.sqlite')}")

    source, target = kv("verify-whole"), kv(run_id)
    try:
        target.put(value_key(plan.pipeline, run_id, node), source.get(value_key(plan.pipeline, "verify-whole", node)))
    finally:
        source.close()
        target.close()


def _source_for_splitting(
    plan: Plan, name: str, overrides: dict[str, str], root: str, chunks: int, pipeline: Pipeline
) -> tuple[str, int]:
    """Where the split run reads source ``name`` and its bytes. Line formats split by byte ranges as they are;
    a Parquet source splits only between files and row groups, so it is rewritten as ``chunks`` files."""
    from sparkflow.runtime import split
    from sparkflow.runtime.execute import source_uri

    source = plan.source(name)
    location = overrides.get(name) or source_uri(pipeline, source)
    files = split.list_files(location)
    size = sum(info.size for info in files)
    if source.format != "parquet":
        return location, size
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sparkflow.runtime.datasets import local_copy

    folder = os.path.join(root, "_verify-sources", name)
    os.makedirs(folder, exist_ok=True)
    local = local_copy([info.uri for info in files], os.path.join(folder, "copies"))
    table = pa.concat_tables([pq.read_table(path) for path in local], promote_options="default")
    pieces = os.path.join(folder, "pieces")
    os.makedirs(pieces, exist_ok=True)
    _write_pieces(table, pieces, chunks, _int96(local))
    return pieces, sum(os.path.getsize(os.path.join(pieces, entry)) for entry in os.listdir(pieces))


def _write_pieces(table: Any, folder: str, count: int, int96: bool) -> list[str]:
    """Write ``table`` into ``folder`` as ``count`` Parquet files of about equal rows (at least one file), with the
    Parquet types the files it was read from have: their timestamps as INT96 when theirs were (``int96``: Spark's
    legacy encoding, which pyarrow reads as nanoseconds and would otherwise write as INT64 nanoseconds, a type Spark
    refuses to read), every other type as pyarrow read it."""
    import pyarrow.parquet as pq

    paths: list[str] = []
    step = max(1, math.ceil(table.num_rows / count))
    starts = range(0, table.num_rows, step) if table.num_rows else [0]
    for number, start in enumerate(starts):
        path = os.path.join(folder, f"piece-{number:05d}.parquet")
        pq.write_table(table.slice(start, step), path, use_deprecated_int96_timestamps=int96)
        paths.append(path)
    return paths


def _int96(paths: list[str]) -> bool:
    """Whether any of the local Parquet files ``paths`` stores a column as INT96 (Spark's legacy timestamps)."""
    import pyarrow.parquet as pq

    return any(column.physical_type == "INT96" for path in paths for column in pq.ParquetFile(path).schema)


def _local_files(location: str) -> list[str]:
    """The local paths of a committed output's files (the verify runs write to a local folder)."""
    from sparkflow.runtime import storage

    manifest = storage.read_manifest(location) or {}
    return [storage.filesystem(storage.join(location, name))[1] for name in manifest.get("files", [])]


# --- comparing outputs ---------------------------------------------------------------------------------------


def _table(location: str) -> Any:
    import pyarrow as pa

    from sparkflow.results import _batches
    from sparkflow.runtime import storage

    manifest = storage.read_manifest(location)
    files = tuple(storage.join(location, name) for name in (manifest or {}).get("files", []))
    batches = list(_batches(files, None))
    return pa.Table.from_batches(batches) if batches else pa.table({})


def _rows(location: str) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    table = _table(location)
    return tuple(table.column_names), _table_rows(table)


def _logical(kind: Any) -> str:
    """A column's type as Spark and every reader of the file see it: without which values a file marks never null
    (each engine's own judgement) and without the name of a list's element field (Spark writes ``element``, Sail
    ``item``; readers ignore it). docs/engines.md lists both."""
    return str(kind).replace(" not null", "").replace("list<item: ", "list<element: ")


def _table_rows(table: Any) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in table.to_pylist()]


def _count(rows: int) -> str:
    return f"{rows:,} row{'s' * (rows != 1)}"


def _row(columns: tuple[str, ...], row: tuple[Any, ...]) -> str:
    if len(columns) == len(row):
        return "{" + ", ".join(f"{name}: {value!r}" for name, value in zip(columns, row, strict=True)) + "}"
    return repr(row)
