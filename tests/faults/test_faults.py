"""Fault injection, the short version (``make faults`` runs the long randomized one): each fault kind fired into
real task processes of real runs, and the run must still leave exactly the fault-free output, with nothing
partial ever visible. Also: the oracle catches a lost row, a duplicated row, a partial file and a torn plan, and
each retry the platforms make is made here too."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from sparkflow.layout import WORK
from tests.faults.driver import (
    SUBJECTS,
    Reference,
    Subject,
    object_storage,
    outputs,
    reference,
    run,
    storage_root,
    trial,
    visible_problems,
)
from tests.faults.inject import KINDS, Fault, FaultPlan, fired


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reference]:
    """Fault-free runs (and profiles) of the subjects, made once for the module and only when first asked for."""
    folder = tmp_path_factory.mktemp("references")

    class Lazy(dict[str, Reference]):
        def __missing__(self, name: str) -> Reference:
            self[name] = reference(subject(name), folder)
            return self[name]

    return Lazy()


def subject(name: str) -> Subject:
    return next(item for item in SUBJECTS if item.name == name)


# Each kind on one subject (three subjects in all: three fault-free runs, about 2 s each); a kill while publishing
# needs three tasks that publish files (clickstream has them: clean, page_stats, slow_pages).
SHORT = {kind: ("wordcount", "ledger")[number % 2] for number, kind in enumerate(KINDS)} | {
    "kill-mid-publish": "clickstream"
}


# make test runs two kinds, the others run in make long-checks (and every kind in the make faults campaign).
SHORT_KINDS = ("raise", "kill-mid-publish")


@pytest.mark.parametrize(
    "kind", [kind if kind in SHORT_KINDS else pytest.param(kind, marks=pytest.mark.long) for kind in KINDS]
)
def test_faults_leave_exactly_the_fault_free_output(
    kind: str, references: dict[str, Reference], tmp_path: Path
) -> None:
    result = trial(kind, references[SHORT[kind]], random.Random(f"short-{kind}"), tmp_path, count=3)
    assert result.faults >= 3, f"the faults really fired ({result.faults})"
    assert result.problems == []


def test_each_task_of_a_split_stage_has_its_own_retries(references: dict[str, Reference], tmp_path: Path) -> None:
    """Failing the commit task of a split stage as often as the stage allows retries: its state machine task
    retries it that often (each Task state has its own Retry), so must the local executor."""
    ref = references["wordcount"]
    plan = FaultPlan(str(tmp_path / "journal"), (Fault("f0", "raise", "counts/commit/-", 0, ref.retries["counts"]),))
    outcome = run(ref.subject, ref.inputs, plan, tmp_path)
    assert fired(plan, plan.faults[0]) == ref.retries["counts"]
    assert outcome.problems == []
    assert outcome.outputs == ref.outputs


# A killed or duplicated publish of revenue's two sinks (a Hive-partitioned Parquet folder replaced by each run,
# then an appending Delta table): (kind, the publish_sink call it hits: 0 Parquet, 1 Delta). `make faults` draws
# every kind at every call.
SINK_FAULTS = [
    pytest.param("kill-before-commit", 0, id="kill-before-commit-0", marks=pytest.mark.long),
    pytest.param("kill-after-commit", 1, id="kill-after-commit-1", marks=pytest.mark.long),
    pytest.param("kill-mid-upload", 2, id="kill-mid-upload-2", marks=pytest.mark.long),
    pytest.param("duplicate", 1, id="duplicate-1", marks=pytest.mark.long),
]


@pytest.mark.parametrize(("kind", "index"), SINK_FAULTS)
def test_a_faulty_publish_leaves_every_sink_exactly_once(
    kind: str, index: int, references: dict[str, Reference], tmp_path: Path
) -> None:
    ref = references["revenue"]
    assert {"sink:enriched_orders", "sink:revenue_history"} <= set(ref.outputs)
    assert ref.outputs["sink:revenue_history"] == ref.outputs["revenue_by_country"]  # appended once
    plan = FaultPlan(str(tmp_path / "journal"), (Fault("f0", kind, "run/publish/-", index),))
    outcome = run(ref.subject, ref.inputs, plan, tmp_path)
    assert fired(plan, plan.faults[0]) == 1
    assert outcome.problems == []
    assert outcome.outputs == ref.outputs


# Where a storage call that fails once (a dropped connection, a timeout) must not fail the run: the task is
# retried, as any task whose error is not a permanent one (EventError, InputError, ConfinementError). Each is
# (phase, storage call, its occurrence in the task) in the first task of that phase over wordcount's text source.
TRANSIENT_CALLS = {
    "split-lists-its-input": ("split", "fs.info", 0),  # split.list_files
    "map-reads-its-chunk-manifest": ("map", "fs.cat_file", 0),  # split.read_manifest
    "map-reads-its-chunk": ("map", "fs.cat_file", 1),  # split.read_chunk
    "engine-lists-its-files": ("map", "fs.isfile", 0),  # datasets.source_files
}


@pytest.mark.parametrize(
    "call",
    [call if call == "map-reads-its-chunk" else pytest.param(call, marks=pytest.mark.long) for call in TRANSIENT_CALLS],
)
def test_one_transient_storage_error_is_retried(call: str, references: dict[str, Reference], tmp_path: Path) -> None:
    ref = references["wordcount"]
    phase, method, occurrence = TRANSIENT_CALLS[call]
    task = next(
        task
        for task, points in ref.profile.items()
        if task.split("/")[1:] in ([phase, "-"], [phase, "0"]) and points.count(method) > occurrence
    )
    plan = FaultPlan(str(tmp_path / "journal"), (Fault("f0", "transient", task, occurrence, at=method),))
    outcome = run(ref.subject, ref.inputs, plan, tmp_path)
    assert fired(plan, plan.faults[0]) == 1
    assert outcome.problems == []
    assert outcome.outputs == ref.outputs


@pytest.mark.moto
@pytest.mark.long  # the retry of a transient storage error is in make test on local storage
def test_one_transient_commit_error_on_object_storage_is_retried(
    references: dict[str, Reference], tmp_path: Path
) -> None:
    """The PUT of a commit manifest to S3 fails once: a StorageError, which the state machine retries (it is not
    one of the permanent errors), so the local executor must retry it too."""
    ref = references["wordcount"]  # the same outputs on S3 as on local disk
    plan = FaultPlan(str(tmp_path / "journal"), (Fault("f0", "transient", "counts/commit/-", at="fs.pipe_file"),))
    with object_storage():
        outcome = run(ref.subject, ref.inputs, plan, tmp_path, storage_root("s3", tmp_path))
    assert fired(plan, plan.faults[0]) == 1
    assert outcome.problems == []
    assert outcome.outputs == ref.outputs


def test_the_oracle_sees_a_partial_file_a_lost_row_and_a_duplicated_row(
    references: dict[str, Reference], tmp_path: Path
) -> None:
    """The checks above can fail: tampering with a fault-free run's committed output is caught every way."""
    ref = references["ledger"]
    clean = run(ref.subject, ref.inputs, FaultPlan(str(tmp_path / "journal")), tmp_path / "clean", keep_work=True)
    assert clean.problems == [] and clean.outputs == ref.outputs
    run_dir = next((tmp_path / "clean" / "storage" / "ledger").iterdir())
    work_dir = tmp_path / "clean" / "storage" / WORK / "ledger" / run_dir.name
    run_uri, balances = str(run_dir), run_dir / "balances"  # a key stage: one part per bucket
    manifest = json.loads((balances / "_COMMITTED.json").read_text())
    assert len(manifest["files"]) > 1

    duplicated = {**manifest, "files": [*manifest["files"], manifest["files"][0]]}
    (balances / "_COMMITTED.json").write_text(json.dumps(duplicated))
    assert any("its files hold" in problem for problem in visible_problems(run_uri))
    found = outputs(clean.summary, run_uri)["balances"]
    assert len(found) > len(ref.outputs["balances"]) and set(found) == set(ref.outputs["balances"])

    lost = {**manifest, "files": manifest["files"][1:]}
    (balances / "_COMMITTED.json").write_text(json.dumps(lost))
    assert outputs(clean.summary, run_uri)["balances"] != ref.outputs["balances"]

    first = balances / manifest["files"][0]
    data = first.read_bytes()
    first.write_bytes(data[: len(data) // 2])
    (balances / "_COMMITTED.json").write_text(json.dumps(manifest))
    assert any("missing or partial" in problem for problem in visible_problems(run_uri))
    first.write_bytes(data)
    assert visible_problems(run_uri) == []

    stray = balances / "_attempts" / "x" / "part-00000.parquet"  # an attempt left where a glob finds it
    stray.parent.mkdir(parents=True)
    stray.write_bytes(data)
    assert any("a reader of the folder sees" in problem for problem in visible_problems(run_uri))
    shutil.rmtree(balances / "_attempts")

    mapped = work_dir / "balances" / "shuffle"  # a map task's shuffle object, read through its index
    shuffled = next(mapped.glob("*/chunk-*/_COMMITTED.json"))
    shuffle_object = shuffled.parent / json.loads(shuffled.read_text())["files"][0]
    data = shuffle_object.read_bytes()
    shuffle_object.write_bytes(data[:-1])
    assert any("missing or partial" in problem for problem in visible_problems(run_uri, str(work_dir)))
    shuffle_object.write_bytes(data)
    assert visible_problems(run_uri, str(work_dir)) == []

    plan = work_dir / "balances" / "split" / "plan.json"
    plan.write_bytes(plan.read_bytes()[:-10])
    assert visible_problems(run_uri, str(work_dir)) == [f"{plan}: a torn JSON file: {_json_error(plan)}"]


def _json_error(path: Path) -> str:
    try:
        json.loads(path.read_bytes())
    except ValueError as error:
        return str(error)
    raise AssertionError(f"{path} is whole JSON")
