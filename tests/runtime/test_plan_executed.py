"""The runtime executes the compiled Plan: its memory reaches the engine, and an event of another Plan is refused.

Placement rounds a container stage's memory up and fusion takes the larger of two stages' memories; before the
runtime read the Plan, Spark started with the memory the stage declared.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sparkflow.errors import EventError
from sparkflow.loading import load_pipeline
from sparkflow.plan import Plan
from sparkflow.runtime import engines
from sparkflow.runtime.execute import RuntimeConfig, handle_event
from tests.runtime.configs import runtime_config

PIPELINE = textwrap.dedent(
    """
    from pyspark.sql import DataFrame, functions as F
    import sparkflow as sf

    events = sf.source("events", "events.csv", header=True, schema="user STRING, amount INT", size="3GB")

    @sf.stage
    def whole(events: DataFrame) -> DataFrame:
        '''3 GB declared, whole: more than a function takes, so a container, its memory rounded up.'''
        return events.groupBy("user").agg(F.sum("amount").alias("total"))

    @sf.stage(partition="rows", memory="3GB")
    def positive(events: DataFrame) -> DataFrame:
        return events.where("amount > 0")

    @sf.stage(partition_by="user")
    def per_user(positive: DataFrame) -> DataFrame:
        return positive.groupBy("user").count()

    @sf.pipeline
    def planned():
        return whole(events), per_user(positive(events))
    """
)


@pytest.fixture
def config(tmp_path: Path) -> RuntimeConfig:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "events.csv").write_text("user,amount\na,5\nb,-7\na,3\nc,1\n")
    (tmp_path / "root").mkdir()
    return runtime_config(load_pipeline(str(tmp_path / "pipeline.py")), str(tmp_path / "root"))


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The memory each engine the runtime starts is asked for."""
    memories: list[int] = []
    start = engines.start

    def recording(name: str, memory_mb: int, pipeline_module: str) -> Any:
        memories.append(memory_mb)
        return start(name, memory_mb, pipeline_module)

    monkeypatch.setattr(engines, "start", recording)
    return memories


def event(config: RuntimeConfig, node: str, **fields: Any) -> dict[str, Any]:
    run = {"id": "r1", "storage": f"{config.storage_root}/", "plan": config.plan.digest}
    return {"version": 1, "pipeline": "planned", "node": node, **fields, "run": run}


@pytest.mark.spark
def test_a_container_stage_gets_the_plan_memory(spark: Any, config: RuntimeConfig, started: list[int]) -> None:
    task = config.plan.task("whole")
    declared = config.pipeline.trace().calls["whole"].stage.options.memory_mb
    assert task.placement == "container" and task.memory_mb > declared  # rounded up to a Fargate size
    assert handle_event(event(config, "whole"), config)["status"] == "committed"
    assert started == [task.memory_mb]


@pytest.mark.spark
def test_a_fused_stage_gets_the_plan_memory(spark: Any, config: RuntimeConfig, started: list[int]) -> None:
    task = config.plan.task("per_user")
    assert [fused.id for fused in task.fused] == ["positive"] and task.memory_mb == 3072  # the larger of the two
    split = handle_event(event(config, "per_user", phase="split", fused=["positive"]), config)
    handle_event(event(config, "per_user", phase="map", chunk=0, fused=["positive"]), config)
    assert split["output"]["chunks"] == 1 and started and set(started) == {3072}


@pytest.mark.spark
def test_sources_are_read_with_the_plan_reader_options_and_bad_record_policy(spark: Any, config: RuntimeConfig) -> None:
    """The code declares a header and on_bad_record="fail"; a Plan saying no header and "skip" reads the header
    line as a record that does not parse (amount is an INT), and skips and counts it."""
    (source,) = config.plan.sources
    assert source.option("header") is True and source.on_bad_record == "fail"
    options = tuple((key, False if key == "header" else value) for key, value in source.options)
    plan = replace(config.plan, sources=(replace(source, options=options, on_bad_record="skip"),))
    planned = replace(config, plan=plan)
    result = handle_event(event(planned, "whole"), planned)
    assert result["status"] == "committed" and result["output"]["rows"] == 3 and result["output"]["rejected"] == 1


def test_an_event_of_another_plan_is_refused_and_touches_nothing(config: RuntimeConfig) -> None:
    stale = event(config, "whole")
    stale["run"]["plan"] = "0123456789abcdef"
    with pytest.raises(EventError, match=r"event field 'run.plan' is '0123456789abcdef', but this function was deploy"):
        handle_event(stale, config)
    assert not any(Path(config.storage_root).iterdir())


def test_the_plan_reads_back_as_written_and_its_digest_does_not_depend_on_the_machine(config: RuntimeConfig) -> None:
    shipped = config.plan.to_json()
    back = Plan.from_json(shipped)
    assert back.to_json() == shipped and back.digest == config.plan.digest
    assert str(Path(config.storage_root).parent) not in shipped  # origins are relative to the project
    document = json.loads(shipped)
    document["tasks"][0]["memory_mb"] += 1
    with pytest.raises(ValueError, match="digest does not match its content"):
        Plan.from_json(json.dumps(document))


@pytest.mark.spark
def test_sparkflow_run_names_the_plan_in_every_event(
    spark: Any, config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sparkflow.runtime import local

    named: list[str] = []

    def recording(event: dict[str, Any], given: RuntimeConfig) -> dict[str, Any]:
        named.append(event["run"]["plan"])
        return handle_event(event, given)

    monkeypatch.setattr(local, "handle_event", recording)
    summary = local.run_plan(config.plan, config.pipeline, storage_root=config.storage_root)
    assert summary.status == "succeeded", summary
    assert len(named) > 4 and set(named) == {config.plan.digest}  # every phase of both stages, and the publish
