"""Where a ``sparkflow run`` spent its time, phase by phase, from the run's own ``_logs.jsonl``.

Every task the runtime runs writes a ``stage start`` and a ``stage end`` line (node, phase, chunk, seconds, rows);
the run writes ``run start`` / ``run end``. Per node and phase this gives the number of tasks, the wall time from the
first task's start to the last one's end, the tasks' own seconds summed (above the wall time when tasks ran side by
side), and the rows they wrote. What the run took beyond its phases (between them, and before the first: the
process start, loading the pipeline, planning) is shown as ``between phases``.

    .venv/bin/python bench/phases.py STORAGE_ROOT [PIPELINE]    # the newest run under STORAGE_ROOT/PIPELINE
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Phase:
    """One phase of one node: its tasks' spans and seconds."""

    node: str
    phase: str
    tasks: int = 0
    first_start: float = float("inf")
    last_end: float = 0.0
    task_seconds: float = 0.0
    rows: int = 0

    @property
    def wall(self) -> float:
        return max(0.0, self.last_end - self.first_start)


def newest_run(storage_root: Path, pipeline: str | None = None) -> Path:
    """The newest run folder (one holding ``_logs.jsonl``) under ``storage_root`` (and ``pipeline``)."""
    runs = sorted(storage_root.glob(f"{pipeline or '*'}/*/_logs.jsonl"), key=lambda path: path.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no run under {storage_root}: expected <pipeline>/<run>/_logs.jsonl")
    return runs[-1].parent


def phases(run: Path) -> tuple[list[Phase], float]:
    """The run's phases in the order they started, and the run's own seconds (run start to run end)."""
    records = [json.loads(line) for line in (run / "_logs.jsonl").read_text().splitlines() if line.strip()]
    found: dict[tuple[str, str], Phase] = {}
    starts: dict[str, float] = {}
    run_start = run_end = None
    for record in records:
        message = record.get("message", "")
        if message == "run start":
            run_start = record["time"]
        elif message == "run end":
            run_end = record["time"]
        node, phase = record.get("node"), record.get("phase") or "run"
        if node is None or not message.endswith((" start", " end")):
            continue
        key = (node, phase)
        item = found.setdefault(key, Phase(node, phase))
        if message.endswith(" start"):
            starts[record.get("attempt", "")] = record["time"]
            item.first_start = min(item.first_start, record["time"])
        else:
            item.tasks += 1
            item.last_end = max(item.last_end, record["time"])
            item.task_seconds += float(record.get("seconds") or 0.0)
            item.rows += int(record.get("rows") or 0)
            if item.first_start == float("inf"):
                item.first_start = starts.get(record.get("attempt", ""), record["time"])
    ordered = sorted(found.values(), key=lambda item: item.first_start)
    total = (run_end - run_start) if run_start is not None and run_end is not None else 0.0
    return ordered, total


def markdown(run: Path, process_seconds: float | None = None) -> str:
    """The phases of ``run`` as a Markdown table; ``process_seconds`` is the whole process's time, when known."""
    ordered, total = phases(run)
    lines = [
        "| node | phase | tasks | wall | tasks' seconds | rows written |",
        "|---|---|---|---|---|---|",
    ]
    for item in ordered:
        lines.append(
            f"| {item.node} | {item.phase} | {item.tasks} | {item.wall:,.1f} s | {item.task_seconds:,.1f} s | "
            f"{item.rows:,} |"
        )
    covered = _union([(item.first_start, item.last_end) for item in ordered])
    lines.append(f"| (run) | between phases | | {max(0.0, total - covered):,.1f} s | | |")
    if process_seconds is not None:
        lines.append(f"| (process) | start-up, planning, exit | | {max(0.0, process_seconds - total):,.1f} s | | |")
    return "\n".join(lines)


def _union(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one of ``spans``."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end <= reach:
            continue
        covered += end - max(start, reach)
        reach = end
    return covered


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    run = newest_run(Path(argv[0]), argv[1] if len(argv) > 1 else None)
    print(f"run {run}\n")
    print(markdown(run))


if __name__ == "__main__":
    main(sys.argv[1:])
