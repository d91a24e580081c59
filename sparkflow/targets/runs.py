"""Where a run of a deployed pipeline is, whatever the target: every stage's state, then its outputs or what
failed; how the command line shows it (a rich table while it runs, a summary at the end); a run's input; and
following a run until it ends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparkflow.estimate import Seconds

PENDING, RUNNING, DONE, FAILED, STOPPED = "pending", "running", "done", "failed", "stopped"
SKIPPED = "skipped"  # never entered by a run that succeeded (a resumed run's chunks of a committed stage)


@dataclass(frozen=True)
class StageStatus:
    """One Task state of a run.

    Attributes:
        name: the state's name (a stage id, or a step sparkflow added such as ``words-split``).
        state: ``pending``, ``running``, ``done``, ``failed`` (it raised an error), ``stopped`` (aborted
            without an error of its own, e.g. a parallel branch stopped because another one failed), or ``skipped``
            (the run succeeded without it: the map and reduce states of a stage a resumed run found committed).
        started: how many times it was entered (more than once inside a Map: once per chunk).
        finished: how many of those ended without an error.
        error, cause: of the last failure, when it failed (the Lambda function's error type and message).
        chunks: for a Distributed Map state (one child execution per chunk or bucket), its item counts.
        started_at, ended_at: when it was first entered and last left (seconds since the epoch; None: not known,
            or not yet); ``seconds`` between the two.
    """

    name: str
    state: str
    started: int = 0
    finished: int = 0
    error: str | None = None
    cause: str | None = None
    chunks: ChunkCounts | None = None
    started_at: float | None = None
    ended_at: float | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class ChunkCounts:
    """The items of a Distributed Map run (chunks of a split stage, or buckets of a shuffle)."""

    total: int
    succeeded: int
    failed: int
    running: int


@dataclass(frozen=True)
class RunStatus:
    """Where a run is: the execution's status, every stage, the outputs once it succeeded, and the parameter values
    its input gave (``sf.param``).

    ``seconds`` is the run's measured time once it ended. ``timings`` and ``estimated_seconds`` are there when the
    pipeline is known (:func:`with_estimates`): per stage of the Plan, its measured seconds (from its first state's
    start to its last state's end; None where the target does not tell) beside the chunk model's estimate.
    """

    execution: str  # a Step Functions execution ARN, a Workflows execution name
    run_id: str
    status: str  # RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED (Step Functions' words; targets map theirs)
    stages: tuple[StageStatus, ...]
    outputs: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    cause: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    timings: dict[str, dict[str, float | None]] = field(default_factory=dict)
    estimated_seconds: float | None = None

    @property
    def finished(self) -> bool:
        return self.status != "RUNNING"

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def failed_stages(self) -> list[StageStatus]:
        return [stage for stage in self.stages if stage.state == FAILED]


def with_estimates(run: RunStatus, estimated: Seconds) -> RunStatus:
    """``run`` with every stage's measured seconds beside the model's (the numbers ``sparkflow plan`` shows), and the
    run's; a stage's states (``counts-split``, ``counts-map``, ...) count towards it."""
    from dataclasses import replace

    from sparkflow.estimate import add_estimates

    spans: dict[str, list[StageStatus]] = {task.id: [] for task in estimated.plan.tasks}
    for stage in run.stages:
        owner = estimated.stage_of(stage.name)
        if owner is not None:
            spans[owner].append(stage)
    timings: dict[str, dict[str, float | None]] = {name: {"seconds": _span(found)} for name, found in spans.items()}
    total = add_estimates(timings, estimated)
    return replace(run, timings=timings, estimated_seconds=total)


def _span(states: list[StageStatus]) -> float | None:
    """From the first state's start to the last one's end, once every state that started has ended."""
    started = [state.started_at for state in states if state.started_at is not None]
    ended = [state.ended_at for state in states if state.ended_at is not None]
    if not started or any(state.state == RUNNING for state in states) or len(ended) < len(started):
        return None
    return round(max(ended) - min(started), 3)


_STYLES = {PENDING: "dim", RUNNING: "yellow", DONE: "green", FAILED: "bold red", STOPPED: "magenta", SKIPPED: "dim"}


def status_table(run: RunStatus) -> Any:
    """A rich Table of the run: one row per stage (state, runs finished / started, seconds), short enough for 80
    columns (a failed stage's error and cause, long, are :func:`summary_lines`, printed whole below it); with
    estimates, a second one of each stage's measured and estimated seconds."""
    from rich.console import Group
    from rich.table import Table

    given = ", ".join(f"{name}={value!r}" for name, value in run.params.items())
    title = f"run {run.run_id}: {run.status}" + (f" ({given})" if given else "")
    table = Table(title=title, title_justify="left")
    table.add_column("stage")
    table.add_column("state")
    table.add_column("runs", justify="right")
    table.add_column("seconds", justify="right")
    for stage in run.stages:
        runs = f"{stage.finished}/{stage.started}" if stage.started else ""
        if stage.chunks is not None:
            chunks = stage.chunks
            runs = f"{chunks.succeeded}/{chunks.total} chunks" + (f", {chunks.failed} failed" if chunks.failed else "")
        state = f"[{_STYLES[stage.state]}]{stage.state}[/]"
        table.add_row(stage.name, state, runs, _seconds(stage.seconds), end_section=False)
    if not run.timings:
        return table
    times = Table(title="seconds", title_justify="left")
    times.add_column("stage")
    times.add_column("measured", justify="right")
    times.add_column("estimated", justify="right")
    for name, timing in run.timings.items():
        times.add_row(name, _seconds(timing["seconds"]), _seconds(timing["estimated_seconds"]))
    times.add_section()
    times.add_row("run", _seconds(run.seconds), _seconds(run.estimated_seconds))
    return Group(table, times)


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def summary_lines(run: RunStatus) -> list[str]:
    """What to print once a run ended: its outputs, or the failed stage(s) with error and cause."""
    if run.succeeded:
        return [f"output {sink}: {location}" for sink, location in run.outputs.items()]
    failed = run.failed_stages()
    if not failed:
        return [f"run {run.run_id} {run.status.lower()}: {run.error}: {run.cause}"]
    return [f"stage {stage.name} failed: {stage.error}: {stage.cause}" for stage in failed]


def resume_refusal(run_id: str, status: str, execution: str, status_command: str, stop: str) -> str | None:
    """Why the run ``run_id``, whose latest execution ``execution`` is in ``status``, cannot be resumed (None: it
    can): it is still running (``status_command`` follows it, ``stop`` names how to end it) or it succeeded."""
    if status == "RUNNING":
        return (
            f"--resume {run_id}: run {run_id} is still running ({execution}); wait for it to end "
            f"(`{status_command}`) or {stop} it, then resume it"
        )
    if status == "SUCCEEDED":
        return (
            f"--resume {run_id}: run {run_id} already succeeded ({execution}); there is nothing to resume: start a "
            "new run without --resume"
        )
    return None


def run_input(sources: Mapping[str, str], params: Mapping[str, Any] | None = None, keep_work: bool = False) -> str:
    """A run's input: where it reads each source (name -> location; the declared location for the others), its
    parameter values (``{"params": {...}}``, which every task's event carries; the Plan's defaults for the others)
    and, with ``keep_work``, ``{"keep_work": true}``: the publish task then keeps the run's working files."""
    from sparkflow.params import INPUT_FIELD
    from sparkflow.runtime.protocol import KEEP_WORK_FIELD

    document: dict[str, Any] = {"sources": dict(sorted(sources.items()))}
    if params:
        document[INPUT_FIELD] = dict(params)
    if keep_work:
        document[KEEP_WORK_FIELD] = True
    return json.dumps(document)


def follow_run(
    read: Callable[[], RunStatus],
    *,
    error: type[Exception],
    progress: Callable[[], Any] | None = None,
    on_update: Callable[[RunStatus], None] | None,
    interval_s: float,
    longest_interval_s: float,
    timeout_s: float | None,
) -> RunStatus:
    """Read a run's status until it ends, calling ``on_update`` with every reading; return the last one.

    The pause between readings starts at ``interval_s`` and grows by half up to ``longest_interval_s`` while
    ``progress()`` (what a reading found new, e.g. the last history event; by default the status read) stays the
    same, so a stage running for minutes is not read every second; it starts again when something happens.

    Raises:
        error: the run is still running after ``timeout_s``.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    pause, before = interval_s, None
    while True:
        current = read()
        if on_update is not None:
            on_update(current)
        if current.finished:
            return current
        if deadline is not None and time.monotonic() > deadline:
            raise error(f"run {current.run_id} is still running after {timeout_s} s: check it with `sparkflow status`")
        now = current if progress is None else progress()
        pause = interval_s if now != before else min(pause * 1.5, longest_interval_s)
        before = now
        time.sleep(pause)
