"""What `sparkflow run` shows: live progress while a run goes, and a table per stage at the end (rich)."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.table import Table

from sparkflow.runtime.local import NodeSummary, RunSummary

_STYLE = {"committed": "green", "already-committed": "cyan", "failed": "red", "running": "yellow"}


class Progress:
    """Prints one line whenever a node starts or ends (works in terminals, CI logs and pipes alike)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.lock = threading.Lock()

    def __call__(self, summary: RunSummary, node: NodeSummary) -> None:
        with self.lock:
            done = sum(1 for n in summary.nodes.values() if n.status in ("committed", "already-committed"))
            total = len(summary.nodes)
            style = _STYLE.get(node.status, "white")
            extra = f" in {node.seconds:.1f} s" if node.seconds is not None and node.status != "running" else ""
            if node.chunks is not None and node.status == "running":
                items = node.chunks + (node.buckets or 0)
                extra = f" ({node.done}/{items} chunk tasks)"
            self.console.print(f"[{done}/{total}] {node.node}: [{style}]{node.status}[/{style}]{extra}")


def summary_table(summary: RunSummary) -> Table:
    given = ", ".join(f"{name}={value!r}" for name, value in summary.params.items())
    title = f"run {summary.run_id} of {summary.pipeline}: {summary.status} in {summary.seconds:.1f} s"
    table = Table(title=title + (f" ({given})" if given else ""))
    for column in ("stage", "status", "chunks", "rows", "rejected", "bytes", "seconds", "output"):
        numeric = column in ("chunks", "rows", "rejected", "bytes", "seconds")
        table.add_column(column, justify="right" if numeric else "left")
    for node in summary.nodes.values():
        table.add_row(
            " + ".join([*node.fused, node.node]),  # fused stages ran inside this one's map tasks
            f"[{_STYLE.get(node.status, 'white')}]{node.status}[/]",
            _chunks(node),
            _number(node.rows),
            _number(node.rejected),
            _number(node.bytes),
            "" if node.seconds is None else f"{node.seconds:.2f}",
            _output(node),
        )
    return table


def rows_table(table: Any) -> Table:
    """The rows of a pyarrow Table as a terminal table (``sparkflow show``)."""
    shown = Table()
    for name in table.column_names:
        shown.add_column(name)
    for row in table.to_pylist():
        shown.add_row(*("" if value is None else str(value) for value in row.values()))
    return shown


def _chunks(node: NodeSummary) -> str:
    if node.chunks is None:
        return ""
    return f"{node.chunks} x {node.buckets}" if node.buckets else str(node.chunks)


def _number(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _output(node: NodeSummary) -> str:
    if node.error:  # its last line (as Python ends a traceback: "ValueError: boom"); the whole of it is printed below
        last = [line for line in node.error.splitlines() if line.strip()][-1].strip()
        shown = last if len(last) <= 100 else last[:97] + "..."
        return f"{shown} ({node.where})" if node.where else shown
    shown = f"{_short(node.value)} ({node.output})" if node.value is not None else node.output or ""
    return f"{shown}; rejected records in {node.rejects}" if node.rejects else shown


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
