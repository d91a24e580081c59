"""The versioned event and result between a state machine and the runtime, checked with jsonschema.

The schemas ship in the package (``sparkflow/runtime/schemas``) so that other tools can validate too.
jsonschema is imported on first use: importing this module costs nothing.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from sparkflow.errors import EventError

EVENT_VERSION = 1


@cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of ``kind`` (``event`` or ``result``) for the current version."""
    text = resources.files("sparkflow.runtime").joinpath(f"schemas/{kind}-{EVENT_VERSION}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate_event(event: object) -> dict[str, Any]:
    """Return ``event`` if it follows the protocol, else raise :class:`EventError` naming the field."""
    if not isinstance(event, dict):
        raise EventError(f"the event must be a JSON object, got {type(event).__name__}")
    version = event.get("version")
    if "version" in event and version != EVENT_VERSION:
        raise EventError(
            f"event field 'version' is {version!r}, but this runtime speaks version {EVENT_VERSION}: "
            "recompile the pipeline with the same sparkflow version as the deployed runtime"
        )
    if event.get("phase") == "publish" and "node" in event:
        raise EventError("event field 'node': a publish event (phase 'publish') names no node: it publishes the run")
    _validate(event, "event")
    return event


def validate_result(result: dict[str, Any]) -> dict[str, Any]:
    _validate(result, "result")
    return result


def _validate(document: dict[str, Any], kind: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema(kind))
    errors = sorted(
        validator.iter_errors(document), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if not errors:
        return
    error = errors[0]
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = next((name for name in error.validator_value if name not in error.instance), "?")
        path = f"{path}.{missing}" if path else missing
        raise EventError(f"{kind} field {path!r} is missing")
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where = f"{path}." if path else ""
        allowed = ", ".join(error.schema.get("properties", {}))
        raise EventError(f"{kind} field {where}{extra[0]!r} is not allowed (allowed: {allowed})")
    raise EventError(f"{kind} field {path or '(top)'!r} is invalid: {error.message}")
