"""A worker process: one engine, started once, running the entries it is sent
(``python -m tests.conformance.worker ENGINE``; started by :class:`tests.conformance.process.EngineProcess`; see
:mod:`tests.conformance.frames`).

The process is prepared for its engine (:func:`sparkflow.runtime.engines.prepare`) before anything imports
``pyspark.sql``, and its session is the one sparkflow's runtime runs stages on (``Engine.session``: the same settings,
the UTC session time zone among them). Requests and replies are pickled frames on the process's stdin and on what was
its stdout; the examples' own output (``explain``, Spark's JVM) goes to stderr.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from tests.conformance.frames import receive, send

MEMORY_MB = 2048


def start_session(engine: str) -> Any:
    """Make this process ``engine``'s and start its session as sparkflow's runtime does."""
    from sparkflow.runtime import engines

    engines.prepare(engine)
    return engines.start(engine, MEMORY_MB, "").session  # type: ignore[attr-defined]


def main(engine: str) -> None:
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print(), explain() and the JVM's own output go to stderr, not into the frames
    requests = sys.stdin.buffer
    started = time.monotonic()
    session = start_session(engine)
    from tests.conformance.capture import run_entry

    send(replies, ("ready", time.monotonic() - started))
    while True:
        try:
            request = receive(requests)
        except EOFError:
            return
        if request is None:
            return
        entry, timeout = request
        send(replies, run_entry(entry, session, timeout))


if __name__ == "__main__":
    main(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter finalization: Arrow's and the JVM's threads can abort a finished process
