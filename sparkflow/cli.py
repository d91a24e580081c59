"""The ``sparkflow`` command: a thin layer over pure functions (compile_pipeline, to_mermaid, run)."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from sparkflow.errors import SparkflowError

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print a SparkflowError once, plainly, and exit 2 (no traceback: the message says what to fix)."""
    try:
        yield
    except SparkflowError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """sparkflow: compile PySpark pipelines to AWS Step Functions or GCP Workflows, or run them here."""


@main.command()
@click.argument("pipelines", nargs=-1, required=True, metavar="PIPELINE...")
@click.option("--target", "-t", default="aws", show_default=True, help="Where the pipeline will run.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the definitions (default: see README).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff if a definition is stale or missing.")
def compile(pipelines: tuple[str, ...], target: str, out: str | None, check: bool) -> None:
    """Compile PIPELINE (a file, a module, or module:attribute) into a state machine definition.

    A file with several pipelines compiles each of them, one definition file per pipeline.
    """
    from sparkflow.compiler import compile_pipeline
    from sparkflow.loading import load_pipelines
    from sparkflow.outputs import default_out_dir, definition_path
    from sparkflow.targets import get_target

    stale = 0
    with _user_errors():
        suffix = get_target(target).suffix
        for spec in pipelines:
            for pipeline in load_pipelines(spec):
                text = compile_pipeline(pipeline, target)
                folder = out or default_out_dir(pipeline.origin.file)
                path = definition_path(folder, pipeline.name, suffix)
                shown = os.path.relpath(path)
                if check:
                    stale += _report_stale(path, shown, text)
                    continue
                os.makedirs(folder, exist_ok=True)
                with open(path, "w", encoding="utf-8", newline="\n") as handle:
                    handle.write(text)
                click.echo(f"wrote {shown}")
    if stale:
        click.echo(f"{stale} definition(s) out of date: run `sparkflow compile` without --check", err=True)
        sys.exit(1)


def _report_stale(path: str, shown: str, text: str) -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            current = handle.read()
    except FileNotFoundError:
        click.echo(f"{shown}: missing")
        return 1
    if current == text:
        click.echo(f"{shown}: up to date")
        return 0
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        text.splitlines(keepends=True),
        f"{shown} (checked in)",
        f"{shown} (compiled)",
    )
    click.echo("".join(diff), nl=False)
    return 1


@main.command()
@click.argument("pipeline", metavar="PIPELINE")
@click.option("--target", "-t", default="aws", show_default=True, help="Compile for this target's limits.")
def graph(pipeline: str, target: str) -> None:
    """Print the DAG of PIPELINE as Mermaid flowchart text."""
    from sparkflow.compiler import plan_pipeline
    from sparkflow.loading import load_pipelines
    from sparkflow.mermaid import to_mermaid

    with _user_errors():
        for item in load_pipelines(pipeline):
            click.echo(to_mermaid(plan_pipeline(item, target)), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
