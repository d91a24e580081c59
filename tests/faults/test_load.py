"""Load, the short version (``make faults`` runs 2,000 chunks locally and 300 through moto): many chunk tasks
complete, every input row is in the output exactly once, and the process tree's memory stays bounded."""

from __future__ import annotations

import pytest

from tests.faults.load import measure

# What the whole process tree (executor, DuckDB workers; or moto, the handler and DuckDB) may hold at once. Its
# peak does not grow with the number of chunks: 2,000 chunks need no more than 200 (see docs/concepts/guarantees.md,
# make faults).
BOUND_MIB = 1024


@pytest.mark.long  # many chunks run locally in every fault trial; make faults runs 2,000
def test_local_executor_runs_hundreds_of_chunks_exactly_in_bounded_memory() -> None:
    measured = measure("local", 200)
    assert measured.ok, measured.detail
    assert measured.peak_tree_mib < BOUND_MIB


@pytest.mark.moto
@pytest.mark.long  # make test's time: make faults runs the load in moto too; Distributed Maps run in tests/aws
def test_distributed_map_in_moto_runs_its_chunks_exactly_in_bounded_memory() -> None:
    measured = measure("moto", 10)
    assert measured.ok, measured.detail
    assert measured.peak_tree_mib < BOUND_MIB
