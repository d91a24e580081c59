"""Load runs: thousands of chunk tasks, timed, with the peak memory of the whole process tree.

* ``local``: ``sparkflow run --engine duckdb`` (the local executor and its DuckDB worker processes) over
  :mod:`pipelines/bulk.py`, one rows stage that cuts its input into 1 KiB chunks.
* ``moto``: the same pipeline compiled to ASL and run by moto's Step Functions interpreter: each chunk a child
  execution of a Distributed Map whose ItemReader reads the chunk list from moto's S3, every Lambda invocation
  answered in this process by the real handler (``SPARKFLOW_ENGINE=duckdb``, one warm instance at a time),
  storage on moto's S3.

Both check the output against the generated input, entry by entry: no row lost or duplicated across the chunks.
:func:`measure` runs either in a child process (``python -m tests.faults.load KIND ...``) and samples
the resident memory of that child and all its descendants every 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparkflow.loading import load_pipeline
from sparkflow.runtime.shutdown import exit_now
from tests.faults.parquet import parquet_rows
from tests.runtime.configs import write_plan

HERE = Path(__file__).resolve().parent
BULK = HERE / "pipelines" / "bulk.py"
CHUNK_BYTES = 1024  # postings' chunk_size in pipelines/bulk.py
BUCKET = "sparkflow-load"


def write_bulk(path: Path, chunks: int, seed: int = 8) -> dict[int, tuple[str, int]]:
    """CSV entries that the splitter cuts into exactly ``chunks`` chunks; returns what ``postings`` must output:
    id -> (account, amount) of every entry with a non-zero amount."""
    generator = random.Random(seed)
    lines = ["id,account,amount"]
    size = len(lines[0]) + 1
    expected: dict[int, tuple[str, int]] = {}
    number = 0
    while size <= (chunks - 1) * CHUNK_BYTES + CHUNK_BYTES // 2:  # ceil(size / chunk) == chunks
        account, amount = f"acct-{generator.randrange(100):02d}", generator.randint(-500, 500)
        lines.append(f"{number},{account},{amount}")
        size += len(lines[-1]) + 1
        if amount:
            expected[number] = (account, amount)
        number += 1
    path.write_text("\n".join(lines) + "\n")
    return expected


def postings(files: list[bytes]) -> dict[int, tuple[str, int]]:
    """id -> (account, amount) from the committed Parquet files of ``postings``; an id seen twice is an error."""
    found: dict[int, tuple[str, int]] = {}
    for data in files:
        for row in parquet_rows(data):
            if row["id"] in found:
                raise AssertionError(f"entry {row['id']} appears twice in the output")
            found[row["id"]] = (row["account"], row["amount"])
    return found


# --- the runs (each in its own process) ------------------------------------------------------------------------


def run_local(chunks: int, folder: Path) -> dict[str, Any]:
    data = folder / "entries.csv"
    expected = write_bulk(data, chunks)
    command = [str(Path(sys.executable).parent / "sparkflow"), "run", str(BULK), "--input", f"entries={data}"]
    command += ["--storage", str(folder / "storage"), "--engine", "duckdb", "--run-id", "load", "--json"]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise AssertionError(f"sparkflow run failed ({completed.returncode}): {completed.stderr[-2000:]}")
    summary = json.loads(completed.stdout)
    location = Path(summary["outputs"]["postings"])
    manifest = json.loads((location / "_COMMITTED.json").read_text())
    found = postings([(location / name).read_bytes() for name in manifest["files"]])
    return _verdict(expected, found, summary["nodes"]["postings"]["chunks"], chunks)


def run_moto(chunks: int, folder: Path) -> dict[str, Any]:
    from sparkflow.runtime import duckdb_engine

    duckdb_engine.activate()  # before any pipeline is loaded: this process answers every Lambda invocation

    from sparkflow.compiler import compile_pipeline
    from sparkflow.runtime import aws as lambda_entry
    from sparkflow.runtime import storage
    from tests import aws_moto

    data = folder / "entries.csv"
    expected = write_bulk(data, chunks)
    aws = aws_moto.start_moto()
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(data), BUCKET, "input/entries.csv")
    root = f"s3://{BUCKET}/root/"
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": aws.endpoint,
            "SPARKFLOW_PIPELINE": str(BULK),
            "SPARKFLOW_PLAN": write_plan(load_pipeline(str(BULK)), Path(tempfile.mkdtemp(prefix="sparkflow-plan-"))),
            "SPARKFLOW_STORAGE_ROOT": root,
            "SPARKFLOW_ENGINE": "duckdb",
            "SPARKFLOW_ALLOWED_INPUTS": f"s3://{BUCKET}/input/",
        }
    )
    lock = threading.Lock()

    def handler(payload: dict[str, Any]) -> Any:
        with lock:  # one warm Lambda instance: events one at a time, as Lambda gives them to an instance
            try:
                return lambda_entry.handler(payload, None)
            except Exception as error:
                raise aws_moto.StageFailure(type(error).__name__, str(error)) from error

    double = aws_moto.LambdaDouble(delay=0, handler=handler)
    aws_moto._active_double = double  # what the lambda_double fixture does for a test
    definition = compile_pipeline(load_pipeline(str(BULK)), "aws")
    function = aws.create_function("load")
    functions = {name: function for name in aws_moto.placeholders(definition) if name.startswith("StageFunction")}
    arn = aws.create_state_machine("bulk", aws_moto.substitute(definition, {"StorageRoot": root, **functions}))
    execution = aws.run(arn, {"sources": {"entries": f"s3://{BUCKET}/input/entries.csv"}}, timeout=1800)
    if execution["status"] != "SUCCEEDED":
        raise AssertionError(f"the execution ended {execution['status']}: {execution.get('cause')}")
    output = json.loads(execution["output"])
    files = storage.committed_files(output["outputs"]["postings"].rstrip("/"), "postings")
    found = postings([_read(uri) for uri in files])
    maps = [call for call in double.calls if call.payload.get("phase") == "map" and call.node == "postings"]
    return _verdict(expected, found, len({call.payload["chunk"] for call in maps}), chunks)


def _read(uri: str) -> bytes:
    from sparkflow.runtime import storage

    fs, path = storage.filesystem(uri)
    data: bytes = fs.cat_file(path)
    return data


def _verdict(
    expected: dict[int, tuple[str, int]], found: dict[int, tuple[str, int]], ran: int, chunks: int
) -> dict[str, Any]:
    if ran != chunks:
        raise AssertionError(f"{ran} chunk tasks ran, not {chunks}")
    if found != expected:
        lost, extra = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
        raise AssertionError(f"the output differs from the input: lost {lost[:5]}, extra {extra[:5]}")
    return {"chunks": ran, "rows": len(found)}


# --- measuring a run from outside ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    kind: str
    chunks: int
    seconds: float
    peak_tree_mib: float  # the most the process tree held at once
    peak_process_mib: float  # the largest single process
    processes: int  # the most processes alive at once
    ok: bool
    detail: str


def measure(kind: str, chunks: int, interval: float = 0.05) -> Measured:
    """Run one load in a child process; its time, and the peak resident memory of its process tree."""
    with tempfile.TemporaryDirectory(prefix=f"sparkflow-load-{kind}-") as folder:
        command = [sys.executable, "-m", "tests.faults.load", kind, "--chunks", str(chunks), "--folder", folder]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        peaks = [0, 0, 0]  # tree bytes, one process's bytes, processes
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(interval):
                sizes = _tree_rss(child.pid)
                peaks[0] = max(peaks[0], sum(sizes))
                peaks[1] = max(peaks[1], max(sizes, default=0))
                peaks[2] = max(peaks[2], len(sizes))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, err = child.communicate()
        seconds = time.monotonic() - started
        stop.set()
        sampler.join()
    ok = child.returncode == 0
    detail = out.strip().splitlines()[-1] if ok and out.strip() else err.strip()[-1500:]
    mib = 1024 * 1024
    return Measured(kind, chunks, seconds, peaks[0] / mib, peaks[1] / mib, peaks[2], ok, detail)


def _tree_rss(root: int) -> list[int]:
    """Resident bytes of ``root`` and each of its live descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    sizes: list[int] = []
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
                sizes.append(int(handle.read().split()[1]) * page)
        except (OSError, IndexError, ValueError):
            continue
    return sizes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="One load run (see tests/faults/load.py).")
    parser.add_argument("kind", choices=["local", "moto"])
    parser.add_argument("--chunks", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    arguments = parser.parse_args(argv)
    runner = run_local if arguments.kind == "local" else run_moto
    result = runner(arguments.chunks, arguments.folder)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))  # see sparkflow/runtime/shutdown.py: its exit code is the load run's verdict
