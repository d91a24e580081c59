"""Every user mistake is an error that names the user's file and line and says what to fix.

Each case is a small real pipeline file under tests/resources/; the expected line is found in that file by
its text, so the assertion checks the place the error points at, not a number copied from the output.
"""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import pytest

from sparkflow.compiler import PASSES, compile_pipeline
from sparkflow.compiler.context import Context
from sparkflow.compiler.graph import StageNode
from sparkflow.compiler.passes.validate import validate
from sparkflow.dsl.stage import StageOptions
from sparkflow.errors import CompileError, DefinitionError, Origin, SparkflowError
from sparkflow.loading import load_pipelines
from sparkflow.targets import get_target

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def at(name: str, text: str) -> str:
    """The regex of ``<file>:<line>: `` where ``text`` first occurs in tests/resources/``name``."""
    path = RESOURCES / name
    lines = path.read_text().splitlines()
    line = next(number for number, content in enumerate(lines, 1) if text in content)
    return re.escape(f"{path}:{line}: ")


def compile_file(name: str, target: str = "aws") -> str:
    [pipeline] = load_pipelines(str(RESOURCES / name))
    return compile_pipeline(pipeline, target)


def test_the_base_pipeline_compiles() -> None:
    assert '"node": "words"' in compile_file("pipeline_ok.py")


def test_unknown_target_suggests_the_nearest_name() -> None:
    with pytest.raises(
        CompileError, match=at("pipeline_ok.py", "@sf.pipeline") + r"unknown target 'awz': did you mean 'aws'\?"
    ):
        compile_file("pipeline_ok.py", "awz")


def test_unknown_target_far_from_every_name_lists_the_known_ones() -> None:
    with pytest.raises(CompileError, match=r"unknown target 'kubernetes': \(known targets: aws, gcp\)"):
        compile_file("pipeline_ok.py", "kubernetes")


def test_memory_over_the_lambda_limit() -> None:
    pattern = (
        at("bad_memory.py", "@sf.stage")
        + r"stage 'words': memory=12,288 MB is over the aws Lambda memory limit of 10,240 MB.*lower memory="
    )
    with pytest.raises(CompileError, match=pattern):
        compile_file("bad_memory.py")


def test_timeout_over_the_lambda_limit() -> None:
    pattern = (
        at("bad_timeout.py", "@sf.stage")
        + r"stage 'words': timeout=960 s is over the aws Lambda timeout limit of 900 s.*lower timeout="
    )
    with pytest.raises(CompileError, match=pattern):
        compile_file("bad_timeout.py")


def test_duplicate_stage_names_name_both_places() -> None:
    first = RESOURCES / "bad_duplicate_stage.py"
    pattern = at("bad_duplicate_stage.py", '@sf.stage(name="words")') + (
        rf"duplicate stage name 'words': also declared at {re.escape(str(first))}:8; rename one"
    )
    with pytest.raises(CompileError, match=pattern):
        compile_file("bad_duplicate_stage.py")


def test_wrong_number_of_inputs() -> None:
    pattern = (
        at("bad_wrong_arity.py", "return words(books, more_books)")
        + r"stage 'words' takes 1 input \(lines\) but is called with 2"
    )
    with pytest.raises(CompileError, match=pattern):
        compile_file("bad_wrong_arity.py")


def test_pipeline_returning_nothing() -> None:
    pattern = at("bad_returns_nothing.py", "@sf.pipeline") + r"pipeline 'wordcount' returns nothing: return the output"
    with pytest.raises(CompileError, match=pattern):
        compile_file("bad_returns_nothing.py")


def test_input_neither_source_nor_stage_output() -> None:
    pattern = at("bad_unknown_input.py", 'return words("data/books/")') + (
        r"input 'lines' of stage 'words' is neither a source, a stage output nor a parameter "
        r"\(got str 'data/books/'\): pass sf.source\(...\), another stage's output, or a value each run chooses: "
        r"sf.param\('lines', default=..., type=...\)"
    )
    with pytest.raises(CompileError, match=pattern):
        compile_file("bad_unknown_input.py")


@pytest.mark.parametrize(
    ("name", "where", "message"),
    [
        ("bad_size.py", "sf.source(", r"size='40 gigs' is not a size: write a number and a unit .* e\.g\. '512MB'"),
        ("bad_memory_size.py", "@sf.stage", r"memory='lots' is not a size: write a number and a unit"),
        ("bad_duration.py", "@sf.stage", r"timeout='15 minutes' has an unknown unit 'minutes': use ms, s, m, h or d"),
        (
            "bad_stage_name.py",
            "@sf.stage",
            r"stage name 'count words!' may contain only letters, digits, '_' and '-'.*'count_words'",
        ),
        ("bad_source_name.py", "sf.source(", r"source name 'my books' may contain only letters.*'my_books'"),
        (
            "bad_on_bad_record.py",
            "sf.source(",
            r"source 'events': on_bad_record='ignore' is not a policy: use one of 'fail', 'skip', 'quarantine'$",
        ),
        (
            "bad_on_bad_record_parquet.py",
            "sf.source(",
            r"source 'table': on_bad_record='skip' applies to csv and json sources only; a parquet source has no "
            r"bad records one by one \(a corrupt file is unreadable as a whole\): leave on_bad_record out$",
        ),
        ("bad_long_name.py", "@sf.stage", r"stage name 'w{20}'\.\.\. is 65 characters long; the limit is 64"),
    ],
)
def test_declaration_errors_name_the_line(name: str, where: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=at(name, where) + message):
        load_pipelines(str(RESOURCES / name))


def test_all_problems_of_a_pipeline_are_reported_at_once() -> None:
    with pytest.raises(CompileError) as raised:
        compile_file("bad_duplicate_stage.py")
    assert all(isinstance(problem, SparkflowError) and problem.file for problem in raised.value.problems)
    assert isinstance(raised.value, ValueError)  # callers may catch the built-in too


def test_a_cycle_is_reported_by_the_validate_pass() -> None:
    [pipeline] = load_pipelines(str(RESOURCES / "pipeline_ok.py"))
    graph = nx.DiGraph(pipeline=pipeline, outputs=("b",), problems=[])
    for order, (name, upstream) in enumerate((("a", "c"), ("b", "a"), ("c", "b"))):
        origin = Origin(str(RESOURCES / "pipeline_ok.py"), 9)
        node = StageNode(name, name, StageOptions(), (("frame", upstream),), origin, origin, order)
        graph.add_node(name, node=node)
    graph.add_edges_from([("c", "a"), ("a", "b"), ("b", "c")])
    pattern = (
        at("pipeline_ok.py", "@sf.pipeline")
        + r"pipeline 'wordcount' has a cycle: (a -> b -> c|b -> c -> a|c -> a -> b)"
    )
    with pytest.raises(CompileError, match=pattern):
        validate(graph, Context(pipeline, get_target("aws")))
    graph.remove_edge("b", "c")
    assert validate(graph, Context(pipeline, get_target("aws"))) is graph


def test_validate_is_the_first_pass() -> None:
    assert PASSES[0] is validate


def test_sinks_used_wrongly_are_reported_together() -> None:
    with pytest.raises(CompileError) as raised:
        compile_file("bad_sinks.py")
    messages = "\n".join(str(problem) for problem in raised.value.problems)
    lines = (RESOURCES / "bad_sinks.py").read_text().splitlines()
    twice = [number for number, text in enumerate(lines, 1) if text.strip() == "lines_table(lines)"]
    path = RESOURCES / "bad_sinks.py"
    assert (
        f"{path}:{twice[1]}: sink 'lines_table' is published to twice (also at {path}:{twice[0]}): a sink takes one "
        "output" in messages
    )
    assert re.search(
        at("bad_sinks.py", "raw_table(books)") + r"sink 'raw_table' is given source 'books': pass it a", messages
    )
    assert re.search(
        at("bad_sinks.py", "count_table = sf.sink") + r"sink 'count_table' is given the value of stage 'count'",
        messages,
    )
    assert re.search(
        at("bad_sinks.py", "echo = sf.sink") + r"sink 'echo' has the same name as a source or stage", messages
    )


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        ("'t', 'tables/t/', format='csv'", r"sink 't': format='csv' is not a sink format: use one of parquet, delta"),
        ("'t', 'tables/t/', mode='upsert'", r"sink 't': mode='upsert' is not known: use 'overwrite' .* or 'append'"),
        ("'t', 'tables/t/', partition_cols=[]", r"sink 't': partition_cols=\[\] must be a column name or a list"),
        ("'t', ''", r"sink 't': uri must be a non-empty string"),
        ("'two words', 'tables/t/'", r"sink name 'two words' may contain only letters, digits, '_' and '-'"),
    ],
)
def test_a_badly_declared_sink_names_its_line(tmp_path: Path, arguments: str, pattern: str) -> None:
    path = tmp_path / "pipeline.py"
    path.write_text(f"import sparkflow as sf\n\ntable = sf.sink({arguments})\n")
    with pytest.raises(DefinitionError, match=re.escape(f"{path}:3: ") + pattern):
        load_pipelines(str(path))


def test_a_sink_called_outside_a_pipeline_says_where_to_call_it() -> None:
    import sparkflow as sf

    table = sf.sink("table", "tables/t/")
    with pytest.raises(DefinitionError, match=r"sink 'table' publishes a stage's output when a pipeline runs: call it"):
        table(object())


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        (
            "bad_stage_keyword.py",
            "@sf.stage(partiton_by",
            r"sf\.stage\(\) has no keyword partiton_by=: did you mean "
            r"partition_by=\? \(it takes: name=, partition=, partition_by=",
        ),
        (
            "bad_pipeline_keyword.py",
            "@sf.pipeline(storag",
            r"sf\.pipeline\(\) has no keyword storag=: did you mean "
            r"storage=\? \(it takes: name=, storage=, kv=, engine=, schedule=, trigger=\)",
        ),
        (
            "bad_source_option.py",
            "heder=False",
            r"source 'orders': unknown option heder= for format 'csv': did you "
            r"mean header=\? \(options of csv: header, sep, schema\)",
        ),
    ],
)
def test_a_misspelt_keyword_is_named_with_the_nearest_one(name: str, line: str, message: str) -> None:
    with pytest.raises(DefinitionError, match=at(name, line) + message):
        load_pipelines(str(RESOURCES / name))


def test_the_command_line_prints_a_misspelt_keyword_in_one_line() -> None:
    from click.testing import CliRunner

    from sparkflow.cli import main

    result = CliRunner().invoke(main, ["compile", str(RESOURCES / "bad_stage_keyword.py"), "--check"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert re.match("error: " + at("bad_stage_keyword.py", "@sf.stage(") + "sf.stage", result.output)


def test_a_misspelt_input_name_is_named() -> None:
    pattern = at("bad_input_name.py", "stors=stores") + (
        r"stage 'enrich' has no input 'stors' \(it takes 2 inputs \(orders, stores\)\): did you mean 'stores'\?"
    )
    with pytest.raises(CompileError, match=pattern):
        compile_file("bad_input_name.py")


def test_names_that_collide_once_a_target_derives_its_names_are_refused_naming_both() -> None:
    assert '"daily-totals"' in compile_file("bad_names_dash_underscore.py", "aws")  # distinct AWS states
    pattern = (
        at("bad_names_dash_underscore.py", 'name="daily_totals"')
        + r"stages 'daily-totals' \(declared at .*bad_names_dash_underscore.py:8\) and 'daily_totals' give the same "
        r"GCP Workflows variable names \(daily_totals_\.\.\.: '-' becomes '_'\): rename one of them"
    )
    with pytest.raises(CompileError, match=pattern):
        compile_file("bad_names_dash_underscore.py", "gcp")


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_a_stage_named_like_another_stages_own_state_is_refused(target: str) -> None:
    with pytest.raises(CompileError, match=r"stages 'totals' \(declared at .*\) and 'totals-failed'") as raised:
        compile_file("bad_names_state_suffix.py", target)
    assert "rename" in str(raised.value)
