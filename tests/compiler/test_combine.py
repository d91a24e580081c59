"""``combine=`` on a key stage: refused where it cannot hold (with the user's file:line and how to fix it), decided
by the split pass and recorded in the Plan (``Fanout.combine``, in the digest, left out of the JSON when false)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from sparkflow.compiler import CompileError, plan_pipeline
from sparkflow.errors import DefinitionError
from sparkflow.loading import load_pipeline, load_pipelines
from sparkflow.plan import Plan
from sparkflow.targets.local import LOCAL
from tests.examples import example

HEADER = "import sparkflow as sf\nwords = sf.source('words', 'words.csv')\nother = sf.source('other', 'other.csv')\n"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pipeline_under_test.py"
    path.write_text(HEADER + body)
    return path


def at(path: Path, text: str) -> str:
    """The regex of ``<file>:<line>: `` where ``text`` first occurs in ``path``."""
    line = next(number for number, content in enumerate(path.read_text().splitlines(), 1) if text in content)
    return re.escape(f"{path}:{line}: ")


@pytest.mark.parametrize(
    ("decorator", "pattern"),
    [
        (
            "@sf.stage(partition='rows', combine=True)",
            r"combine= merges the partial results of a stage's map tasks by key, so it needs partition_by=: declare "
            r"partition_by='<column>' \(the column it groups by\), or remove combine=",
        ),
        ("@sf.stage(combine=lambda p: p)", r"combine= .* needs partition_by=: declare partition_by="),
        (
            "@sf.stage(partition_by='word', combine='sum')",
            r"combine='sum' must be a function DataFrame -> DataFrame that merges partial results \(e\.g\. "
            r"combine=lambda partials: .*\), or True to apply the stage's own function again",
        ),
        (
            "@sf.stage(partition_by='word', combine=lambda a, b: a)",
            r"combine= function \(.*pipeline_under_test\.py:\d+\) must take one argument, the DataFrame of partial "
            r"results, and return the merged DataFrame",
        ),
    ],
)
def test_a_combine_that_cannot_hold_is_refused_at_the_stage(tmp_path: Path, decorator: str, pattern: str) -> None:
    path = write(tmp_path, f"{decorator}\ndef counts(words):\n    return words\n")
    with pytest.raises(DefinitionError, match=at(path, decorator) + pattern):
        load_pipelines(str(path))


def test_a_join_with_combine_is_refused_naming_its_inputs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "@sf.stage(partition_by='k', combine=True)\n"
        "def joined(words, other):\n    return words.join(other, 'k')\n"
        "@sf.pipeline\ndef p():\n    return joined(words, other)\n",
    )
    pattern = at(path, "@sf.stage(partition_by='k'") + (
        r"stage 'joined' joins 2 inputs \(words, other\), so its map tasks have nothing to combine: .* remove "
        r"combine= \(or combine after the join, in a stage of its own\)"
    )
    with pytest.raises(CompileError, match=pattern):
        plan_pipeline(load_pipeline(str(path)), "aws")


def test_a_stage_with_a_parameter_beside_its_one_input_may_combine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "n = sf.param('n', default=2)\n"
        "@sf.stage(partition_by='k', combine=True)\n"
        "def top(words, n: int):\n    return words\n"
        "@sf.pipeline\ndef p():\n    return top(words, n)\n",
    )
    fanout = plan_pipeline(load_pipeline(str(path)), LOCAL).task("top").fanout
    assert fanout is not None and fanout.combine


def test_the_plan_records_combine_and_ships_it_only_when_true() -> None:
    plan = plan_pipeline(load_pipeline(str(example("wordcount"))), "aws")
    counts = plan.task("counts")
    assert counts.fanout is not None and counts.fanout.combine
    assert '"combine": true' in plan.to_json()
    assert Plan.from_json(plan.to_json()).task("counts").fanout == counts.fanout
    # Without combine= the field is left out, so Plans (and their digests) of stages without it are as they were.
    revenue = plan_pipeline(load_pipeline(str(example("revenue"))), "aws")
    enrich = revenue.task("enrich")
    assert enrich.fanout is not None and not enrich.fanout.combine
    shipped = {task["id"]: task for task in revenue.document["tasks"]}
    assert "combine" not in shipped["enrich"]["fanout"] and "combine" in plan.document["tasks"][0]["fanout"]
    assert Plan.from_json(revenue.to_json()).task("enrich").fanout == enrich.fanout
    # The decision is part of the digest: the runtime refuses events of a Plan that decided otherwise.
    uncombined = replace(
        plan, tasks=tuple(replace(t, fanout=replace(t.fanout, combine=False)) if t.fanout else t for t in plan.tasks)
    )
    assert uncombined.digest != plan.digest


def test_outside_a_pipeline_a_combined_stage_is_the_plain_function() -> None:
    import sparkflow as sf

    @sf.stage(partition_by="k", combine=lambda partials: partials)
    def counts(frame: list[int]) -> int:
        return len(frame)

    assert counts([1, 2, 3]) == 3
    assert counts.merge_function() is counts.options.combine
    assert counts.merge_origin().line == counts.origin.line  # a lambda: the line it is written on
