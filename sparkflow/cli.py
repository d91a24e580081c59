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


def _parse_inputs(values: tuple[str, ...]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values:
        name, separator, location = value.partition("=")
        if not separator or not name or not location:
            raise click.BadParameter(
                f"{value!r}: write NAME=PATH, e.g. --input books=data/books/", param_hint="--input"
            )
        parsed[name] = location
    return parsed


@main.command()
@click.argument("pipeline", metavar="PIPELINE")
@click.option("--input", "inputs", multiple=True, metavar="NAME=PATH", help="Read source NAME from PATH instead.")
@click.option("--storage", default=".sparkflow", show_default=True, help="Folder the run writes under.")
@click.option("--run-id", help="The run's id (default: a new one).")
@click.option("--resume", is_flag=True, help="Continue run --run-id: skip nodes already committed.")
@click.option("--workers", type=click.IntRange(min=1), help="Nodes run at once (default: the number of cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout instead of a table.")
def run(
    pipeline: str,
    inputs: tuple[str, ...],
    storage: str,
    run_id: str | None,
    resume: bool,
    workers: int | None,
    as_json: bool,
) -> None:
    """Run PIPELINE here, with Spark in local mode and a local folder as storage.

    Exits 0 when the run succeeded, 1 when a stage failed.
    """
    import json

    from rich.console import Console

    from sparkflow.compiler import plan_pipeline
    from sparkflow.loading import load_pipeline
    from sparkflow.progress import Progress, summary_table
    from sparkflow.runtime.local import run_plan
    from sparkflow.targets.local import LOCAL

    console = Console(stderr=True)
    with _user_errors():
        if resume and not run_id:
            raise click.UsageError("--resume needs the --run-id of the run to continue")
        chosen = load_pipeline(pipeline)
        plan = plan_pipeline(chosen, LOCAL)
        summary = run_plan(
            plan,
            chosen,
            storage_root=storage,
            run_id=run_id,
            inputs=_parse_inputs(inputs),
            resume=resume,
            workers=workers,
            on_update=None if as_json else Progress(console),
        )
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    else:
        Console().print(summary_table(summary))
        for sink, location in summary.outputs.items():
            click.echo(f"output {sink}: {location}")
    if summary.status != "succeeded":
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
