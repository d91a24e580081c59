"""HTTP entry point for Cloud Run (and anything else that POSTs events): a minimal WSGI app.

``POST /`` with the event as JSON answers 200 with the result. Errors retrying cannot fix (the protocol's
:data:`~sparkflow.runtime.protocol.FINAL_ERRORS`) answer 4xx (a Workflows retry policy retries only 429 and 5xx);
anything else answers 500, so the caller retries.
Served by gunicorn with ``python -m sparkflow.runtime serve`` (:mod:`sparkflow.runtime.server`; reads ``PORT``, as
Cloud Run sets it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sparkflow.errors import ConfinementError, EventError, SparkflowError
from sparkflow.runtime import logs
from sparkflow.runtime.deployed import deployed_config
from sparkflow.runtime.execute import handle_event
from sparkflow.runtime.protocol import is_final

_STATUS = {EventError: 400, ConfinementError: 403}  # other final errors: 422; anything else: 500
_MAX_BODY = 1024 * 1024


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI application."""
    if environ.get("REQUEST_METHOD") != "POST":
        return _answer(start_response, 405, {"error": "MethodNotAllowed", "message": "POST the event as JSON"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > _MAX_BODY:
        return _answer(start_response, 413, {"error": "EventError", "message": "the event is larger than 1 MiB"})
    body = environ["wsgi.input"].read(length)
    try:
        event = json.loads(body or b"null")
    except ValueError as error:
        return _answer(start_response, 400, {"error": "EventError", "message": f"the body is not JSON: {error}"})
    try:
        result = handle_event(event, deployed_config())
    except SparkflowError as error:
        return _answer(start_response, status_of(error), {"error": type(error).__name__, "message": str(error)})
    except Exception as error:
        logs.log("request failed", severity="ERROR", error=type(error).__name__, detail=str(error)[:2000])
        return _answer(start_response, 500, {"error": type(error).__name__, "message": str(error)})
    return _answer(start_response, 200, result)


def status_of(error: SparkflowError) -> int:
    """The HTTP status that answers ``error``: 4xx for what retrying cannot fix, 500 for the rest."""
    final = 422 if is_final(error) else 500
    return next((code for kind, code in _STATUS.items() if isinstance(error, kind)), final)


def _answer(start_response: Callable[..., Any], status: int, document: dict[str, Any]) -> list[bytes]:
    reasons = {
        200: "OK",
        400: "Bad Request",
        403: "Forbidden",
        405: "Method Not Allowed",
        413: "Payload Too Large",
        422: "Unprocessable Entity",
        500: "Internal Server Error",
    }
    data = json.dumps(document).encode()
    start_response(
        f"{status} {reasons[status]}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
