"""Cloud Run job tasks: a split stage's map or reduce phase with more items than a Workflows ``parallel for``
should run goes to one Cloud Run job execution with ``taskCount`` = items. Every task gets the same event (in
``SPARKFLOW_EVENT``, set by the workflow as a container override) and picks its item by its task index
(``CLOUD_RUN_TASK_INDEX``, set by Cloud Run): ``python -m sparkflow.runtime job``. A stage placed on a container
runs as a job execution of one task whose event has no phase: it runs the whole stage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sparkflow.errors import EventError
from sparkflow.runtime.protocol import EVENT_VARIABLE

INDEX_VARIABLE = "CLOUD_RUN_TASK_INDEX"


def job_event(environ: Mapping[str, str]) -> dict[str, Any]:
    """The event of this job task: the job's event, with ``chunk`` = the task's index for a map or reduce phase."""
    text = environ.get(EVENT_VARIABLE)
    if not text:
        raise EventError(f"{EVENT_VARIABLE} is not set: a job task gets its event from the workflow's override")
    index = environ.get(INDEX_VARIABLE, "")
    if not index.isdigit():
        raise EventError(f"{INDEX_VARIABLE} is {index!r}: a job task needs the index Cloud Run gives it")
    try:
        event = json.loads(text)
    except ValueError as error:
        raise EventError(f"{EVENT_VARIABLE} is not JSON: {error}") from error
    if not isinstance(event, dict):
        raise EventError(f"{EVENT_VARIABLE} must hold a JSON object")
    if event.get("phase") not in ("map", "reduce"):
        return event
    return {**event, "chunk": int(index)}


def run_task(environ: Mapping[str, str]) -> dict[str, Any]:
    """Run this job task's item through the runtime; the result is returned (and logged), not sent anywhere."""
    from sparkflow.runtime.deployed import deployed_config
    from sparkflow.runtime.execute import handle_event

    return handle_event(job_event(environ), deployed_config())
