"""The ``compile`` and ``graph`` commands, called in-process through click's CliRunner."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sparkflow.cli import main
from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipelines
from sparkflow.plan import Plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

TWO_PIPELINES = """
import sparkflow as sf

books = sf.source("books", "data/books/", format="text")


@sf.stage(partition="rows")
def words(lines):
    return lines


@sf.stage
def first(words):
    return words


@sf.pipeline
def tokenize():
    return words(books)


@sf.pipeline(name="first_words")
def take_first():
    return first(words(books))
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def wordcount(tmp_path: Path) -> Path:
    """A copy of the wordcount example, without its checked-in definition."""
    folder = tmp_path / "wordcount"
    shutil.copytree(EXAMPLES / "wordcount", folder, ignore=shutil.ignore_patterns("*.asl.json", "__pycache__"))
    return folder / "pipeline.py"


def test_compile_out_writes_the_definition(wordcount: Path, tmp_path: Path) -> None:
    out = tmp_path / "definitions"
    result = invoke("compile", str(wordcount), "--target", "aws", "--out", str(out))
    assert result.exit_code == 0, result.output
    written = out / "wordcount.asl.json"
    assert "wrote" in result.output and "wordcount.asl.json" in result.output
    [pipeline] = load_pipelines(str(wordcount))
    assert written.read_text(encoding="utf-8") == compile_pipeline(pipeline, "aws")
    assert not (wordcount.parent / "wordcount.asl.json").exists()


def test_compile_plan_writes_the_plan_its_definition_names(wordcount: Path, tmp_path: Path) -> None:
    """For a function deployed by hand (SPARKFLOW_PLAN): the Plan whose digest the definition's runs carry."""
    out = tmp_path / "definitions"
    result = invoke("compile", str(wordcount), "--target", "gcp", "--out", str(out), "--plan")
    assert result.exit_code == 0, result.output
    plan = Plan.from_json((out / "wordcount.gcp.plan.json").read_text(encoding="utf-8"))
    assert f"plan: {plan.digest}" in (out / "wordcount.workflows.yaml").read_text(encoding="utf-8")
    [pipeline] = load_pipelines(str(wordcount))
    assert plan.digest == plan_pipeline(pipeline, "gcp").digest


def test_compile_writes_beside_the_pipeline_by_default(wordcount: Path) -> None:
    assert invoke("compile", str(wordcount)).exit_code == 0
    assert (wordcount.parent / "wordcount.asl.json").is_file()


def test_check_passes_when_current_fails_after_a_change_and_passes_after_recompiling(wordcount: Path) -> None:
    assert invoke("compile", str(wordcount), "--target", "aws").exit_code == 0
    current = invoke("compile", str(wordcount), "--target", "aws", "--check")
    assert current.exit_code == 0, current.output
    assert "up to date" in current.output

    source = wordcount.read_text()
    assert '@sf.stage(memory="1GB")' in source
    wordcount.write_text(source.replace('@sf.stage(memory="1GB")', '@sf.stage(memory="4GB")'))
    stale = invoke("compile", str(wordcount), "--target", "aws", "--check")
    assert stale.exit_code == 1
    assert "--- " in stale.output and "+++ " in stale.output  # a unified diff
    assert '-        "FunctionName": "${StageFunction1024MB}",' in stale.output
    assert '+        "FunctionName": "${StageFunction4096MB}",' in stale.output
    assert "out of date" in stale.stderr
    assert "StageFunction1024MB" in (wordcount.parent / "wordcount.asl.json").read_text()  # --check writes nothing

    assert invoke("compile", str(wordcount), "--target", "aws").exit_code == 0
    again = invoke("compile", str(wordcount), "--target", "aws", "--check")
    assert again.exit_code == 0, again.output


def test_check_fails_when_the_definition_is_missing(wordcount: Path) -> None:
    result = invoke("compile", str(wordcount), "--check")
    assert result.exit_code == 1
    assert "wordcount.asl.json: missing" in result.output
    assert not (wordcount.parent / "wordcount.asl.json").exists()


def test_checked_in_examples_are_current() -> None:
    result = invoke("compile", *sorted(str(path) for path in EXAMPLES.glob("*/pipeline.py")), "--check")
    assert result.exit_code == 0, result.output
    assert result.output.count("up to date") == len(list(EXAMPLES.glob("*/pipeline.py")))


def test_a_missing_pipeline_file_is_an_error(tmp_path: Path) -> None:
    result = invoke("compile", str(tmp_path / "nowhere.py"))
    assert result.exit_code == 2
    assert "nowhere.py: no such pipeline file" in result.stderr


def test_an_unknown_target_suggests_the_nearest(wordcount: Path) -> None:
    result = invoke("compile", str(wordcount), "--target", "awz")
    assert result.exit_code == 2
    assert "unknown target 'awz': did you mean 'aws'?" in result.stderr


def test_a_file_with_several_pipelines_compiles_each(tmp_path: Path) -> None:
    pipeline_file = tmp_path / "pipelines.py"
    pipeline_file.write_text(TWO_PIPELINES)
    result = invoke("compile", str(pipeline_file), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["first_words.asl.json", "tokenize.asl.json"]
    assert '"node": "first"' in (tmp_path / "out" / "first_words.asl.json").read_text()
    assert '"node": "first"' not in (tmp_path / "out" / "tokenize.asl.json").read_text()
    one = invoke("compile", f"{pipeline_file}:take_first", "--out", str(tmp_path / "one"))
    assert one.exit_code == 0, one.output
    assert [path.name for path in (tmp_path / "one").iterdir()] == ["first_words.asl.json"]


def test_pyproject_out_is_honoured(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "pipelines").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.sparkflow]\nout = "definitions"\n')
    pipeline_file = project / "pipelines" / "jobs.py"
    pipeline_file.write_text(TWO_PIPELINES)
    assert invoke("compile", str(pipeline_file)).exit_code == 0
    assert sorted(path.name for path in (project / "definitions").iterdir()) == [
        "first_words.asl.json",
        "tokenize.asl.json",
    ]
    assert not list((project / "pipelines").glob("*.asl.json"))
    # The header names the file relative to the project root, the same from every working directory.
    assert (
        "Generated by sparkflow from pipelines/jobs.py" in (project / "definitions" / "tokenize.asl.json").read_text()
    )
    assert invoke("compile", str(pipeline_file), "--check").exit_code == 0


def test_graph_shows_every_source_stage_and_edge_with_fused_stages_inside_their_host() -> None:
    result = invoke("graph", str(EXAMPLES / "wordcount" / "pipeline.py"), "--target", "AWS")  # any case
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    n0[("books<br/><small>text source</small>")]' in lines
    assert '    subgraph g0 ["counts: its map tasks run the stages fused into it"]' in lines
    assert '        n1["words<br/><small>split by rows, fused into counts</small>"]' in lines
    assert '        n2["counts<br/><small>split by key (word), function, 2048 MB, spark</small>"]' in lines
    assert '    n3["top<br/><small>whole, function, 1024 MB, spark</small>"]' in lines
    assert [line for line in lines if "-->" in line] == [
        "    n0 -->|lines| n1",
        "    n1 -->|words| n2",
        "    n2 -->|counts| n3",
    ]


def test_graph_as_dot_and_json() -> None:
    import json

    dot = invoke("graph", str(EXAMPLES / "clickstream" / "pipeline.py"), "--format", "dot").output
    assert dot.startswith('digraph "clickstream" {')
    assert '"slow_threshold" [shape=hexagon, label="slow_threshold\\nwhole, function, 2048 MB, spark"];' in dot
    assert '"clean" -> "page_stats" [label="clean"];' in dot
    document = json.loads(invoke("graph", str(EXAMPLES / "clickstream" / "pipeline.py"), "--json").output)
    assert [node["id"] for node in document["nodes"]] == [
        "events",
        "clean",
        "page_stats",
        "slow_threshold",
        "slow_pages",
    ]
    assert {"source": "events", "target": "clean", "param": "events"} in document["edges"]
    assert len(document["edges"]) == 5


def test_graph_draws_sinks_and_names_with_dashes() -> None:
    lines = invoke("graph", str(EXAMPLES / "daily-revenue" / "pipeline.py")).output.splitlines()
    assert '    n3[("best-days-table<br/><small>parquet sink, overwrite</small>")]' in lines
    assert lines[-1] == "    n2 -->|publish| n3"


def test_version_and_target_choices() -> None:
    from importlib.metadata import version

    assert invoke("--version").output == f"sparkflow {version('sparkflow')}\n"
    assert "[aws|gcp]" in invoke("compile", "--help").output
    wrong = invoke("compile", str(EXAMPLES / "wordcount" / "pipeline.py"), "--target", "awz")
    assert (
        wrong.exit_code == 2 and "unknown target 'awz': did you mean 'aws'? (known targets: aws, gcp)" in wrong.output
    )


def test_compile_check_as_json(tmp_path: Path) -> None:
    import json

    result = invoke("compile", str(EXAMPLES / "wordcount" / "pipeline.py"), "--check", "--json")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.output)
    assert entry == {
        "pipeline": "wordcount",
        "target": "aws",
        "path": os.path.relpath(EXAMPLES / "wordcount" / "wordcount.asl.json"),
        "status": "up to date",
    }


def test_graph_reports_a_compile_error_with_its_place() -> None:
    bad = ROOT / "tests" / "resources" / "bad_wrong_arity.py"
    result = invoke("graph", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:16: stage 'words'" in result.stderr


@pytest.mark.parametrize("command", [[], ["compile"], ["graph"]])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_works_everywhere(command: list[str], flag: str) -> None:
    result = invoke(*command, flag)
    assert result.exit_code == 0
    assert result.output.startswith("Usage: ")
    for name, command_object in main.commands.items() if not command else []:  # the group lists every command
        assert name in result.output and command_object.help is not None
