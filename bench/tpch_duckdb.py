"""The DuckDB engine's speed on the parity workload: the 14 TPC-H-like queries of tests/runtime/tpch/ run as
sparkflow stages with ``sparkflow run --engine duckdb`` (one local run of the whole pipeline, DuckDB worker
processes warm after the first run), ``--runs`` times after one warm-up run; prints every run's seconds and the
median.

Run: ``.venv/bin/python bench/tpch_duckdb.py [--runs 7]``. ``--sparkflow DIR`` measures the sparkflow
found in DIR instead (another checkout: e.g. a worktree of the commit before a change), with the same workload.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORKLOAD = Path(__file__).resolve().parent.parent / "tests" / "runtime" / "tpch"


def _module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sparkflow", help="measure the sparkflow package found in this folder")
    args = parser.parse_args()
    if args.sparkflow:
        sys.path.insert(0, str(Path(args.sparkflow).resolve()))
    from sparkflow.compiler import plan_pipeline
    from sparkflow.loading import load_pipeline
    from sparkflow.runtime.local import run_plan

    with tempfile.TemporaryDirectory(prefix="sparkflow-tpch-") as scratch:
        folder = Path(scratch)
        shutil.copy(WORKLOAD / "pipeline.py", folder / "pipeline.py")
        _module(WORKLOAD / "generate.py").write_tables(folder)
        pipeline = load_pipeline(str(folder / "pipeline.py"))
        plan = plan_pipeline(pipeline, "aws")
        seconds = []
        for run in range(args.runs + 1):
            started = time.perf_counter()
            summary = run_plan(plan, pipeline, storage_root=str(folder / f"store-{run}"), engine="duckdb")
            elapsed = time.perf_counter() - started
            assert summary.status == "succeeded", summary
            if run:  # the first run starts the DuckDB workers
                seconds.append(elapsed)
    import sparkflow

    print(f"sparkflow from {Path(sparkflow.__file__).parent}")
    print("runs (s):", " ".join(f"{value:.2f}" for value in seconds))
    print(f"median: {statistics.median(seconds):.2f} s for 14 queries on DuckDB")


if __name__ == "__main__":
    main()
