"""A run that publishes leaves nothing behind: its working files (attempts, claims, split manifests, item lists,
shuffle buckets, chunk parts under ``<storage>/_work/<pipeline>/<run>/``) are deleted by its publish task, while its
outputs and its quarantined records (``<run>/_rejects/``) stay. ``--keep-work`` keeps them; a failed run keeps them
for ``--resume``. Through ``sparkflow run``, on a local folder; the same on S3: tests/runtime/test_aws_runtime.py.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sparkflow.cli import main
from sparkflow.layout import run_work_location, work_root
from sparkflow.results import read_output

pytestmark = pytest.mark.spark

PIPELINE = textwrap.dedent(
    """
    from pyspark.sql import DataFrame
    import sparkflow as sf
    events = sf.source("events", "events.csv", format="csv", schema="user STRING, amount INT",
                       on_bad_record="quarantine")

    @sf.stage({partition})
    def cleaned(events: DataFrame) -> DataFrame:
        return events.where("amount > 1")

    @sf.stage
    def checked(cleaned: DataFrame) -> DataFrame:
        {check}
        return cleaned

    @sf.pipeline
    def leftovers():
        return checked(cleaned(events))
    """
)
DATA = "user,amount\na,1\nb,2\nc,x\nd,4\ne,5,extra\nf,6\n"  # two bad records, quarantined
CHUNK = "16B"  # per chunk: the split run has several chunks
RUN = "r1"
LAYOUTS = {"whole": ("", []), "split": ('partition="rows"', ["--chunk-size", CHUNK])}


def write_pipeline(folder: Path, partition: str, fail: bool = False) -> Path:
    (folder / "events.csv").write_text(DATA)
    module = folder / "pipeline.py"
    check = 'raise ValueError("checked refuses")' if fail else "pass"
    module.write_text(PIPELINE.format(partition=partition, check=check))
    return module


def run(module: Path, storage: Path, *options: str) -> Result:
    return CliRunner().invoke(main, ["run", str(module), "--storage", str(storage), "--run-id", RUN, *options])


def files_under(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_published_run_deletes_its_work_and_keeps_outputs_and_rejects(tmp_path: Path, layout: str) -> None:
    partition, options = LAYOUTS[layout]
    module, storage = write_pipeline(tmp_path, partition), tmp_path / "store"
    result = run(module, storage, *options)
    assert result.exit_code == 0, result.output
    assert files_under(storage / "_work") == []
    run_dir = storage / "leftovers" / RUN
    assert (run_dir / "checked" / "_COMMITTED.json").is_file() and (run_dir / "cleaned" / "_COMMITTED.json").is_file()
    rejects = [json.loads(line)["record"] for file in files_under(run_dir / "_rejects") for line in file.open()]
    assert sorted(rejects) == ["c,x", "e,5,extra"]
    table = read_output(str(module), "checked", storage=str(storage))  # read through the commit manifest
    assert sorted(table.column("user").to_pylist()) == ["b", "d", "f"]
    # Running the finished run again reads only what publishing kept: every stage answers already committed.
    again = run(module, storage, *options, "--resume", "--json")
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert {node["status"] for node in summary["nodes"].values()} == {"already-committed"}
    assert files_under(storage / "_work") == []


def test_keep_work_keeps_the_working_files(tmp_path: Path) -> None:
    module, storage = write_pipeline(tmp_path, LAYOUTS["split"][0]), tmp_path / "store"
    result = run(module, storage, "--chunk-size", CHUNK, "--keep-work")
    assert result.exit_code == 0, result.output
    work = Path(run_work_location(str(storage), "leftovers", RUN))
    kept = {path.relative_to(work).as_posix() for path in files_under(work)}
    assert {"cleaned/claim.json", "cleaned/split/plan.json", "checked/claim.json"} <= kept
    assert any(name.startswith("cleaned/parts/chunk-00001/") for name in kept)


def test_a_failed_run_keeps_its_work_for_resume(tmp_path: Path) -> None:
    module, storage = write_pipeline(tmp_path, LAYOUTS["split"][0], fail=True), tmp_path / "store"
    result = run(module, storage, "--chunk-size", CHUNK)
    assert result.exit_code == 1
    assert "checked refuses" in result.output
    work = Path(run_work_location(str(storage), "leftovers", RUN))
    assert (work / "cleaned" / "claim.json").is_file() and (work / "cleaned" / "split" / "plan.json").is_file()
    assert files_under(storage / "leftovers" / RUN / "_rejects")
    assert Path(work_root(str(storage))) == storage / "_work"  # what the storage's lifecycle rule expires


def test_a_deployed_run_keeps_its_work_through_its_input() -> None:
    """`sparkflow start --keep-work` puts ``keep_work`` in the execution input, which every event carries as
    ``run.params`` (the runtime's event schema takes it) and the publish task reads."""
    from sparkflow.runtime.protocol import KEEP_WORK_FIELD, validate_event
    from sparkflow.targets.runs import run_input

    given = json.loads(run_input({"events": "s3://b/events/"}, keep_work=True))
    assert given == {"sources": {"events": "s3://b/events/"}, KEEP_WORK_FIELD: True}
    assert KEEP_WORK_FIELD not in json.loads(run_input({}))
    event = {"version": 1, "pipeline": "leftovers", "phase": "publish", "run": {"id": RUN, "storage": "s3://b/"}}
    validate_event({**event, "run": {**event["run"], "params": given}})


def test_a_cleanup_that_fails_leaves_the_run_published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting the working files comes after the outputs and ``_latest.json``: a storage that refuses the delete
    leaves a published, successful run (with a warning), and the lifecycle rule expires what is left."""
    from sparkflow.errors import StorageError
    from sparkflow.runtime import storage as runtime_storage

    def refuse(location: str) -> None:
        raise StorageError(f"cannot delete {location!r}: access denied")

    monkeypatch.setattr(runtime_storage, "remove_folder", refuse)
    module, storage = write_pipeline(tmp_path, LAYOUTS["split"][0]), tmp_path / "store"
    result = run(module, storage, "--chunk-size", CHUNK)
    assert result.exit_code == 0, result.output
    assert files_under(storage / "_work")  # left for the lifecycle rule
    table = read_output(str(module), "checked", storage=str(storage))
    assert sorted(table.column("user").to_pylist()) == ["b", "d", "f"]
    logged = (storage / "leftovers" / RUN / "_logs.jsonl").read_text()
    assert '"message": "work not deleted"' in logged and '"severity": "WARNING"' in logged
