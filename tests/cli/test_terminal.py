"""Human output in 80 columns: long lines wrapped at spaces (a path never cut), paths from the working folder, and
``error:``/``warning:`` lines wrapped only for a person at a terminal (a pipe gets one line, for grep)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.terminal import for_person, shown_path, shown_paths, wrapped


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_line_is_wrapped_at_spaces_with_its_indentation_and_a_long_word_stays_whole() -> None:
    path = "/a/" + "very-long-folder-name/" * 5
    text = f"  error: the input {path} holds no rows: give a folder with data files"
    lines = wrapped(text, 40).splitlines()
    assert lines[0] == "  error: the input"
    assert lines[1] == f"    {path}"  # longer than 40: whole, on its own line
    assert all(len(line) <= 40 for line in lines if path not in line)
    assert " ".join(wrapped(text, 40).split()) == " ".join(text.split())
    assert wrapped("short\n\nlines", 40) == "short\n\nlines"


def test_paths_are_shown_from_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert shown_path(f"{tmp_path}/runs/top/") == "runs/top/"
    assert shown_path(f"{tmp_path}/runs/top") == "runs/top"
    assert shown_path("/elsewhere/top/") == "/elsewhere/top/"
    assert shown_path("s3://bucket/top/") == "s3://bucket/top/"
    assert shown_paths(f'File "{tmp_path}/pipeline.py", line 3') == 'File "pipeline.py", line 3'


def test_an_error_line_is_wrapped_for_a_terminal_and_whole_for_a_pipe(tmp_path: Path) -> None:
    line = "error: " + "word " * 30
    assert for_person(line, io.StringIO()) == line
    shown = for_person(line, Terminal()).splitlines()
    assert len(shown) > 1 and all(len(part) <= 80 for part in shown)


def test_a_user_error_in_an_80_column_terminal_fits_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("", encoding="utf-8")
    monkeypatch.setattr("sparkflow.terminal.is_terminal", lambda stream=None: True)
    done = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["init", str(tmp_path / "taken")])
    assert done.exit_code == 2
    assert [line for line in done.stderr.splitlines() if len(line) > 80 and str(tmp_path) not in line] == []
    assert "Give it a new folder, e.g. `sparkflow init my-pipeline`" in " ".join(done.stderr.split())
