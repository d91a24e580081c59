"""Where a cold Spark stage's seconds go: one whole process, phase by phase.

Runs the tiny stage of :mod:`cold_start` (10k-row CSV, group by, Parquet) in a fresh process, as the container entry
does, and times each phase from the process's own start: the interpreter and sparkflow's imports; the JVM launched
through ``spark-submit`` until its Py4J gateway answers (pyspark's ``launch_gateway``); the SparkContext and
SparkSession started in that JVM and the stage's first event (read, compute, write, commit: the first query); a
second event in the same process (the same work warm: what the first query cost beyond it is the first query's own
start-up); and the exit. With ``--cds`` the JVM uses the class-data-sharing
archive the images build.

    .venv/bin/python bench/cold_profile.py [--runs 3] [--cds]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import cold_start

# The phases, timed inside the measured process; ``started`` is taken by the parent just before it starts it.
PROFILED = textwrap.dedent(
    """
    import time
    begin = time.time()
    import json, sys
    from sparkflow.runtime.deployed import deployed_config
    from sparkflow.runtime.execute import handle_event
    import pyspark.core.context as spark_context
    marks = {"imports": time.time()}
    launch = spark_context.launch_gateway

    def timed_launch(*args, **kwargs):  # the JVM through spark-submit, until its Py4J gateway answers
        gateway = launch(*args, **kwargs)
        marks["jvm and gateway"] = time.time()
        return gateway

    spark_context.launch_gateway = timed_launch
    event = json.loads(sys.argv[1])
    handle_event(event, deployed_config())  # the session starts at the task's first read
    marks["SparkContext, session and first event (first query)"] = time.time()
    event["run"]["id"] += "-again"
    handle_event(event, deployed_config())
    marks["second event (warm)"] = time.time()
    print(json.dumps({"begin": begin, **marks}))
    """
)


def profile(variants: cold_start.Variants, env: dict[str, str], run: str) -> dict[str, float]:
    """One cold process: the seconds of each phase, in order, with the process's start and its exit."""
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", PROFILED, variants.event(run)], env=env, capture_output=True, text=True, check=True
    )
    ended = time.time()
    marks = json.loads(done.stdout.strip().splitlines()[-1])
    phases = {"interpreter start": marks.pop("begin") - started}
    previous = started + phases["interpreter start"]
    for name, at in marks.items():
        phases[name] = at - previous
        previous = at
    phases["exit"] = ended - previous
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cold processes (the median of each phase is shown)")
    parser.add_argument("--cds", action="store_true", help="with the images' class-data-sharing archive")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sparkflow-cold-") as scratch:
        variants = cold_start.prepare(Path(scratch), cds=args.cds)
        env = variants.cds_env if args.cds else variants.env
        runs = [profile(variants, env, f"p{index}") for index in range(args.runs)]
    print(f"cold Spark stage, {'with' if args.cds else 'without'} the CDS archive, medians of {args.runs} processes:")
    print("| phase | seconds |\n|---|---|")
    for name in runs[0]:
        print(f"| {name} | {statistics.median(run[name] for run in runs):.2f} |")
    cold = [sum(value for key, value in run.items() if key != "second event (warm)") for run in runs]
    print(f"| (whole cold process, without the second event) | {statistics.median(cold):.2f} |")


if __name__ == "__main__":
    main()
