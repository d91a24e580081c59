"""The DSL keeps the user's function: type checkers see its signature, and outside a pipeline it just runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api as mypy_api

import sparkflow as sf
from sparkflow.dsl.trace import Output

SNIPPET = '''
import sparkflow as sf


class Frame:
    """Stands in for a DataFrame: the DSL types stages with whatever the user annotates."""


@sf.stage(partition="rows")
def words(lines: Frame, minimum: int) -> Frame:
    return lines


@sf.stage
def total(frame: Frame) -> int:
    return 1


def merged(partials: Frame) -> Frame:
    return partials


@sf.stage(partition_by="k", combine=merged)
def grouped(frame: Frame) -> Frame:
    return frame


minimum = sf.param("minimum", default=2)


@sf.pipeline
def wordcount() -> Frame:
    return words(Frame(), minimum)


reveal_type(words)
reveal_type(grouped)
reveal_type(total(Frame()))
reveal_type(minimum)
words("not a frame", 2)
'''


@pytest.mark.long  # runs mypy on a user file (about 9 s)
def test_mypy_sees_the_user_signature(tmp_path: Path) -> None:
    module = tmp_path / "typed_pipeline.py"
    module.write_text(textwrap.dedent(SNIPPET))
    stdout, stderr, status = mypy_api.run(
        [
            str(module),
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "--show-error-codes",
        ]
    )
    assert stderr == ""
    revealed = [line for line in stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == 4, stdout
    assert "Stage[[lines: typed_pipeline.Frame, minimum: int], typed_pipeline.Frame]" in revealed[0]
    assert "Stage[[frame: typed_pipeline.Frame], typed_pipeline.Frame]" in revealed[1]  # combine= keeps it too
    assert revealed[2].endswith('Revealed type is "int"')
    assert revealed[3].endswith('Revealed type is "int"'), stdout  # a parameter passes where its stage wants an int
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, stdout  # the one wrong call, nothing in the DSL itself
    assert 'Argument 1 to "__call__" of "Stage" has incompatible type "str"; expected "Frame"' in errors[0]
    assert status == 1


class Rows(list[dict[str, object]]):
    """Plain Python rows: a stage outside a pipeline needs no Spark."""


@sf.stage(partition="rows", memory="1GB")
def keep_large(rows: Rows, threshold: int = 10) -> Rows:
    """Rows whose amount is over the threshold."""
    return Rows(row for row in rows if int(str(row["amount"])) > threshold)


def test_a_stage_outside_a_pipeline_runs_the_function() -> None:
    rows = Rows([{"amount": 5}, {"amount": 50}])
    kept = keep_large(rows)
    assert kept == [{"amount": 50}] and isinstance(kept, Rows)
    assert keep_large(rows, threshold=1) == rows
    assert keep_large.__name__ == "keep_large"
    assert keep_large.__doc__ == "Rows whose amount is over the threshold."
    assert keep_large.options.memory_mb == 1024 and keep_large.options.partition == "rows"


def test_the_same_stage_inside_a_pipeline_records_instead() -> None:
    data = sf.source("data", "data/rows.json")

    @sf.pipeline
    def large() -> Rows:
        return keep_large(data)

    trace = large.trace()
    assert list(trace.calls) == ["keep_large"]
    assert trace.calls["keep_large"].inputs == (("rows", "data"),)
    assert trace.outputs == ("keep_large",)
    # Tracing leaves nothing behind: outside the pipeline the stage runs again.
    assert keep_large(Rows([{"amount": 11}])) == [{"amount": 11}]
    assert not isinstance(keep_large(Rows()), Output)
