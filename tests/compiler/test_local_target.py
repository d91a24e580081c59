"""`sparkflow run` plans for this machine: a stage too big for a Lambda function still runs here."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkflow.compiler import CompileError, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.targets.local import LOCAL

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def test_local_plan_ignores_function_limits() -> None:
    pipeline = load_pipeline(str(RESOURCES / "bad_memory.py"))
    with pytest.raises(CompileError, match=r"memory=12,288 MB is over the aws Lambda memory limit"):
        plan_pipeline(pipeline, "aws")
    plan = plan_pipeline(pipeline, LOCAL)
    assert [task.memory_mb for task in plan.tasks] == [12_288]


def test_local_target_emits_nothing() -> None:
    with pytest.raises(Exception, match=r"has no definition to emit"):
        LOCAL.emit(plan_pipeline(load_pipeline(str(RESOURCES / "pipeline_ok.py")), LOCAL))
