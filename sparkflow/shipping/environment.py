"""The environment every deployed function gets from its target's deployment, besides what its image sets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparkflow.engines import runtime_engine
from sparkflow.runtime.protocol import (
    ALLOWED_INPUTS_VARIABLE,
    ENGINE_VARIABLE,
    KV_VARIABLE,
    STORAGE_ROOT_VARIABLE,
)


def function_environment(
    storage_root: Any, kv: Any | None, allowed_inputs: Sequence[str], engine: str
) -> dict[str, Any]:
    """The storage root, the KV store (when the pipeline passes values), the locations sources may be read from
    besides the declared ones, and the engine (:func:`engine_environment`). Values are the target's own: strings,
    or template intrinsics resolved at deploy time.
    """
    environment = {STORAGE_ROOT_VARIABLE: storage_root}
    if kv is not None:
        environment[KV_VARIABLE] = kv
    if allowed_inputs:
        environment[ALLOWED_INPUTS_VARIABLE] = ",".join(allowed_inputs)
    return environment | engine_environment(engine)


def engine_environment(engine: str) -> dict[str, str]:
    """``SPARKFLOW_ENGINE`` for the functions of an engine that needs its process prepared before the pipeline is
    loaded (sail, duckdb: :attr:`~sparkflow.engines.EngineSpec.prepare`); they then run every stage on it. Nothing
    for Spark, which shares the process: its functions run each stage on the engine the Plan gives it."""
    return {ENGINE_VARIABLE: engine} if runtime_engine(engine).own_process else {}
