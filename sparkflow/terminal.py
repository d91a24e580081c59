"""Human output that fits the terminal: its width, lines wrapped to it, and paths shown from the working folder.

Tables hold short values; long ones (errors, locations) go below them in full, wrapped at word boundaries to the
terminal's width (80 columns when it cannot be told, as when piped; ``COLUMNS`` overrides), never cut.
"""

from __future__ import annotations

import os
import sys
import textwrap
from typing import TextIO


def width() -> int:
    """The width of standard output's terminal, as rich measures it: ``COLUMNS``, else the terminal's, else 80."""
    from rich.console import Console

    return Console().width


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: standard output) is a terminal, which a person reads, rather than a pipe or a
    file, which a program may read line by line."""
    return (stream or sys.stdout).isatty()


def for_person(text: str, stream: TextIO | None = None) -> str:
    """``text`` (an ``error:`` or ``warning:`` line, a log record) as it is written to ``stream``: in a terminal,
    paths from the working folder and wrapped to its width; to a pipe or a file, as it is, one line for grep."""
    return wrapped(shown_paths(text)) if is_terminal(stream) else text


def shown_path(location: str) -> str:
    """``location`` as a person reads it here: a local path under the working folder relative to it (keeping a
    trailing slash); URIs and paths elsewhere as they are."""
    if "://" in location or not os.path.isabs(location):
        return location
    here = os.getcwd()
    if os.path.commonpath([here, os.path.abspath(location)]) != here:
        return location
    relative = os.path.relpath(location, here)
    return relative + os.sep if location.endswith(os.sep) and relative != "." else relative


def shown_paths(text: str) -> str:
    """``text`` (an error, a traceback) with the working folder's prefix taken off the paths it names."""
    return text.replace(os.getcwd() + os.sep, "")


def wrapped(text: str, columns: int | None = None) -> str:
    """``text`` with each line longer than ``columns`` (default: :func:`width`) broken at spaces, its continuation
    lines indented two more than the line's own indentation. Words longer than a line (a long path) stay whole."""
    limit = columns or width()
    lines: list[str] = []
    for line in text.splitlines():
        if len(line) <= limit:
            lines.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        lines.extend(
            textwrap.wrap(
                line,
                limit,
                subsequent_indent=indent + "  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [line]
        )
    return "\n".join(lines)
