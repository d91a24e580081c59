"""Container entry point.

    python -m sparkflow.runtime '{"version": 1, ...}'     # run one event given as an argument
    SPARKFLOW_EVENT='{...}' python -m sparkflow.runtime   # or in an environment variable
    python -m sparkflow.runtime serve                     # serve the HTTP entry on $PORT with gunicorn (Cloud Run)
    python -m sparkflow.runtime job                       # a Cloud Run job task: SPARKFLOW_EVENT + task index

Prints the result as JSON on stdout; exits 0 on success, 2 on an error retrying cannot fix, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from sparkflow.errors import EventError, SparkflowError


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        from sparkflow.runtime.server import serve

        serve()
        return 0
    if argv[:1] == ["job"]:
        from sparkflow.runtime.cloudrun import run_task

        return answer(lambda: run_task(os.environ))
    from sparkflow.runtime.protocol import EVENT_VARIABLE

    text = argv[0] if argv else os.environ.get(EVENT_VARIABLE)
    if not text:
        print(f"error: pass the event as an argument or in {EVENT_VARIABLE}", file=sys.stderr)
        return 2

    def run_event() -> dict[str, Any]:
        from sparkflow.runtime.deployed import deployed_config
        from sparkflow.runtime.execute import handle_event

        try:
            event = json.loads(text)
        except json.JSONDecodeError as error:
            raise EventError(f"the event is not JSON: {error}") from error
        return handle_event(event, deployed_config())

    return answer(run_event)


def answer(work: Callable[[], dict[str, Any]]) -> int:
    """Run ``work``; print its result, or the error and an exit code (2: retrying cannot help, 1: it may; see
    :data:`sparkflow.runtime.protocol.FINAL_ERRORS`)."""
    from sparkflow.runtime.protocol import is_final

    try:
        result = work()
    except SparkflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if is_final(error) else 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    from sparkflow.runtime.shutdown import exit_now

    exit_now(main(sys.argv[1:]))  # no interpreter finalization: an abort there would fail a committed stage
