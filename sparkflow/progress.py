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
    """One row per stage, with short values only, so that it fits 80 columns; where each stage's output is, and a
    failure, are :func:`node_lines` below it. The rejected column is there when a source counts bad records."""
    given = ", ".join(f"{name}={value!r}" for name, value in summary.params.items())
    title = f"run {summary.run_id} of {summary.pipeline}: {summary.status} in {summary.seconds:.1f} s"
    title += f" ({given})" if given else ""
    # As wide as its title (the console's width at most), so that the title is not folded over a narrow table.
    table = Table(title=title, title_justify="left", min_width=len(title))
    rejected = any(node.rejected is not None for node in summary.nodes.values())
    columns = ["stage", "status", "chunks", "rows", *(["rejected"] if rejected else []), "bytes", "seconds"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("stage", "status") else "right")
    for node in summary.nodes.values():
        cells = {
            "stage": _stage(node),
            "status": f"[{_STYLE.get(node.status, 'white')}]{node.status}[/]",
            "chunks": _chunks(node),
            "rows": _number(node.rows),
            "rejected": _number(node.rejected),
            "bytes": _number(node.bytes),
            "seconds": "" if node.seconds is None else f"{node.seconds:.2f}",
        }
        table.add_row(*(cells[column] for column in columns))
    return table


def node_lines(summary: RunSummary) -> list[str]:
    """What goes below the table, one line per stage with something to say, in full: where its output is (paths
    from the working folder), its value, where its rejected records are, or where it failed."""
    from sparkflow.terminal import shown_path

    lines = []
    for node in summary.nodes.values():
        if node.error:  # its last line (as Python ends a traceback); the whole of it is printed after these lines
            last = [line for line in node.error.splitlines() if line.strip()][-1].strip()
            lines.append(f"{_stage(node)}: {last}" + (f" ({shown_path(node.where)})" if node.where else ""))
            continue
        if node.value is not None:
            lines.append(f"{_stage(node)}: {_short(node.value)} ({shown_path(node.output or '')})")
        elif node.output and node.node not in summary.outputs:  # the pipeline's outputs follow as `output` lines
            lines.append(f"{_stage(node)}: {shown_path(node.output)}")
        if node.rejects:
            lines.append(f"{_stage(node)}: rejected records in {shown_path(node.rejects)}")
    return lines


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


def _stage(node: NodeSummary) -> str:
    return " + ".join([*node.fused, node.node])  # fused stages ran inside this one's map tasks


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
