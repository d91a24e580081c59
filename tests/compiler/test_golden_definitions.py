"""Golden files: every example's checked-in definition, for every target that has one, is what the compiler
emits, byte for byte. After a deliberate change regenerate them with ``make definitions``."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import pytest

from sparkflow.compiler import compile_pipeline
from sparkflow.loading import load_pipelines
from sparkflow.outputs import default_out_dir, definition_path
from sparkflow.targets import get_target, target_names

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("examples/*/pipeline.py"))
REGENERATE = "make definitions"


def cases() -> list[tuple[Path, str, str]]:
    """(pipeline file, pipeline name, target) for every checked-in definition."""
    found = []
    for example in EXAMPLES:
        for pipeline in load_pipelines(str(example)):
            for target in target_names():
                path = definition_path(default_out_dir(str(example)), pipeline.name, get_target(target).suffix)
                if Path(path).exists():
                    found.append((example, pipeline.name, target))
    return found


def compiled(example: Path, name: str, target: str) -> str:
    [pipeline] = [p for p in load_pipelines(str(example)) if p.name == name]
    return compile_pipeline(pipeline, target)


def test_there_are_three_examples_and_each_has_an_aws_definition() -> None:
    assert {path.parent.name for path in EXAMPLES} >= {"wordcount", "revenue", "clickstream"}
    covered = {(example, target) for example, _, target in cases()}
    assert {(example, "aws") for example in EXAMPLES} <= covered


@pytest.mark.parametrize(("example", "name", "target"), cases(), ids=lambda v: getattr(v, "parent", Path(v)).name)
def test_definition_is_current(example: Path, name: str, target: str) -> None:
    path = Path(definition_path(str(example.parent), name, get_target(target).suffix))
    expected = path.read_bytes()
    actual = compiled(example, name, target).encode("utf-8")
    assert actual == expected, f"{path} is out of date: run `{REGENERATE}` and review the diff"


@pytest.mark.parametrize(("example", "name", "target"), cases(), ids=lambda v: getattr(v, "parent", Path(v)).name)
def test_compiling_twice_gives_identical_bytes(example: Path, name: str, target: str) -> None:
    first = compiled(example, name, target)
    second = compiled(example, name, target)
    assert first.encode() == second.encode()
    assert first.endswith("\n") and "\r" not in first


def test_definitions_carry_no_version_or_timestamp() -> None:
    for example, name, target in cases():
        text = compiled(example, name, target)
        assert f"from examples/{example.parent.name}/pipeline.py" in text  # the generated header names its source
        assert not re.search(r"\b20\d\d-\d\d-\d\d", text), "a date in a generated definition"
        assert version("sparkflow") not in text


def test_make_definitions_regenerates_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = re.search(r"^TARGETS\s*:?=\s*(.*)$", makefile, re.MULTILINE)
    assert targets is not None
    assert set(target_names()) <= set(targets.group(1).split()), "add the new target to TARGETS in the Makefile"
    rule = re.search(r"^definitions:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert rule is not None and "sparkflow compile $(EXAMPLES) --target $$target" in rule.group(1)
