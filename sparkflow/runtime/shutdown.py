"""Leaving a process once its answer is out, without Python's interpreter finalization.

Arrow's thread pools (pyarrow, and DuckDB's Arrow scans) may hold the last reference to a Python object, a
file object or the bytes behind a buffer, and drop it late. If that happens while the interpreter shuts down,
the pool thread asks for the GIL, Python ends the thread with ``pthread_exit``, the unwind crosses a C++
destructor, and the process aborts: ``terminate called without an active exception``, exit code 134
(apache/arrow#34314, #39862). For a container stage that is a committed stage reported as failed. Measured here
with ``bench/arrow_exit_abort.py --runs 300``: a process that reads 200 small Parquet files from memory with
``pq.read_table`` and exits normally aborted in 33 of 300 runs (with ``ParquetFile.read`` of an Arrow buffer,
in 1); leaving through :func:`exit_now`, in none.

Everything a sparkflow process must do is done before it answers (outputs committed, the result printed, log
lines flushed as written), so nothing is lost by skipping finalization. The JVM of a local SparkSession exits
by itself when its parent's pipe closes.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def exit_now(code: int | str | None = 0) -> NoReturn:
    """Flush what was written and end the process with ``code`` (as ``sys.exit`` reads it), skipping
    interpreter finalization (see the module docs)."""
    if isinstance(code, str):  # as sys.exit("message"): the message on stderr, exit code 1
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or file: nothing more can reach it
            pass
    os._exit(code or 0)
