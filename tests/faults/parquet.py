"""The rows of a Parquet file held in memory, for the checks of the fault and load runs.

Not ``pq.read_table(BytesIO(data))``: that goes through Arrow's dataset scanner, whose threads drop the Python
file objects late, and a process that exits just after may abort (see sparkflow/runtime/shutdown.py and
``bench/arrow_exit_abort.py``: 33 of 300 runs; ``ParquetFile.read`` of an Arrow buffer: 1 of 300). This reads
the latter way, on the calling thread only, and the one-shot harness processes leave through ``exit_now``.
"""

from __future__ import annotations

from typing import Any


def parquet_rows(data: bytes) -> list[dict[str, Any]]:
    """The rows of the whole Parquet file ``data`` (it fails on a partial one: no footer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    rows: list[dict[str, Any]] = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False).to_pylist()
    return rows
