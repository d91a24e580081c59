"""AWS Lambda entry point: ``sparkflow.runtime.aws.handler``.

Errors propagate: Lambda reports the exception's class name as ``errorType``, which the state machine's
Retry and Catch match (``EventError``, ``InputError`` and ``ConfinementError`` are not retried).
"""

from __future__ import annotations

from typing import Any

from sparkflow.runtime.deployed import deployed_config
from sparkflow.runtime.execute import handle_event


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the node the event names; return the result document."""
    return handle_event(event, deployed_config())
