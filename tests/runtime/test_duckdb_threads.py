"""A process serving duckdb stages in threads (a Cloud Run service with concurrency above 1) runs two stages
handled at once, each on its first attempt: its one DuckDB connection once refused the second with "connection is
busy with another call", a failure only retries hid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sparkflow.loading import load_pipeline
from tests.runtime.configs import write_plan

PIPELINE = Path(__file__).resolve().parents[1] / "resources" / "two_at_once" / "pipeline.py"
ROUNDS = 20

# A deployed function's process: SPARKFLOW_ENGINE=duckdb activates sqlframe before the pipeline is loaded.
SERVE_TWO_AT_ONCE = """
import json, sys, threading
from sparkflow.runtime.deployed import deployed_config
from sparkflow.runtime.execute import handle_event

config, root, rounds = deployed_config(), sys.argv[1], int(sys.argv[2])
outcomes = []

def handle(node, run):
    event = {"version": 1, "pipeline": "two_at_once", "node": node, "run": {"id": run, "storage": root}}
    try:
        outcomes.append([run, node, handle_event(event, config)["status"]])
    except Exception as error:
        outcomes.append([run, node, f"{type(error).__name__}: {error}"])

for number in range(rounds):
    threads = [threading.Thread(target=handle, args=(node, f"run-{number}")) for node in ("per_customer", "per_day")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
print(json.dumps(outcomes))
"""


def test_two_stages_handled_at_once_both_succeed_first_time(tmp_path: Path) -> None:
    root = f"{tmp_path}/"
    env = {**os.environ, "SPARKFLOW_ENGINE": "duckdb", "SPARKFLOW_PIPELINE": str(PIPELINE)}
    env["SPARKFLOW_STORAGE_ROOT"] = root
    env["SPARKFLOW_PLAN"] = write_plan(load_pipeline(str(PIPELINE)), tmp_path / "plan")
    done = subprocess.run(
        [sys.executable, "-c", SERVE_TWO_AT_ONCE, root, str(ROUNDS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(outcomes) == 2 * ROUNDS
    assert [outcome for outcome in outcomes if outcome[2] != "committed"] == []
