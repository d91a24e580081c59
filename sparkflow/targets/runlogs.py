"""The runtime's log lines of one run, whatever holds them (``sparkflow logs``): which lines to keep, how a line
reads, and the local reader (``sparkflow run`` appends them to the run folder's ``_logs.jsonl``).

Every line the runtime writes is one JSON object (:mod:`sparkflow.runtime.logs`): ``time`` (seconds since the
epoch), ``severity``, ``message`` (``stage start``, ``stage end``, ``stage failed``, ``stage skipped: already
committed``, ...), ``run_id``, ``node`` (the task: a fused stage's lines name the stage it runs inside), and for a
split stage ``phase`` and ``chunk``. Each target reads them from where they are and keeps those of the run (and
stage) asked for; the command line prints them with :func:`line` or as they are.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sparkflow.errors import OptionError
from sparkflow.plan import Plan

PUBLISH = "publish"  # the node the run's publish task logs under


@dataclass(frozen=True)
class LogQuery:
    """Which log lines to read.

    Attributes:
        run_id: the run.
        nodes: keep only the lines of these tasks (None: every task's); see :func:`stage_nodes`.
        follow: keep reading until the run ends.
        poll_s: the pause between two readings while following.
        timeout_s: stop following after this long (None: when the run ends).
    """

    run_id: str
    nodes: tuple[str, ...] | None = None
    follow: bool = False
    poll_s: float = 1.0
    timeout_s: float | None = None

    def keeps(self, record: dict[str, Any]) -> bool:
        if record.get("run_id") != self.run_id:
            return False
        return self.nodes is None or record.get("node") in self.nodes


def stage_nodes(plan: Plan, stage: str | None) -> tuple[str, ...] | None:
    """The tasks whose lines are those of ``stage`` (None: every task): the stage's own task, or for a stage fused
    into another one's map tasks that stage's task (they run, and log, together); ``publish``: the publish task."""
    if stage is None:
        return None
    if stage == PUBLISH:
        return (PUBLISH,)
    for task in plan.tasks:
        if task.id == stage or stage in (fused.id for fused in task.fused):
            return (task.id,)
    known = ", ".join([task.id for task in plan.tasks] + [fused.id for task in plan.tasks for fused in task.fused])
    raise OptionError(f"--stage {stage}: pipeline {plan.pipeline!r} has no stage {stage!r} (stages: {known}, publish)")


def parse(text: str) -> dict[str, Any] | None:
    """One log line as a record; None for a line that is not one of the runtime's (a platform's own line)."""
    try:
        record = json.loads(text.strip())
    except ValueError:
        return None
    return record if isinstance(record, dict) and "message" in record else None


# Fields a line shows after its message, in this order (the rest is in --json).
_SHOWN = ("rows", "bytes", "rejected", "seconds", "status", "sink", "error")


def line(record: dict[str, Any]) -> str:
    """One record as one line: time (UTC), stage (with phase and chunk), severity, message, then what it counts;
    a failure's first line of detail."""
    stamp = record.get("time")
    when = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(float(stamp))) + f".{int(float(stamp) * 1000) % 1000:03d}Z"
        if isinstance(stamp, int | float)
        else "-"
    )
    where = " ".join(
        str(part) for part in (record.get("node", "-"), record.get("phase"), record.get("chunk")) if part is not None
    )
    if record.get("phase") == PUBLISH:
        where = PUBLISH
    facts = " ".join(f"{key}={record[key]}" for key in _SHOWN if record.get(key) is not None)
    detail = str(record.get("detail") or "").strip().splitlines()
    shown = f"{when}  {where:<16} {record.get('severity', '')!s:<7} {record.get('message', '')}"
    return shown + (f"  {facts}" if facts else "") + (f"  {detail[-1]}" if detail else "")


def local_records(storage_root: str, pipeline: str, query: LogQuery) -> Iterator[dict[str, Any]]:
    """The run's records from its ``_logs.jsonl`` under ``storage_root``; following, new ones as they are written,
    until the run's last line (``run end``) or ``query.timeout_s``."""
    from sparkflow.layout import run_location
    from sparkflow.runtime.logs import RUN_END, RUN_START

    folder = run_location(storage_root, pipeline, query.run_id)
    path = os.path.join(folder, "_logs.jsonl")
    if not os.path.isdir(folder):
        raise OptionError(
            f"run {query.run_id}: there is no run {query.run_id!r} of pipeline {pipeline!r} under {storage_root}; give "
            "the run id `sparkflow run` printed, and --storage if it wrote elsewhere"
        )
    deadline = None if query.timeout_s is None else time.monotonic() + query.timeout_s
    offset, running = 0, False
    while True:
        records, offset = _new_records(path, offset)
        for record in records:
            # Running from a 'run start' line until the 'run end' after it (a resumed run appends another pair).
            running = record["message"] == RUN_START or (running and record["message"] != RUN_END)
            if query.keeps(record):
                yield record
        if not query.follow or (not running and offset > 0):  # nothing read yet: the run is only starting
            return
        if deadline is not None and time.monotonic() > deadline:
            raise OptionError(
                f"run {query.run_id} has not ended after {query.timeout_s:g} s of --follow (no 'run end' line yet)"
            )
        time.sleep(query.poll_s)


def _new_records(path: str, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The records of the complete lines of ``path`` after byte ``offset``, and the offset after the last of them
    (a line still being written, without its newline yet, is read at the next reading)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    complete = data[: data.rfind(b"\n") + 1]
    records = [parse(raw) for raw in complete.decode("utf-8", errors="replace").splitlines()]
    return [record for record in records if record is not None], offset + len(complete)
