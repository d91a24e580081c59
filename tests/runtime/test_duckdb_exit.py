"""A process that ran DuckDB work and ends normally (pytest; a script that runs stages through the runtime in a
plain PySpark process) closes its DuckDB session first: a connection still alive when the interpreter tore its
modules down made duckdb's nanobind bindings print "nanobind: leaked 29 instances!" and a list of leaked types and
functions on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The duckdb engine's read of a text source and an aggregate on it (in a plain PySpark process, as the engine
# tests run it), in a process that ends through interpreter
# finalization (not sparkflow's exit_now), as pytest and users' scripts do.
READ_AND_COUNT = """
import sys
from sparkflow.dsl.source import source
from sparkflow.runtime import duckdb_engine

folder = sys.argv[1]
engine = duckdb_engine.DuckDBEngine.__new__(duckdb_engine.DuckDBEngine)  # as tests/runtime/test_engine_parity.py
engine.session = duckdb_engine.session(512)
lines = engine.read_source(source("lines", folder, format="text"), folder, folder + "/copy")
print(lines.groupBy("value").count().collect())
"""


def test_a_process_that_ran_duckdb_work_ends_without_nanobind_warnings(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\ntwo\none\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", READ_AND_COUNT, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "one" in done.stdout
    assert [line for line in done.stderr.splitlines() if "leaked" in line] == []
