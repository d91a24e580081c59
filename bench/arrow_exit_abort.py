"""How often a process that read Parquet through pyarrow aborts while it exits, and that leaving through
``sparkflow.runtime.shutdown.exit_now`` does not.

Each run is a fresh process that reads ``--files`` small Parquet files from memory (the bytes, as a reader of
object storage has them) and prints their row count, then ends:

* ``read_table(BytesIO)``, normal exit: the reading goes through Arrow's dataset scanner, which drops the
  Python file objects on its own threads;
* ``ParquetFile(BufferReader)``, normal exit: no scanner, but the pool threads still drop Python-owned buffers;
* ``read_table(BytesIO)``, ``exit_now``: the same as the first, leaving without interpreter finalization.

An abort is exit code 134 / signal 6 with ``terminate called without an active exception`` (apache/arrow#34314).

Run: ``.venv/bin/python bench/arrow_exit_abort.py [--runs 300] [--files 200]``, about 1 s per run on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

READERS = {
    "read_table(BytesIO)": "pq.read_table(BytesIO(data))",
    "ParquetFile(BufferReader)": "pq.ParquetFile(pa.BufferReader(data)).read()",
}
CHILD = """
import sys
from io import BytesIO
from pathlib import Path
import pyarrow as pa
import pyarrow.parquet as pq
rows = 0
for path in sorted(Path(sys.argv[1]).glob("*.parquet")):
    data = path.read_bytes()
    rows += {reader}.num_rows
print(rows)
{leave}
"""
LEAVES = {"normal exit": "", "exit_now": "from sparkflow.runtime.shutdown import exit_now; exit_now(0)"}
VARIANTS = [
    ("read_table(BytesIO)", "normal exit"),
    ("ParquetFile(BufferReader)", "normal exit"),
    ("read_table(BytesIO)", "exit_now"),
]


def write_files(folder: Path, count: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for index in range(count):
        table = pa.table({"id": list(range(index * 20, index * 20 + 20)), "name": [f"n{index}"] * 20})
        pq.write_table(table, folder / f"part-{index:05d}.parquet")


def aborts(code: str, folder: Path, runs: int) -> tuple[int, int]:
    """(aborted runs, other failures) over ``runs`` fresh processes."""
    aborted = failed = 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env)
        if done.returncode in (-6, 134) and "terminate called" in done.stderr:
            aborted += 1
        elif done.returncode != 0 or not done.stdout.strip():
            failed += 1
    return aborted, failed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--files", type=int, default=200)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sparkflow-arrow-exit-") as name:
        folder = Path(name)
        write_files(folder, arguments.files)
        print(f"| reader ({arguments.files} files from memory) | exit | aborted | other failures | runs |")
        print("|---|---|---:|---:|---:|")
        for reader, leave in VARIANTS:
            code = CHILD.format(reader=READERS[reader], leave=LEAVES[leave])
            aborted, failed = aborts(code, folder, arguments.runs)
            print(f"| {reader} | {leave} | {aborted} | {failed} | {arguments.runs} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
