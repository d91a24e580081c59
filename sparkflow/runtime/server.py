"""The HTTP server of a Cloud Run service: gunicorn serving :func:`sparkflow.runtime.http.app`.

``python -m sparkflow.runtime serve`` runs it on ``$PORT``. Its settings come from the stage limits of the
function's Plan (``SPARKFLOW_PLAN``):

* one worker process with one thread: the service takes one request at a time (``containerConcurrency: 1`` in
  the service sparkflow writes), because a stage uses the whole instance (its engine's memory, its CPUs);
* a worker timeout past the longest task the service runs (its stages on functions and the run's publish task),
  so that gunicorn never kills a stage Cloud Run still waits for: Cloud Run's request timeout is that longest task;
* a graceful shutdown within the 10 seconds Cloud Run gives an instance after SIGTERM.
"""

from __future__ import annotations

import os
from typing import Any

#: Seconds past the longest task before gunicorn gives up on a worker (Cloud Run ends the request first).
TIMEOUT_MARGIN_S = 60
#: Cloud Run's longest request (https://cloud.google.com/run/docs/configuring/request-timeout): the timeout when
#: the function has no readable Plan (its requests then fail with the Plan's error, not a timeout).
LONGEST_REQUEST_S = 3600
#: Cloud Run sends SIGTERM, then SIGKILL 10 seconds later (https://cloud.google.com/run/docs/container-contract).
GRACEFUL_S = 8


def settings(port: int, plan_file: str | None) -> dict[str, Any]:
    """gunicorn's settings for a service on ``port`` whose Plan is ``plan_file``."""
    return {
        "bind": f"0.0.0.0:{port}",
        "workers": 1,
        "threads": 1,
        "worker_class": "sync",
        "timeout": _longest_task_s(plan_file) + TIMEOUT_MARGIN_S,
        "graceful_timeout": GRACEFUL_S,
        # Cloud Run's front end keeps connections to the instance open between requests.
        "keepalive": 75,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }


def serve() -> None:
    """Serve the HTTP entry until the process is stopped."""
    from gunicorn.app.base import BaseApplication

    from sparkflow.runtime.http import app

    chosen = settings(int(os.environ.get("PORT", "8080")), os.environ.get("SPARKFLOW_PLAN"))

    class Server(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
        def load_config(self) -> None:
            for name, value in chosen.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            return app

    Server().run()


def _longest_task_s(plan_file: str | None) -> int:
    """The longest timeout of what a service runs: its stages on functions and the publish task."""
    if not plan_file:
        return LONGEST_REQUEST_S
    from sparkflow.plan import Plan

    try:
        with open(plan_file, encoding="utf-8") as handle:
            plan = Plan.from_json(handle.read())
    except (OSError, ValueError):
        return LONGEST_REQUEST_S
    on_functions = [task.timeout_s for task in plan.tasks if task.placement == "function"]
    return max([*on_functions, plan.publish.timeout_s])
