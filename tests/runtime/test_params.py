"""A run's parameters (``sf.param``): `sparkflow run --param` gives the stage functions plain typed values and
records them; wrong values are refused before anything runs, on the command line and in a cloud run's events."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.errors import EventError, OptionError, SparkflowError
from sparkflow.loading import load_pipeline
from sparkflow.runtime.execute import handle_event
from sparkflow.runtime.local import run_plan
from sparkflow.runtime.protocol import is_final
from tests.examples import example
from tests.runtime.configs import runtime_config
from tests.runtime.reference import committed_rows, reference_outputs, rows

RESOURCE = Path(__file__).resolve().parents[1] / "resources" / "params" / "pipeline.py"
TOP_WORDS = example("top-words")


def declared_at(path: Path, name: str) -> str:
    """``file:line: `` of the ``sf.param(name, ...)`` declaration in ``path``, as a regex."""
    lines = path.read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if f'sf.param("{name}"' in text)
    return re.escape(f"{path}:{line}: ")


@pytest.mark.spark
def test_run_with_a_param_gives_what_plain_pyspark_gives_with_that_value(spark: Any, tmp_path: Path) -> None:
    """The must-show, locally: `sparkflow run examples/top-words --param n=2` keeps the top 2 words, as one plain
    PySpark job with n=2 does, and the run's record (--json, _latest.json) holds the values it used."""
    result = CliRunner().invoke(
        main,
        ["run", str(TOP_WORDS), "--param", "n=2", "--storage", str(tmp_path), "--engine", "duckdb", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["params"] == {"min_length": 1, "n": 2}
    pipeline = load_pipeline(str(TOP_WORDS))
    expected = rows(reference_outputs(spark, pipeline, {"n": 2})["top"])
    assert len(expected) == 2 and committed_rows(spark, summary["outputs"]["top"]) == expected
    latest = json.loads((tmp_path / "top-words" / "_latest.json").read_text())
    assert latest["run_id"] == summary["run_id"] and latest["params"] == {"min_length": 1, "n": 2}


def test_each_type_arrives_as_a_plain_python_value(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(RESOURCE))
    given = {"label": "gold", "loud": True, "ratio": 2, "limit": 1}  # a whole number is a fine float
    summary = run_plan(runtime_config(pipeline, str(tmp_path)).plan, pipeline, storage_root=str(tmp_path), params=given)
    assert summary.status == "succeeded", summary.nodes
    assert summary.params == {"limit": 1, "label": "gold", "ratio": 2.0, "loud": True}
    import pyarrow.parquet as pq

    table = pq.read_table(Path(summary.outputs["tagged"]) / "part-00000.parquet").to_pylist()
    assert table == [{"item": "c", "scaled": 1000.0, "label": "GOLD", "kinds": "int/str/float/bool"}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--param", "label=x", "--param", "limit=abc"],
            "{limit}--param limit=abc: parameter 'limit' is an int: give a whole number, e.g. --param limit=3",
        ),
        (
            ["--param", "label=x", "--param", "ratio=fast"],
            "{ratio}--param ratio=fast: parameter 'ratio' is a float: give a number, e.g. --param ratio=0.5",
        ),
        (
            ["--param", "label=x", "--param", "loud=maybe"],
            "{loud}--param loud=maybe: parameter 'loud' is a bool: give true or false, e.g. --param loud=true",
        ),
        (
            ["--param", "label=x", "--param", "limt=5"],
            "--param limt=5: pipeline 'params' has no parameter 'limt' (its parameters: limit, label, ratio, loud); "
            "did you mean 'limit'?",
        ),
        (
            ["--param", "limit=5"],
            "{label}parameter 'label' (str) has no default: give its value with --param label=VALUE; nothing ran",
        ),
        (["--param", "label"], "--param 'label': write NAME=VALUE, e.g. --param n=5"),
    ],
    ids=["wrong-int", "wrong-float", "wrong-bool", "unknown", "missing-required", "no-value"],
)
def test_sparkflow_run_refuses_a_bad_param_before_anything_runs(
    options: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["run", str(RESOURCE), "--storage", str(tmp_path), *options])
    assert result.exit_code == 2, result.output
    places = {
        name: re.sub(r"\\(.)", r"\1", declared_at(RESOURCE, name)) for name in ("limit", "ratio", "loud", "label")
    }
    assert result.stderr == f"error: {message.format(**places)}\n"
    assert not (tmp_path / "params").exists()  # no run folder: nothing ran


def test_run_plan_checks_the_types_of_values_given_by_code(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(RESOURCE))
    plan = runtime_config(pipeline, str(tmp_path)).plan
    with pytest.raises(OptionError, match=declared_at(RESOURCE, "limit") + r"--param limit='2': parameter 'limit'"):
        run_plan(plan, pipeline, storage_root=str(tmp_path), params={"label": "x", "limit": "2"})
    with pytest.raises(
        OptionError, match=declared_at(RESOURCE, "loud") + r"--param loud=1: parameter 'loud' is a bool"
    ):
        run_plan(plan, pipeline, storage_root=str(tmp_path), params={"label": "x", "loud": 1})
    assert not (tmp_path / "params").exists()


def event(params: Any) -> dict[str, Any]:
    run: dict[str, Any] = {"id": "r1", "storage": "ROOT/"}
    if params is not None:
        run["params"] = {"params": params}
    return {"version": 1, "pipeline": "params", "node": "tagged", "run": run}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"label": "x", "limit": "2"},
            r"event field 'run.params.params.limit' is '2', but parameter 'limit' \(.*/params/pipeline.py:9\) is an "
            r"int: give a whole number \(JSON 3\): start the run with a value of that type",
        ),
        ({"label": "x", "limit": True}, r"event field 'run.params.params.limit' is True, but parameter 'limit'"),
        ({"label": "x", "loud": "yes"}, r"event field 'run.params.params.loud' is 'yes', but parameter 'loud' .* bool"),
        (
            {"label": 7},
            r"event field 'run.params.params.label' is 7, but parameter 'label' .* is a str \(JSON \"text\"\)",
        ),
        (
            {"label": "x", "size": 3},
            r"event field 'run.params.params.size': pipeline 'params' has no parameter 'size' \(its parameters: limit, "
            r"label, ratio, loud\)",
        ),
        (
            {"limit": 3},
            r"event field 'run.params.params.label' is missing: parameter 'label' \(.*pipeline.py:10\) has no default; "
            r'start the run with \{"params": \{"label": "text"\}\} in its input',
        ),
        (None, r"event field 'run.params.params.label' is missing"),
        ({"label": ["a"]}, r"event field 'run.params.params.label' is invalid: \['a'\] is not of type"),
    ],
    ids=["string-for-int", "bool-for-int", "string-for-bool", "int-for-str", "unknown", "missing", "none", "list"],
)
def test_the_runtime_refuses_an_event_whose_params_do_not_fit_the_plan(
    params: Any, message: str, tmp_path: Path
) -> None:
    """A cloud run's input is checked again where it runs (anything may start an execution): a final EventError
    naming the field, before anything is read or written."""
    root = tmp_path / "root"
    root.mkdir()
    config = runtime_config(load_pipeline(str(RESOURCE)), str(root))
    checked = json.loads(json.dumps(event(params)).replace("ROOT", str(root)))
    with pytest.raises(EventError, match=message) as refused:
        handle_event(checked, config)
    assert is_final(refused.value)
    assert list(root.iterdir()) == []


def test_verify_takes_params_and_refuses_a_missing_required_one() -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["verify", str(RESOURCE)])
    assert missing.exit_code == 2
    assert re.match(
        "error: " + declared_at(RESOURCE, "label") + r"parameter 'label' \(str\) has no default", missing.stderr
    )
    given = runner.invoke(main, ["verify", str(RESOURCE), "--param", "label=x"])
    assert given.exit_code == 0, given.output
    assert given.stdout == (
        "params: ok (0 partitioned stage(s) checked, 1 compared with Spark; tagged not checked: runs whole)\n"
    )


def test_a_resumed_run_keeps_the_values_it_started_with(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(RESOURCE))
    plan = runtime_config(pipeline, str(tmp_path)).plan
    first = run_plan(plan, pipeline, storage_root=str(tmp_path), run_id="r1", params={"label": "x", "limit": 1})
    assert first.status == "succeeded"
    with pytest.raises(SparkflowError, match=r"--resume: run 'r1' started with --param label=x --param limit=1 "):
        run_plan(plan, pipeline, storage_root=str(tmp_path), run_id="r1", resume=True, params={"label": "y"})
    again = run_plan(
        plan, pipeline, storage_root=str(tmp_path), run_id="r1", resume=True, params={"label": "x", "limit": 1}
    )
    assert again.status == "succeeded" and again.nodes["tagged"].status == "already-committed"
