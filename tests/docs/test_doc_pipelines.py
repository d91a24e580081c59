"""Every complete pipeline in the documentation runs, so the docs cannot drift from the code.

Which code blocks count: a fenced block whose info string starts with ``python``, in README.md or any page under
docs/, is a **complete pipeline** when it both imports sparkflow (a line ``import sparkflow as sf``) and declares a
pipeline (a line starting with ``@sf.pipeline``): a file a reader could save and run. Every other Python block is a
fragment (no import: it shows part of a file, e.g. a ``schedule=`` or a sink); fragments are only checked to be
valid Python.

How a complete pipeline runs: saved on its own into a temporary folder and run with ``sparkflow run`` (in this
process, through click's runner, so the tests' one SparkSession serves them all), with every source it declares
read from the repository's sample data of that name (``SAMPLES``: ``--input NAME=PATH``), whatever location the
block declares (``s3://...`` or a path relative to where the reader saves it). A source name with no sample fails
the test, naming the block: add its data to ``SAMPLES``. The run must succeed.

The graphs drawn in the documentation are checked too: README's Mermaid block is what ``sparkflow graph`` prints for
README's complete pipeline, and docs/wordcount.mmd (included by docs/getting-started/compile.md) what it prints for
examples/wordcount.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLES = ROOT / "examples"
#: The sample data a documented pipeline's source reads, by the source's name.
SAMPLES = {
    "books": EXAMPLES / "wordcount" / "data" / "books",
    "orders": EXAMPLES / "revenue" / "data" / "orders.csv",
    "customers": EXAMPLES / "revenue" / "data" / "customers.csv",
    "events": EXAMPLES / "clickstream" / "data" / "events.jsonl",
}
_FENCE = re.compile(r"^( *)```(\S*)[^\n]*\n(.*?)^\1```\s*$", re.MULTILINE | re.DOTALL)  # indented in a list too
_SOURCE = re.compile(r"""sf\.source\(\s*["']([^"']+)["']""")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def complete(self) -> bool:
        lines = self.code.splitlines()
        imports = any(line.strip() == "import sparkflow as sf" for line in lines)
        return imports and any(line.startswith("@sf.pipeline") for line in lines)


def blocks(language: str) -> list[Block]:
    """Every fenced block of ``language`` in README.md and docs/, with the line its fence opens on."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match.group(2) == language:
                line = text.count("\n", 0, match.start()) + 1
                found.append(Block(page, line, language, textwrap.dedent(match.group(3))))
    return found


PYTHON = blocks("python")
PIPELINES = [block for block in PYTHON if block.complete]


def test_the_rule_finds_the_pipelines_of_the_readme_and_the_site() -> None:
    pages = {block.page.relative_to(ROOT).as_posix() for block in PIPELINES}
    assert "README.md" in pages
    assert "docs/getting-started/first-pipeline.md" in pages


@pytest.mark.parametrize("block", PYTHON, ids=[block.where for block in PYTHON])
def test_every_python_block_is_valid_python(block: Block) -> None:
    ast.parse(block.code, filename=block.where)


@pytest.mark.spark
@pytest.mark.parametrize("block", PIPELINES, ids=[block.where for block in PIPELINES])
def test_every_complete_pipeline_runs(block: Block, spark: Any, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.py"
    pipeline.write_text(block.code, encoding="utf-8")
    inputs = []
    for name in dict.fromkeys(_SOURCE.findall(block.code)):
        assert name in SAMPLES, f"{block.where}: source {name!r} has no sample data: add it to SAMPLES"
        inputs += ["--input", f"{name}={SAMPLES[name]}"]
    result = CliRunner().invoke(main, ["run", str(pipeline), "--storage", str(tmp_path / "runs"), *inputs])
    assert result.exit_code == 0, f"{block.where}: sparkflow run failed:\n{result.output}"
    assert "succeeded" in result.output


def _graph(pipeline: Path) -> str:
    result = CliRunner().invoke(main, ["graph", str(pipeline)])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_readme_graph_is_what_sparkflow_graph_draws_for_its_pipeline(tmp_path: Path) -> None:
    readme = [block for block in PIPELINES if block.page.name == "README.md"]
    drawn = [block for block in blocks("mermaid") if block.page.name == "README.md"]
    assert len(readme) == 1 and len(drawn) == 1
    pipeline = tmp_path / "quickstart.py"
    pipeline.write_text(readme[0].code, encoding="utf-8")
    assert drawn[0].code == _graph(pipeline)


def test_the_word_count_graph_in_the_docs_is_what_sparkflow_graph_draws() -> None:
    assert (ROOT / "docs" / "wordcount.mmd").read_text(encoding="utf-8") == _graph(
        EXAMPLES / "wordcount" / "pipeline.py"
    )
