"""`sparkflow start --resume RUN_ID --target gcp`, end to end through the command line: the official
``ExecutionsClient`` against the local stand-in of the Workflow Executions API (tests/gcp/conftest.py), which runs
the compiled workflow in workflows-emulator, every stage call answered by the real runtime (in DuckDB worker
processes, as ``sparkflow run`` runs duckdb stages) on local storage. Plus the refusals of ``--resume``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.errors import SparkflowError
from sparkflow.loading import load_pipeline
from sparkflow.results import locate, read_table
from sparkflow.runtime.deployed import deployed_config
from sparkflow.runtime.http import status_of
from sparkflow.runtime.workers import WorkerPool
from sparkflow.targets.gcp.emit import STORAGE_ROOT_ENV
from tests.gcp.conftest import RUN_ID, StageDouble, compiled
from tests.runtime.configs import write_plan

RESUMABLE = Path(__file__).resolve().parents[1] / "resources" / "resumable" / "pipeline.py"
SHOUTING = Path(__file__).resolve().parents[1] / "ship" / "resources" / "shouting" / "pipeline.py"
PLACE = ["--project", "proj-1", "--region", "europe-west1"]
GOOD_PRICES = "status,fee\npaid,0.5\nrefunded,1.0\n"
BAD_PRICES = "status,fee\npaid,-0.5\nrefunded,1.0\n"


class CloudRunService:
    """Stands in for the Cloud Run service: each call's event is run by the runtime in a worker of ``engine`` (one
    that prepares its process: a DuckDB worker by default); a refused one answers the status the runtime's HTTP entry
    gives it, as Workflows reports it (an ``HttpError``)."""

    def __init__(self, engine: str = "duckdb") -> None:
        self.pool = WorkerPool(deployed_config(), engine)
        self.answered: list[tuple[str | None, str | None, str]] = []  # node, phase, status

    def __call__(self, method: str, url: str, body: Any = None, **_: Any) -> dict[str, Any]:
        from workflows_emulator.utils import WorkflowError

        event = json.loads(json.dumps(body))
        where = (event.get("node"), event.get("phase"))
        try:
            result = self.pool.handle_event(event)
        except SparkflowError as error:
            self.answered.append((*where, "failed"))
            code = status_of(error)
            raise WorkflowError(
                message=f"HTTP server responded with error code {code}",
                tags=["HttpError"],
                code=code,
                headers={"Content-Type": "application/json"},
                body={"error": type(error).__name__, "message": str(error)},
            ) from error
        self.answered.append((*where, str(result["status"])))
        return {"code": 200, "headers": {"Content-Type": "application/json"}, "body": result}


def rows(root: str, node: str, run_id: str) -> list[dict[str, Any]]:
    found = read_table(locate(str(RESUMABLE), node, storage=root, run_id=run_id), 1000).to_pylist()
    return sorted(found, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def test_a_failed_run_resumes_running_only_what_failed(
    executions_api: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from google.cloud.workflows import executions_v1

    root = tmp_path / "gcs"
    data = root / "data"
    data.mkdir(parents=True)
    (data / "orders.csv").write_text((RESUMABLE.parent / "orders.csv").read_text())
    prices = data / "prices.csv"
    prices.write_text(BAD_PRICES)
    monkeypatch.setenv(STORAGE_ROOT_ENV, f"{root}/")  # the workflow's and the runtime's root: the same variable
    monkeypatch.setenv("SPARKFLOW_PIPELINE", str(RESUMABLE))
    monkeypatch.setenv("SPARKFLOW_PLAN", write_plan(load_pipeline(str(RESUMABLE)), tmp_path / "plan", "gcp"))
    _, text = compiled(RESUMABLE)
    workflow = "projects/proj-1/locations/europe-west1/workflows/resumable"
    service = CloudRunService()
    api, client = executions_api({workflow: text}, service)  # type: ignore[arg-type]
    monkeypatch.setattr(executions_v1, "ExecutionsClient", lambda: client)
    runner = CliRunner()
    common = [str(RESUMABLE), "--target", "gcp", *PLACE]
    inputs = [f"--input=orders={data / 'orders.csv'}", f"--input=prices={prices}"]

    first = runner.invoke(main, ["start", *common, *inputs, "--json"])
    assert first.exit_code == 1, first.output
    failed = json.loads(first.stdout)
    assert (failed["status"], failed["run_id"]) == ("FAILED", RUN_ID)
    assert failed["cause"] == "stage report of pipeline resumable failed: HTTP server responded with error code 422"
    assert "negative fee" in api.executions[failed["execution"]].error.payload
    assert {node for node, _, status in service.answered if status == "committed"} == {"spend", "tidy", "statuses"}
    service.answered.clear()

    prices.write_text(GOOD_PRICES)  # the user fixes the input
    again = runner.invoke(main, ["start", *common, "--resume", RUN_ID, "--json"])
    assert again.exit_code == 0, again.output
    resumed = json.loads(again.stdout)
    assert resumed["status"] == "SUCCEEDED" and resumed["run_id"] == RUN_ID
    assert resumed["execution"] != failed["execution"]  # a new execution of the same run
    assert resumed["outputs"] == {"summary": f"{root}/resumable/{RUN_ID}/summary/"}
    created = [request for method, request in api.requests if method == "CreateExecution"]
    given = {"sources": {"orders": str(data / "orders.csv"), "prices": str(prices)}}
    assert json.loads(created[-1].execution.argument) == {"resume": {"run_id": RUN_ID, "params": given}}
    # Real work only where the run failed: committed stages answer their call (a split stage: its split and its
    # commit, no chunk call) with already-committed.
    assert {node for node, _, status in service.answered if status == "committed"} == {"report", "summary", None}
    assert sorted((node, phase) for node, phase, status in service.answered if status == "already-committed") == [
        ("spend", "commit"),
        ("spend", "split"),
        ("statuses", None),
        ("tidy", "commit"),
        ("tidy", "split"),
    ]

    plain = runner.invoke(main, ["start", *common, *inputs, "--json"])
    assert plain.exit_code == 0, plain.output
    other = json.loads(plain.stdout)["run_id"]
    assert other != RUN_ID
    for node in ("spend", "report", "summary"):
        assert rows(f"{root}/", node, RUN_ID) == rows(f"{root}/", node, other), node

    done = runner.invoke(main, ["start", *common, "--resume", RUN_ID])
    assert done.exit_code == 2
    assert f"error: --resume {RUN_ID}: run {RUN_ID} already succeeded (" in done.stderr
    assert "there is nothing to resume: start a new run without --resume" in done.stderr
    unknown = runner.invoke(main, ["start", *common, "--resume", "no-such-run"])
    assert unknown.exit_code == 2
    assert unknown.stderr == (
        "error: --resume no-such-run: workflow resumable has no run 'no-such-run'; give the run id `sparkflow start` "
        "printed (the id of the run's first execution)\n"
    )


def test_a_running_run_is_not_resumed(executions_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.cloud.workflows import executions_v1

    plan, text = compiled(SHOUTING)
    api, client = executions_api({"projects/proj-1/locations/europe-west1/workflows/shouting": text}, StageDouble(plan))
    monkeypatch.setattr(executions_v1, "ExecutionsClient", lambda: client)
    api.gate = "longest"
    started = CliRunner().invoke(main, ["start", str(SHOUTING), "--target", "gcp", *PLACE, "--no-follow"])
    assert started.exit_code == 0, started.output
    assert api.reached.wait(timeout=60)
    refused = CliRunner().invoke(main, ["start", str(SHOUTING), "--target", "gcp", *PLACE, "--resume", RUN_ID])
    assert refused.exit_code == 2
    execution = started.stdout.strip()
    assert refused.stderr == (
        f"error: --resume {RUN_ID}: run {RUN_ID} is still running ({execution}); wait for it to end "
        f"(`sparkflow status {execution} --target gcp`) or cancel it, then resume it\n"
    )
    nowhere = CliRunner().invoke(main, ["start", str(SHOUTING), "--target", "gcp", "--resume", RUN_ID])
    assert nowhere.exit_code == 2 and "--target gcp needs --project and --region" in nowhere.stderr
    api.release.set()
