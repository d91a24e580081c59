"""The runtime's configuration as a deployed function has it: the pipeline and its compiled Plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparkflow.compiler import plan_pipeline
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.runtime.execute import RuntimeConfig


def runtime_config(pipeline: Pipeline, storage_root: str, *, target: str = "aws", **fields: Any) -> RuntimeConfig:
    """A :class:`RuntimeConfig` for ``pipeline`` with the Plan ``target`` compiles it into."""
    return RuntimeConfig(pipeline=pipeline, plan=plan_pipeline(pipeline, target), storage_root=storage_root, **fields)


def write_plan(pipeline: Pipeline, folder: Path, target: str = "aws") -> str:
    """Write ``pipeline``'s Plan for ``target`` as ``sparkflow package`` ships it; return its path (SPARKFLOW_PLAN)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{pipeline.name}.{target}.plan.json"
    path.write_text(plan_pipeline(pipeline, target).to_json(), encoding="utf-8")
    return str(path)
