"""``@sf.pipeline(engine=...)``: the engine of every stage that declares none, resolved once when the pipeline is
traced, so the graph, the Plan and the definitions all see it; a stage's own ``engine=`` wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparkflow.compiler import build, compile_pipeline, plan_pipeline
from sparkflow.compiler.graph import stage_nodes
from sparkflow.errors import DefinitionError
from sparkflow.loading import load_pipeline
from tests.compiler.test_compile_errors import at

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def engines(spec: str) -> dict[str, str]:
    pipeline = load_pipeline(str(RESOURCES / "pipeline_engine.py"), spec)
    return {task.id: task.engine for task in plan_pipeline(pipeline, "aws").tasks}


def test_pipeline_engine_applies_to_stages_without_their_own() -> None:
    assert engines("on_duckdb") == {"words": "duckdb", "counts": "spark", "top": "duckdb"}


def test_stage_shared_by_two_pipelines_is_not_changed_by_either() -> None:
    assert engines("on_default") == {"words": "spark", "counts": "spark", "top": "duckdb"}
    assert engines("on_duckdb")["words"] == "duckdb"
    assert engines("on_default")["words"] == "spark"  # tracing on_duckdb left the stage itself as declared
    words = load_pipeline(str(RESOURCES / "pipeline_engine.py"), "on_default").trace().calls["words"].stage
    assert (words.options.engine, words.options.engine_declared) == ("spark", False)


def test_graph_nodes_carry_the_resolved_engine() -> None:
    graph = build(load_pipeline(str(RESOURCES / "pipeline_engine.py"), "on_duckdb"))
    assert {node.id: node.options.engine for node in stage_nodes(graph)} == {
        "words": "duckdb",
        "counts": "spark",
        "top": "duckdb",
    }


def test_split_stage_is_planned_with_the_resolved_engine() -> None:
    """The chunk budget depends on the engine (its measured throughput and memory expansion): an undeclared
    source size makes ``words`` a split stage, and its chunks differ between the two pipelines."""
    on_duckdb = plan_pipeline(load_pipeline(str(RESOURCES / "pipeline_engine.py"), "on_duckdb"), "aws")
    on_default = plan_pipeline(load_pipeline(str(RESOURCES / "pipeline_engine.py"), "on_default"), "aws")
    duck, spark = on_duckdb.task("words").fanout, on_default.task("words").fanout
    assert duck is not None and spark is not None
    assert duck.chunk_bytes != spark.chunk_bytes


def test_definition_compiles_for_every_target() -> None:
    pipeline = load_pipeline(str(RESOURCES / "pipeline_engine.py"), "on_duckdb")
    assert json.loads(compile_pipeline(pipeline, "aws"))["StartAt"]
    assert compile_pipeline(pipeline, "gcp")


def test_unknown_pipeline_engine_names_the_file_and_line() -> None:
    with pytest.raises(
        DefinitionError,
        match=at("bad_pipeline_engine.py", "@sf.pipeline")
        + r"engine='duckbd' is not available; use one of: spark, sail, duckdb, auto \(did you mean 'duckdb'\?\)",
    ):
        load_pipeline(str(RESOURCES / "bad_pipeline_engine.py"))
