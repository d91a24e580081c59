"""The environment every deployed function gets from its target's deployment, besides what its image sets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparkflow.runtime.protocol import ALLOWED_INPUTS_VARIABLE, KV_VARIABLE, STORAGE_ROOT_VARIABLE


def function_environment(storage_root: Any, kv: Any | None, allowed_inputs: Sequence[str]) -> dict[str, Any]:
    """The storage root, the KV store (when the pipeline passes values) and the locations sources may be read from
    besides the declared ones. Values are the target's own: strings, or template intrinsics resolved at deploy time.
    """
    environment = {STORAGE_ROOT_VARIABLE: storage_root}
    if kv is not None:
        environment[KV_VARIABLE] = kv
    if allowed_inputs:
        environment[ALLOWED_INPUTS_VARIABLE] = ",".join(allowed_inputs)
    return environment
