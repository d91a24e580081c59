"""The differential oracle's short run: 13 generated pipelines, each run by sparkflow and compared with one plain
PySpark job (see ``tests/oracle/__init__.py``); and proof that the comparison can fail.

Which sparkflow runs each case gets is ``SPARKFLOW_ORACLE_RUNS`` (``all``, ``fallback``, ``pair`` or ``rotate``,
see :func:`tests.oracle.run.runs_for`); the default, ``rotate``, gives each case one run and each of whole and split
on spark, sail and duckdb at least two of them. ``python -m tests.oracle`` runs every case all six ways.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sparkflow.rowsets import Row
from tests.oracle.generate import generate
from tests.oracle.run import ALL_RUNS, RUN_MODES, Table, check_case, compare_outputs, runs_for
from tests.test_rowsets import COLUMNS, EXPECTED

# Seeds of 1-79 that cover REQUIRED between them (found by a random search over the generated cases' tags) with at
# least two cases for each of the six runs (seed % 6: 5, 6, 7, 8 and 11 complete the rotation); `make oracle` runs
# hundreds.
SHORT_SEEDS = (1, 5, 6, 7, 8, 9, 10, 11, 27, 44, 48, 51, 58)
MODE = os.environ.get("SPARKFLOW_ORACLE_RUNS", "rotate")
# What the short cases cover between them (tags that tests/oracle/generate.py gives a case).
REQUIRED = {
    "text",
    "csv",
    "json",
    "parquet",
    "csv with schema",
    "csv inferred",
    "json with schema",
    "json inferred",
    "csv quoted comma",
    "csv doubled quotes",
    "folder source",
    "1 input",
    "2 inputs",
    "3 inputs",
    "1 stage",
    "2 stages",
    "3 stages",
    "inner join",
    "left join",
    "3-way join",
    "side input",
    "groupBy",
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "countDistinct",
    "filter",
    "withColumn arithmetic",
    "select",
    "word splitting",
    "log parsing",
    "window",
    "orderBy+limit",
    "global aggregate",
    "distinct",
    "partition_by list",
    "combine",
    "null keys",
    "null values",
    "skewed keys",
    "decimal",
    "boolean",
    "empty file",
}


@pytest.mark.spark
@pytest.mark.parametrize("seed", SHORT_SEEDS)
def test_sparkflow_gives_what_one_pyspark_job_gives(spark: Any, seed: int, tmp_path: Path) -> None:
    result = check_case(spark, seed, tmp_path, runs_for(seed, MODE), keep=True)
    assert result.clean, "\n" + result.report()


def test_short_cases_cover_formats_operations_and_runs(tmp_path: Path) -> None:
    tags: Counter[str] = Counter()
    for seed in SHORT_SEEDS:
        case = generate(seed, tmp_path / str(seed))
        compile(case.source_text, str(case.pipeline_file), "exec")
        tags.update(case.tags)
    assert set(tags) >= REQUIRED, f"not covered: {sorted(REQUIRED - set(tags))}: pick the seeds again (SHORT_SEEDS)"
    runs = Counter(run for seed in SHORT_SEEDS for run in runs_for(seed, MODE))
    assert set(runs) == set(ALL_RUNS) and min(runs.values()) >= 2, runs


def test_a_case_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    first, second = generate(7, tmp_path / "a"), generate(7, tmp_path / "b")
    assert first.source_text == second.source_text
    assert [path.read_bytes() for path in first.data_files] == [path.read_bytes() for path in second.data_files]
    assert generate(8, tmp_path / "c").source_text != first.source_text


@pytest.mark.parametrize("mode", RUN_MODES)
def test_every_mode_covers_every_run_equally(mode: str) -> None:
    runs = Counter(run for seed in range(1, 13) for run in runs_for(seed, mode))
    assert set(runs) == set(ALL_RUNS) and len(set(runs.values())) == 1, runs


# --- a run's output as readers see it -------------------------------------------------------------------------


def _commit(folder: Path, pieces: list[list[Row]], stray: list[Row] | None = None) -> str:
    """A committed output as the runtime leaves it: Parquet files and the ``_COMMITTED.json`` listing them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(rows: list[Row], path: Path) -> None:
        columns = {column: [row[index] for row in rows] for index, column in enumerate(COLUMNS)}
        pq.write_table(pa.table(columns), path)

    folder.mkdir(parents=True)
    names = [f"part-{number:05d}.parquet" for number in range(len(pieces))]
    for name, rows in zip(names, pieces, strict=True):
        write(rows, folder / name)
    if stray is not None:  # a file the manifest does not list (an attempt's) that a reader would see
        write(stray, folder / "part-99999.parquet")
    (folder / "_work").mkdir()  # what readers skip: a name starting with '_'
    write(stray or pieces[0], folder / "_work" / "attempt.parquet")
    (folder / "_COMMITTED.json").write_text(json.dumps({"kind": "dataset", "files": names}))
    return str(folder)


def test_a_tampered_committed_output_is_caught(tmp_path: Path) -> None:
    """The path every run's output takes (a plain reader's view of its folder, the comparison) finds a planted
    difference, and a file the manifest does not list that a reader would see."""
    reference = {"out": Table(COLUMNS, list(EXPECTED))}
    right = _commit(tmp_path / "right", [EXPECTED[:2], EXPECTED[2:]])
    assert compare_outputs(reference, {"out": right}) == ({}, [])
    stray = _commit(tmp_path / "stray", [EXPECTED[:2], EXPECTED[2:]], stray=EXPECTED[:1])
    differences, problems = compare_outputs(reference, {"out": stray})
    assert differences["out"].extra == (("a", 3, 10.5, dt.date(2024, 1, 2)),)
    assert problems == [
        "out: a reader sees files ['part-00000.parquet', 'part-00001.parquet', 'part-99999.parquet'], "
        "_COMMITTED.json lists ['part-00000.parquet', 'part-00001.parquet']"
    ]
    lost = _commit(tmp_path / "lost", [EXPECTED[:2], EXPECTED[3:]])
    duplicated = _commit(tmp_path / "duplicated", [EXPECTED, EXPECTED[:1]])
    changed = _commit(tmp_path / "changed", [[("a", 3, 10.6, dt.date(2024, 1, 2)), *EXPECTED[1:]]])
    for location in (lost, duplicated, changed):
        differences, problems = compare_outputs(reference, {"out": location})
        assert set(differences) == {"out"} and not problems, location
    differences, _ = compare_outputs(reference, {"out": lost})
    assert differences["out"].missing == ((None, 2, None, None),) and not differences["out"].extra
    differences, _ = compare_outputs(reference, {"out": duplicated})
    assert differences["out"].extra == (("a", 3, 10.5, dt.date(2024, 1, 2)),) and not differences["out"].missing
    differences, _ = compare_outputs(reference, {"out": changed})
    assert [row[2] for row in differences["out"].extra] == [10.6]
    _, problems = compare_outputs(reference, {"out": right, "other": right})
    assert problems, "an output the pipeline does not return is reported"
