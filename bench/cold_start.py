"""Cold start and warm invocation of one tiny stage, measured as users meet them.

* cold: a whole process, ``python -m sparkflow.runtime EVENT`` (the container entry), from process start to
  the printed result: interpreter, imports, JVM and SparkSession start, read, compute, write, commit;
* warm: the second event handled by the same process (the SparkSession is reused);
* baseline: a plain PySpark script doing the same work with ``SparkSession.builder.getOrCreate()`` defaults;
* duckdb: the same stage, unchanged, in a process with ``SPARKFLOW_ENGINE=duckdb`` (sqlframe on DuckDB, no JVM);
* CDS: the Spark stage with the JDK class-data-sharing archive the images build and use.

Run: ``.venv/bin/python bench/cold_start.py [--runs 3]``. Prints medians and ratios against the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

PIPELINE = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F
    import sparkflow as sf

    events = sf.source("events", "events.csv", schema="user INT, amount DOUBLE")

    @sf.stage
    def per_user(events: DataFrame) -> DataFrame:
        return events.groupBy("user").agg(F.sum("amount").alias("total"))

    @sf.pipeline
    def tiny():
        return per_user(events)
    """
)
BASELINE = textwrap.dedent(
    """
    import sys
    from pyspark.sql import SparkSession, functions as F
    spark = SparkSession.builder.getOrCreate()
    frame = spark.read.csv(sys.argv[1], header=True, schema="user INT, amount DOUBLE")
    frame.groupBy("user").agg(F.sum("amount").alias("total")).write.mode("overwrite").parquet(sys.argv[2])
    print("done")
    """
)
WARM = textwrap.dedent(
    """
    import json, sys, time
    from sparkflow.runtime.deployed import deployed_config
    from sparkflow.runtime.execute import handle_event
    event = json.loads(sys.argv[1])
    times = []
    prefix = event["run"]["id"]
    for run in ("warm-1", "warm-2", "warm-3"):
        event["run"]["id"] = f"{prefix}-{run}"  # a new run each time: never an already-committed skip
        started = time.perf_counter()
        handle_event(event, deployed_config())
        times.append(time.perf_counter() - started)
    print(json.dumps(times))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cold starts per variant (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sparkflow-bench-") as scratch:
        folder = Path(scratch)
        (folder / "pipeline.py").write_text(PIPELINE)
        (folder / "baseline.py").write_text(BASELINE)
        with open(folder / "events.csv", "w") as handle:
            handle.write("user,amount\n")
            handle.writelines(f"{row % 100},{row * 0.5}\n" for row in range(10_000))
        env = {
            **os.environ,
            "SPARKFLOW_PIPELINE": str(folder / "pipeline.py"),
            "SPARKFLOW_STORAGE_ROOT": str(folder / "store"),
        }

        def event(run: str) -> str:
            return json.dumps(
                {
                    "version": 1,
                    "pipeline": "tiny",
                    "node": "per_user",
                    "run": {"id": run, "storage": f"{folder / 'store'}/"},
                }
            )

        duck_env = {**env, "SPARKFLOW_ENGINE": "duckdb"}
        # The class-data-sharing archive the images build (sparkflow.targets.aws.package.train_cds_archive),
        # trained once in its own process and used as the images use it.
        archive = folder / "spark.jsa"
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"from sparkflow.targets.aws.package import train_cds_archive as t; t({str(archive)!r})",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        cds_env = {**env, "SPARK_SUBMIT_OPTS": f"-XX:SharedArchiveFile={archive} -Xshare:auto -Xlog:cds*=error"}
        cold, baseline, duck, cds = [], [], [], []
        for index in range(args.runs):
            # Interleave the variants so that machine noise hits both alike.
            baseline.append(
                _timed(
                    [
                        sys.executable,
                        str(folder / "baseline.py"),
                        str(folder / "events.csv"),
                        str(folder / f"b{index}"),
                    ],
                    env,
                )
            )
            cold.append(_timed([sys.executable, "-m", "sparkflow.runtime", event(f"cold-{index}")], env))
            cds.append(_timed([sys.executable, "-m", "sparkflow.runtime", event(f"cds-{index}")], cds_env))
            duck.append(_timed([sys.executable, "-m", "sparkflow.runtime", event(f"duck-{index}")], duck_env))
        warm_out = subprocess.run(
            [sys.executable, "-c", WARM, event("x")], env=env, capture_output=True, text=True, check=True
        ).stdout
        warm = json.loads(warm_out.strip().splitlines()[-1])
        duck_out = subprocess.run(
            [sys.executable, "-c", WARM, event("d")], env=duck_env, capture_output=True, text=True, check=True
        ).stdout
        duck_warm = json.loads(duck_out.strip().splitlines()[-1])
    base = statistics.median(baseline)
    rows = [
        ("plain PySpark, defaults (baseline)", base),
        ("sparkflow stage, cold (whole process)", statistics.median(cold)),
        ("sparkflow stage, cold, with the CDS archive", statistics.median(cds)),
        ("sparkflow stage, first call in process", warm[0]),
        ("sparkflow stage, warm (2nd call)", warm[1]),
        ("sparkflow stage, warm (3rd call)", warm[2]),
        ("sparkflow/duckdb stage, cold (whole process)", statistics.median(duck)),
        ("sparkflow/duckdb stage, warm (2nd call)", duck_warm[1]),
    ]
    print(f"{'variant':<46} {'seconds':>8} {'vs baseline':>12}")
    for name, seconds in rows:
        print(f"{name:<46} {seconds:>8.2f} {seconds / base:>12.3f}")
    print(
        f"(cold runs: {', '.join(f'{s:.2f}' for s in cold)}; baseline runs: {', '.join(f'{s:.2f}' for s in baseline)}; "
        f"duckdb runs: {', '.join(f'{s:.2f}' for s in duck)}; CDS runs: {', '.join(f'{s:.2f}' for s in cds)})"
    )


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
