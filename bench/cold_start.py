"""Cold start and warm invocation of one tiny stage, measured as users meet them.

* cold: a whole process, ``python -m sparkflow.runtime EVENT`` (the container entry), from process start to
  the printed result: interpreter, imports, JVM and SparkSession start, read, compute, write, commit;
* warm: the second event handled by the same process (the SparkSession is reused);
* baseline: a plain PySpark script doing the same work with ``SparkSession.builder.getOrCreate()`` defaults;
* sail, duckdb: the same stage, unchanged, in a process with ``SPARKFLOW_ENGINE=sail`` (Sail, no JVM) or
  ``SPARKFLOW_ENGINE=duckdb`` (sqlframe on DuckDB, no JVM);
* CDS: the Spark stage with the JDK class-data-sharing archive the images build and use.

Run: ``.venv/bin/python bench/cold_start.py [--runs 3]``. Prints medians and ratios against the baseline.
``bench/suite.py`` (``make bench``) measures the same variants, with their peak memory, in its one table.
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
from dataclasses import dataclass
from pathlib import Path

from measure import run_measured

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


@dataclass(frozen=True)
class Variants:
    """The tiny stage, prepared in ``folder``: the command of each variant and the environment it runs in."""

    folder: Path
    env: dict[str, str]  # the Spark engine
    sail_env: dict[str, str]  # SPARKFLOW_ENGINE=sail
    duck_env: dict[str, str]  # SPARKFLOW_ENGINE=duckdb
    cds_env: dict[str, str]  # the Spark engine with the images' class-data-sharing archive

    def event(self, run: str) -> str:
        return json.dumps(
            {
                "version": 1,
                "pipeline": "tiny",
                "node": "per_user",
                "run": {"id": run, "storage": f"{self.folder / 'store'}/"},
            }
        )

    def baseline(self, run: str) -> list[str]:
        """The plain PySpark script, writing to its own folder."""
        return [
            sys.executable,
            str(self.folder / "baseline.py"),
            str(self.folder / "events.csv"),
            str(self.folder / run),
        ]

    def stage(self, run: str) -> list[str]:
        """One cold stage process: the container entry with one event."""
        return [sys.executable, "-m", "sparkflow.runtime", self.event(run)]

    def warm(self, run: str) -> list[str]:
        """One process handling three events of the stage; prints the seconds of each."""
        return [sys.executable, "-c", WARM, self.event(run)]


def prepare(folder: Path, *, cds: bool = True) -> Variants:
    """Write the pipeline, the baseline script and 10,000 CSV rows into ``folder``; train the CDS archive."""
    (folder / "pipeline.py").write_text(PIPELINE)
    (folder / "baseline.py").write_text(BASELINE)
    with open(folder / "events.csv", "w") as handle:
        handle.write("user,amount\n")
        handle.writelines(f"{row % 100},{row * 0.5}\n" for row in range(10_000))
    env = {
        **os.environ,
        "SPARKFLOW_PIPELINE": str(folder / "pipeline.py"),
        "SPARKFLOW_PLAN": _ship_plan(folder),
        "SPARKFLOW_STORAGE_ROOT": str(folder / "store"),
    }
    archive = folder / "spark.jsa"
    if cds:
        # The class-data-sharing archive the images build (sparkflow.shipping.spark_home.train_cds_archive),
        # trained once in its own process and used as the images use it.
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"from sparkflow.shipping.spark_home import train_cds_archive as t; t({str(archive)!r})",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    cds_env = {**env, "SPARK_SUBMIT_OPTS": f"-XX:SharedArchiveFile={archive} -Xshare:auto -Xlog:cds*=error"}
    return Variants(folder, env, {**env, "SPARKFLOW_ENGINE": "sail"}, {**env, "SPARKFLOW_ENGINE": "duckdb"}, cds_env)


def _ship_plan(folder: Path) -> str:
    """The pipeline's Plan, written beside it as ``sparkflow package`` ships it (a deployed stage reads its task
    from it); compiled in a process of its own, so that the measured processes are the only ones to load Spark."""
    code = (
        "import sys; from pathlib import Path; from sparkflow.compiler import plan_pipeline; "
        "from sparkflow.loading import load_pipeline; from sparkflow.shipping.project import write_plan; "
        "print(write_plan(plan_pipeline(load_pipeline(sys.argv[1]), 'aws'), Path(sys.argv[2])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder / "pipeline.py"), str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cold starts per variant (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sparkflow-bench-") as scratch:
        variants = prepare(Path(scratch))
        cold, baseline, duck, cds = [], [], [], []
        for index in range(args.runs):
            # Interleave the variants so that machine noise hits both alike.
            baseline.append(run_measured(variants.baseline(f"b{index}"), variants.env).seconds)
            cold.append(run_measured(variants.stage(f"cold-{index}"), variants.env).seconds)
            cds.append(run_measured(variants.stage(f"cds-{index}"), variants.cds_env).seconds)
            duck.append(run_measured(variants.stage(f"duck-{index}"), variants.duck_env).seconds)
        warm = json.loads(run_measured(variants.warm("x"), variants.env).stdout.strip().splitlines()[-1])
        duck_warm = json.loads(run_measured(variants.warm("d"), variants.duck_env).stdout.strip().splitlines()[-1])
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


if __name__ == "__main__":
    main()
