"""Word count over generated text, three ways, each a whole process measured side by side:

* plain: one PySpark job (the example's own stage functions composed, read and written directly; with a last
  argument ``duckdb``, the same code on sqlframe's DuckDB session; with ``sail``, on a Sail server);
* sparkflow, whole: ``sparkflow run`` with every stage on its whole input (splitting off);
* sparkflow, split: ``sparkflow run`` with the compiled chunk sizes (or ``--chunk-mb``).

Run: ``.venv/bin/python bench/split_wordcount.py [--mb 1024] [--chunk-mb 128] [--engine duckdb]``. Prints seconds
and the ratio of each sparkflow run to the plain job (always Spark); ``--engine`` runs sparkflow's stages on DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAIN = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    DUCKDB = sys.argv[4:] == ["duckdb"]  # the same code on sqlframe's DuckDB session instead of Spark
    SAIL = sys.argv[4:] == ["sail"]  # the same code on a Sail server in this process, through Spark Connect
    if DUCKDB:
        from sqlframe import activate
        activate("duckdb")
    from pyspark.sql import SparkSession
    from pipeline import counts, top, words  # the example's own stage functions, run as plain functions
    if SAIL:
        from pysail.spark import SparkConnectServer
        server = SparkConnectServer(ip="127.0.0.1", port=0)
        server.start(background=True)
        host, port = server.listening_address
        spark = SparkSession.builder.remote(f"sc://{host}:{port}").getOrCreate()
    else:
        spark = SparkSession.builder.master("local[*]").getOrCreate()
    if DUCKDB:  # sqlframe has no read.text: one column, a separator that does not occur, no quoting
        lines = spark.read.csv(sys.argv[1], schema="value STRING", sep="\x01", quote="", escape="", header=False)
    else:
        lines = spark.read.text(sys.argv[1])
    top(counts(words(lines))).write.mode("overwrite").parquet(sys.argv[2])
    """
)
# sparkflow run of PIPELINE into STORAGE with INPUTS (JSON: source -> location), MODE (whole: splitting off, or
# split), CHUNK bytes (0: the compiled sizes) and optionally ENGINE (spark, sail or duckdb for every stage).
RUN = textwrap.dedent(
    """
    import dataclasses, json, sys
    from sparkflow.compiler import PASSES, plan_pipeline
    from sparkflow.loading import load_pipeline
    from sparkflow.runtime.local import run_plan
    from sparkflow.targets.local import LOCAL
    pipeline = load_pipeline(sys.argv[1])
    mode, chunk, engine = sys.argv[4], int(sys.argv[5]), (sys.argv[6:] or [""])[0]
    # Whole: no fusing either (fused stages run only inside the phases of a split stage). The passes are given, not
    # patched into sparkflow.compiler.PASSES: plan_pipeline's default is bound when it is defined.
    passes = tuple(p for p in PASSES if p.__name__ != "fuse") if mode == "whole" else PASSES
    plan = plan_pipeline(pipeline, LOCAL, passes=passes)
    if mode == "whole":
        plan = dataclasses.replace(plan, tasks=tuple(dataclasses.replace(t, fanout=None) for t in plan.tasks))
    summary = run_plan(plan, pipeline, storage_root=sys.argv[2], inputs=json.loads(sys.argv[3]),
                       chunk_bytes=chunk or None, engine=engine or None)
    assert summary.status == "succeeded", summary
    print(json.dumps({n.node: [n.chunks, n.buckets] for n in summary.nodes.values()}))
    """
)


def generate(path: Path, megabytes: int) -> None:
    rng = random.Random(11)
    vocabulary = [f"w{n}" for n in range(20_000)] + ["the", "of", "and", "spark", "serverless"] * 400
    target = megabytes * 1024 * 1024
    with open(path, "w") as handle:
        written = 0
        while written < target:
            block = "\n".join(" ".join(rng.choices(vocabulary, k=10)) for _ in range(10_000)) + "\n"
            handle.write(block)
            written += len(block)


def timed(command: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ})
    return time.perf_counter() - started, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="megabytes of text to count (default 1024)")
    parser.add_argument("--chunk-mb", type=int, default=0, help="chunk size for the split run (default: compiled)")
    parser.add_argument("--engine", choices=("spark", "sail", "duckdb"), default="spark", help="sparkflow's engine")
    args = parser.parse_args()
    example = ROOT / "examples" / "wordcount" / "pipeline.py"
    with tempfile.TemporaryDirectory(prefix="sparkflow-wordcount-") as scratch:
        folder = Path(scratch)
        books = folder / "books.txt"
        generate(books, args.mb)
        chunk = args.chunk_mb * 1024 * 1024
        plain, _ = timed([sys.executable, "-c", PLAIN, str(books), str(folder / "plain"), str(example.parent)])
        inputs = json.dumps({"books": str(books)})
        run = [sys.executable, "-c", RUN, str(example)]
        whole, _ = timed([*run, str(folder / "whole"), inputs, "whole", "0", args.engine])
        split, shape = timed([*run, str(folder / "split"), inputs, "split", str(chunk), args.engine])
    print(f"word count over {args.mb} MiB of text (2 cores, sparkflow on {args.engine}), whole processes:")
    print(f"{'variant':<34} {'seconds':>8} {'vs plain':>9}")
    for name, seconds in (("plain PySpark job", plain), ("sparkflow run, splitting off", whole)):
        print(f"{name:<34} {seconds:>8.1f} {seconds / plain:>9.2f}")
    print(f"{'sparkflow run, split':<34} {split:>8.1f} {split / plain:>9.2f}   chunks x buckets: {json.loads(shape)}")


if __name__ == "__main__":
    main()
