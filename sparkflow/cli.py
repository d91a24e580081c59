"""The ``sparkflow`` command: a thin layer over pure functions (compile_pipeline, to_mermaid, run)."""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from sparkflow import engines
from sparkflow.errors import SparkflowError
from sparkflow.layout import WORK_EXPIRY_DAYS

if TYPE_CHECKING:  # the commands import the estimate module when they run, keeping the CLI quick to start
    from sparkflow.estimate import Seconds

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print a SparkflowError once, plainly, and exit 2 (no traceback: the message says what to fix)."""
    try:
        yield
    except SparkflowError as error:
        from sparkflow.terminal import for_person

        click.echo(for_person(f"error: {error}", sys.stderr), err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sparkflow", message="sparkflow %(version)s")
def main() -> None:
    """sparkflow: compile PySpark pipelines to AWS Step Functions or GCP Workflows, or run them here."""


def _target_option(help: str) -> Callable[[F], F]:
    """``--target``: the registry's targets, listed in the help, in any case (``AWS`` is ``aws``); an unknown one
    gets the nearest name suggested."""
    from sparkflow.targets import target_names

    def chosen(context: click.Context, parameter: click.Parameter, value: str) -> str:
        from sparkflow.targets import get_target

        name = value.lower()
        try:
            get_target(name)
        except SparkflowError as error:
            raise click.BadParameter(error.message) from None
        return name

    return click.option(
        "--target",
        "-t",
        default="aws",
        show_default=True,
        metavar=f"[{'|'.join(target_names())}]",
        callback=chosen,
        help=help,
    )


def _aws_options(command: F) -> F:
    """``--region`` and ``--profile`` of the AWS commands (defaults: what boto3 finds)."""
    command = click.option("--profile", help="aws: the AWS profile to use (default: AWS_PROFILE or the default).")(
        command
    )
    return click.option("--region", help="The region (aws: default AWS_REGION or the profile's; gcp: the location).")(
        command
    )


def _zip_options(command: F) -> F:
    """``--python`` and ``--wheelhouse`` of the commands that build the duckdb engine's Lambda zip."""
    command = click.option(
        "--wheelhouse",
        type=click.Path(file_okay=False),
        help="--engine duckdb: take the dependencies from wheels built for that Lambda runtime in this folder.",
    )(command)
    return click.option(
        "--python", "python_version", help="--engine duckdb: the Lambda Python, 3.11-3.13 (default: this one's)."
    )(command)


@main.command()
@click.argument("folder", default=".", metavar="[FOLDER]")
def init(folder: str) -> None:
    """Start a new project in FOLDER (default: this folder) that works at once.

    \b
    It writes:
      pipeline.py             a small pipeline (revenue per country)
      data/orders.csv         its sample input, read by local runs
      tests/test_pipeline.py  runs it on the sample; verify; compile --check
      definitions/            the compiled AWS and GCP definitions
      .github/workflows/sparkflow.yml
                              CI: definitions current, verify, pytest
      pyproject.toml          pins this sparkflow; out = "definitions"
      .gitignore, README.md   what to change first

    FOLDER must be new or empty (a .git folder alone is fine): nothing is overwritten, and nothing is written
    when something fails. Then: cd FOLDER && sparkflow run pipeline.py
    """
    from sparkflow.starter import write_project

    with _user_errors():
        written = write_project(folder)
    where = os.path.relpath(folder)
    for path in written:
        click.echo(f"wrote {os.path.join(where, path) if where != '.' else path}")
    enter = f"cd {where} && " if where != "." else ""
    click.echo(f"next: {enter}sparkflow run pipeline.py  (then read README.md)")


@main.command()
@click.argument("pipelines", nargs=-1, required=True, metavar="PIPELINE...")
@_target_option("Where the pipeline will run.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Folder for the definitions (default: beside the pipeline file, or [tool.sparkflow] out).",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff if a definition is stale or missing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written or checked as JSON.")
@click.option(
    "--plan",
    "with_plan",
    is_flag=True,
    help="Also write each Plan beside its definition (<name>.<target>.plan.json), for functions deployed "
    "without `sparkflow package` (their SPARKFLOW_PLAN).",
)
def compile(
    pipelines: tuple[str, ...], target: str, out: str | None, check: bool, as_json: bool, with_plan: bool
) -> None:
    """Compile PIPELINE (a file, a module, or module:attribute) into a state machine definition.

    A file with several pipelines compiles each of them, one definition file per pipeline.
    """
    from sparkflow.compiler import definition_text, plan_pipeline
    from sparkflow.loading import load_pipelines
    from sparkflow.outputs import default_out_dir, definition_path
    from sparkflow.targets import get_target

    stale = 0
    report: list[dict[str, str]] = []
    with _user_errors():
        suffix = get_target(target).suffix
        for spec in pipelines:
            for pipeline in load_pipelines(spec):
                plan = plan_pipeline(pipeline, target)
                text = definition_text(plan, target)
                folder = out or default_out_dir(pipeline.origin.file)
                path = definition_path(folder, pipeline.name, suffix)
                shown = os.path.relpath(path)
                if check:
                    outdated = _report_stale(path, shown, text, quiet=as_json)
                    stale += outdated
                    state = "up to date" if not outdated else "missing" if not os.path.exists(path) else "stale"
                    report.append({"pipeline": pipeline.name, "target": target, "path": shown, "status": state})
                    continue
                os.makedirs(folder, exist_ok=True)
                written = {path: text}
                if with_plan:
                    written[definition_path(folder, pipeline.name, f".{target}.plan.json")] = plan.to_json()
                for location, content in written.items():
                    with open(location, "w", encoding="utf-8", newline="\n") as handle:
                        handle.write(content)
                    shown = os.path.relpath(location)
                    report.append({"pipeline": pipeline.name, "target": target, "path": shown, "status": "written"})
                    if not as_json:
                        click.echo(f"wrote {shown}")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    if stale:
        click.echo(f"{stale} definition(s) out of date: run `sparkflow compile` without --check", err=True)
        sys.exit(1)


def _report_stale(path: str, shown: str, text: str, quiet: bool = False) -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            current = handle.read()
    except FileNotFoundError:
        if not quiet:
            click.echo(f"{shown}: missing")
        return 1
    if current == text:
        if not quiet:
            click.echo(f"{shown}: up to date")
        return 0
    if quiet:
        return 1
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
@_target_option("Plan for this target (where stages are placed, which are split).")
@click.option(
    "--format",
    "form",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Mermaid flowchart text, or Graphviz DOT (`... --format dot | dot -Tsvg > graph.svg`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the nodes and edges as JSON instead.")
def graph(pipeline: str, target: str, form: str, as_json: bool) -> None:
    """Print the DAG of PIPELINE: every source and stage (fused stages inside their host), every edge, and how
    each stage runs (whole or split, where, with how much memory, on which engine)."""
    from sparkflow.compiler import plan_pipeline
    from sparkflow.diagram import FORMATS
    from sparkflow.loading import load_pipelines

    with _user_errors():
        for item in load_pipelines(pipeline):
            click.echo(FORMATS["json" if as_json else form](plan_pipeline(item, target)), nl=False)


@main.command("plan")
@click.argument("pipelines", nargs=-1, required=True, metavar="PIPELINE...")
@_target_option("Estimate a run on this target.")
@click.option("--input", "inputs", multiple=True, metavar="NAME=SIZE", help="Source NAME holds SIZE, e.g. books=10GiB.")
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON (sorted keys, no timestamps).")
@click.option("--write", is_flag=True, help="Write <name>.plan-<target>.json beside the definitions instead.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff if a written estimate is stale.")
@click.option(
    "--wide",
    is_flag=True,
    help="Show every column (memory, timeout, input, chunks, buckets, orchestration steps), however wide.",
)
def plan_command(
    pipelines: tuple[str, ...],
    target: str,
    inputs: tuple[str, ...],
    as_json: bool,
    write: bool,
    check: bool,
    wide: bool,
) -> None:
    """Estimate a run of PIPELINE before running it: per stage where it runs, its memory, timeout, chunks, buckets,
    tasks, orchestration steps, seconds (the chunk model) and cost at list prices, with totals.

    The table shows stage, runs on, tasks, seconds and cost, to fit 80 columns; --wide adds the other columns, and
    --json has every figure. Warnings and assumptions follow the table."""
    from rich.console import Console

    from sparkflow.compiler import plan_pipeline
    from sparkflow.estimate import estimate_plan
    from sparkflow.estimate.report import notes, table, to_json
    from sparkflow.estimate.sizes import parse_input_sizes
    from sparkflow.loading import load_pipelines
    from sparkflow.outputs import default_out_dir, definition_path
    from sparkflow.terminal import wrapped

    stale = 0
    with _user_errors():
        for spec in pipelines:
            for pipeline in load_pipelines(spec):
                compiled = plan_pipeline(pipeline, target)
                pairs = _parse_pairs(inputs, "--input", "NAME=SIZE, e.g. --input books=10GiB")
                given = parse_input_sizes(pairs, compiled)
                estimate = estimate_plan(compiled, pipeline, target, given)
                path = definition_path(default_out_dir(pipeline.origin.file), pipeline.name, f".plan-{target}.json")
                if check:
                    stale += _report_stale(path, os.path.relpath(path), to_json(estimate))
                elif write:
                    with open(path, "w", encoding="utf-8", newline="\n") as handle:
                        handle.write(to_json(estimate))
                    click.echo(f"wrote {os.path.relpath(path)}")
                elif as_json:
                    click.echo(to_json(estimate), nl=False)
                else:
                    shown = table(estimate, wide=wide)
                    console = Console()
                    if wide:  # as wide as its eleven columns need, whatever the terminal's width
                        needed = Console(width=10_000).measure(shown).maximum
                        console = Console(width=max(console.width, needed))
                    console.print(shown)
                    for line in notes(estimate):
                        click.echo(wrapped(line))
    if stale:
        click.echo(f"{stale} estimate(s) out of date: run `sparkflow plan --write`", err=True)
        sys.exit(1)


def _parse_inputs(values: tuple[str, ...]) -> dict[str, str]:
    return _parse_pairs(values, "--input", "NAME=PATH, e.g. --input books=data/books/")


def _parse_pairs(values: tuple[str, ...], option: str, form: str = "NAME=VALUE") -> dict[str, str]:
    parsed: dict[str, str] = {}
    for value in values:
        name, separator, location = value.partition("=")
        if not separator or not name or not location:
            raise click.BadParameter(f"{value!r}: write {form}", param_hint=option)
        parsed[name] = location
    return parsed


def _work_expiry_option(where: str) -> Callable[[F], F]:
    """``--work-expiry-days``: after how many days the storage's lifecycle rule deletes what failed runs left under
    ``<storage root>/_work/`` (a run that publishes deletes its own at once)."""
    return click.option(
        "--work-expiry-days",
        type=click.IntRange(min=0),
        default=WORK_EXPIRY_DAYS,
        show_default=True,
        help=f"{where}: working files failed runs left under <storage root>/_work/ are deleted after this many "
        "days (resume a failed run before; 0: no rule).",
    )


def _param_option(command: F) -> F:
    """``--param NAME=VALUE``: a value of the pipeline's parameter NAME (``sf.param``) for this run."""
    return click.option(
        "--param",
        "params",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set parameter NAME (sf.param) for this run, converted to its declared type; others take their default.",
    )(command)


@main.command()
@click.argument("pipeline", metavar="PIPELINE")
@click.option("--input", "inputs", multiple=True, metavar="NAME=PATH", help="Read source NAME from PATH instead.")
@click.option("--storage", default=".sparkflow", show_default=True, help="Folder the run writes under.")
@click.option("--run-id", help="The run's id (default: a new one).")
@click.option("--resume", is_flag=True, help="Continue run --run-id: skip nodes already committed.")
@click.option("--workers", type=click.IntRange(min=1), help="Nodes run at once (default: the number of cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout instead of a table.")
@click.option(
    "--engine",
    type=click.Choice(engines.NAMES),
    help="Run every stage on this engine instead of the one it declares (sail: PySpark on Sail, no JVM; duckdb: "
    "sqlframe on DuckDB).",
)
@click.option("--chunk-size", help="Input per chunk for every split stage, e.g. 64MB (default: from each stage).")
@click.option("--sink", "sinks", multiple=True, metavar="NAME=URI", help="Publish sink NAME to URI instead.")
@click.option(
    "--record-shrink",
    is_flag=True,
    help="When the run succeeds, write each stage's bytes out per byte in to <pipeline>.shrink.json beside the "
    "pipeline (commit it: compile and plan size stages with it).",
)
@click.option(
    "--keep-work",
    is_flag=True,
    help="Keep the run's working files (attempts, claims, split manifests, shuffle buckets under "
    "<storage>/_work/<pipeline>/<run>/) for debugging; by default a run deletes them once it has published.",
)
@_param_option
def run(
    pipeline: str,
    inputs: tuple[str, ...],
    storage: str,
    run_id: str | None,
    resume: bool,
    workers: int | None,
    as_json: bool,
    engine: str | None,
    chunk_size: str | None,
    sinks: tuple[str, ...],
    record_shrink: bool,
    keep_work: bool,
    params: tuple[str, ...],
) -> None:
    """Run PIPELINE here, with Spark in local mode and a local folder as storage.

    When every stage has committed, the run publishes its sinks, becomes the pipeline's latest run (what
    `sparkflow show` reads) and deletes its working files (not with --keep-work; a failed run keeps them for
    --resume). Exits 0 when the run succeeded, 1 when a stage or publishing failed.
    """
    from rich.console import Console

    from sparkflow.compiler import plan_pipeline
    from sparkflow.loading import load_pipeline
    from sparkflow.params import from_command_line
    from sparkflow.progress import Progress, node_lines, summary_table
    from sparkflow.runtime.local import run_plan
    from sparkflow.targets.local import LOCAL
    from sparkflow.terminal import for_person, shown_path, shown_paths, wrapped
    from sparkflow.units import parse_size

    console = Console(stderr=True)
    _engine_log(storage)
    with _user_errors():
        if resume and not run_id:
            raise click.UsageError("--resume needs the --run-id of the run to continue")
        chosen = load_pipeline(pipeline)
        plan = plan_pipeline(chosen, LOCAL)
        chunk_bytes = None if chunk_size is None else parse_size(chunk_size, field="--chunk-size")
        estimated = None
        if as_json:
            estimated = _local_estimate(plan, chosen, _parse_inputs(inputs), workers, engine, chunk_bytes)
        summary = run_plan(
            plan,
            chosen,
            storage_root=storage,
            run_id=run_id,
            inputs=_parse_inputs(inputs),
            resume=resume,
            workers=workers,
            on_update=None if as_json else Progress(console),
            engine=engine,
            chunk_bytes=chunk_bytes,
            sinks=_parse_pairs(sinks, "--sink", "NAME=URI, e.g. --sink revenue_table=/tmp/revenue/"),
            params=from_command_line(plan, params),
            keep_work=keep_work,
        )
        if record_shrink and summary.status == "succeeded":
            recorded = _record_shrink(plan, chosen, _parse_inputs(inputs), summary)
            click.echo(f"wrote {os.path.relpath(recorded)}", err=True)
    if as_json:
        click.echo(json.dumps(_with_estimates(summary.to_dict(), estimated), indent=2, default=str))
    else:
        Console().print(summary_table(summary))
        for line in node_lines(summary):
            click.echo(wrapped(line))
        for error in (node.error for node in summary.nodes.values() if node.error):  # whole, never cut
            click.echo(f"\n{wrapped(shown_paths(error))}\n", err=True)
        for node, location in summary.outputs.items():  # wrapped only in a terminal: one line for scripts
            click.echo(for_person(f"output {node}: {shown_path(location)}"))
        for name, published in summary.sinks.items():
            rows = f"{published['rows']:,} rows"
            where = shown_path(published["uri"])
            click.echo(for_person(f"sink {name} ({published['format']}, {published['mode']}): {where} ({rows})"))
        if summary.error:
            click.echo(wrapped(f"error: {shown_paths(summary.error)}"), err=True)
    if summary.status != "succeeded":
        sys.exit(1)


def _record_shrink(plan: Any, chosen: Any, inputs: dict[str, str], summary: Any) -> str:
    """Write what the run measured of each stage's shrink (see :mod:`sparkflow.shrink`); return the file's path."""
    from sparkflow import shrink
    from sparkflow.estimate.sizes import location_size, source_sizes

    given = {name: size for name, location in inputs.items() if (size := location_size(location)) is not None}
    sources = source_sizes(plan, chosen, given, prefer_local=True)
    outputs = {name: node.bytes for name, node in summary.nodes.items()}
    return shrink.record(chosen.origin.file, chosen.name, shrink.from_run(plan, outputs, sources), sources)


def _local_estimate(
    plan: Any, chosen: Any, inputs: dict[str, str], workers: int | None, engine: str | None, chunk_bytes: int | None
) -> Seconds | None:
    """The chunk model's seconds for this run (None when a source cannot be measured: the run reports that)."""
    from sparkflow.estimate import local_estimate

    try:
        return local_estimate(plan, chosen, inputs, workers=workers, engine=engine, chunk_bytes=chunk_bytes)
    except SparkflowError:
        return None


def _with_estimates(document: dict[str, Any], estimated: Seconds | None) -> dict[str, Any]:
    """The run's summary with the chunk model's seconds beside the measured ones, per node and in total."""
    from sparkflow.estimate import add_estimates

    if estimated is not None:
        document["estimated_seconds"] = add_estimates(document["nodes"], estimated)
    return document


@main.command()
@click.argument("source", metavar="PIPELINE|RUN")
@click.argument("name", metavar="NODE")
@click.option("--storage", help="The storage root runs wrote under (default: .sparkflow, as for `sparkflow run`).")
@click.option("--run-id", help="The run (default: the newest run that finished and published).")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Rows to print.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON lines, one object per row.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the rows as CSV with a header row.")
def show(
    source: str, name: str, storage: str | None, run_id: str | None, limit: int, as_json: bool, as_csv: bool
) -> None:
    """Print rows of NODE (a stage's output, or a sink) of PIPELINE's latest run, or of the run folder RUN.

    PIPELINE is a file, a module or module:attribute; RUN is a run's folder (e.g. .sparkflow/wordcount/<run id>,
    or an s3:// or gs:// location).
    """
    from sparkflow.results import locate, read_table

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    with _user_errors():
        found = locate(source, name, storage=storage, run_id=run_id)
        if found.kind == "value":
            click.echo(json.dumps(found.value) if as_json else repr(found.value))
            return
        table = read_table(found, limit)
    if as_json:
        for row in table.to_pylist():
            click.echo(json.dumps(row, default=str, ensure_ascii=False))
    elif as_csv:
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(table.column_names)
        for row in table.to_pylist():
            writer.writerow(["" if value is None else value for value in row.values()])
    else:
        from rich.console import Console

        from sparkflow.progress import rows_table
        from sparkflow.terminal import shown_path, wrapped

        total = f" of {found.rows:,}" if found.rows is not None else ""
        where = f"{found.kind} {name}" + (f" of run {found.run_id}" if found.run_id else "")
        Console().print(rows_table(table))
        click.echo(wrapped(f"{table.num_rows:,}{total} row(s) of {where}: {shown_path(found.uri)}"))


@main.command()
@click.argument("pipeline", metavar="PIPELINE")
@click.option("--input", "inputs", multiple=True, metavar="NAME=PATH", help="Read source NAME (a sample) from PATH.")
@click.option("--engine", type=click.Choice(engines.NAMES), help="Run every stage on this engine instead of its own.")
@click.option(
    "--chunks", type=click.IntRange(min=2), default=4, show_default=True, help="Chunks (and buckets) per split."
)
@click.option(
    "--compare-engines/--no-compare-engines",
    default=True,
    show_default=True,
    help="Also run each stage whose engine is not Spark on Spark, on the same inputs, and compare.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@_param_option
def verify(
    pipeline: str,
    inputs: tuple[str, ...],
    engine: str | None,
    chunks: int,
    compare_engines: bool,
    as_json: bool,
    params: tuple[str, ...],
) -> None:
    """Check PIPELINE's stages on real data: each partitioned stage gives the same rows split as whole, and each
    stage off Spark gives what Spark gives.

    Every stage runs whole on the inputs (a sample), then each stage declared partition="rows" or partition_by=
    runs again on the same inputs cut into several chunks (and buckets): a difference means the declaration is
    wrong. Each stage that runs on sail or duckdb also runs whole on Spark: a difference in rows or column types
    means that engine does not give Spark's answer for it. Run it in CI beside `sparkflow compile --check`, and
    before moving a stage off Spark. Exits 1 when a stage's output changed.
    """
    from sparkflow.compiler import plan_pipeline
    from sparkflow.loading import load_pipelines
    from sparkflow.params import from_command_line
    from sparkflow.targets.local import LOCAL
    from sparkflow.terminal import for_person
    from sparkflow.verify import verify as check

    failed = False
    reports = []
    _engine_log(".sparkflow")
    with _user_errors():
        for item in load_pipelines(pipeline):
            values = from_command_line(plan_pipeline(item, LOCAL), params)
            report = check(
                item,
                inputs=_parse_inputs(inputs),
                engine=engine,
                chunks=chunks,
                params=values,
                compare_engines=compare_engines,
            )
            reports.append(report.to_dict())
            failed = failed or not report.ok
            if as_json:
                continue
            for message in report.messages():
                click.echo(for_person(f"error: {message}", sys.stderr), err=True)
            click.echo(for_person(report.verdict()))
    if as_json:
        click.echo(json.dumps(reports, indent=2))
    if failed:
        sys.exit(1)


def _engine_log(storage: str) -> None:
    """The engine's own log lines (Spark's start-up notices, Java stack traces) go to ``<storage>/_engine.log``, not
    between the command's output on the terminal (unless SPARKFLOW_ENGINE_LOG says where)."""
    from sparkflow.runtime import spark

    if "://" not in storage:
        spark.log_engine_to(os.path.abspath(os.path.join(storage, "_engine.log")))


# ---- shipping: package, deploy, delete, start, status; the same for every target (targets.base.CloudTarget) ----


def _warn_local_sources(chosen: Any, inputs: dict[str, str]) -> None:
    """A deployed function cannot read this machine's files: say so for every local source not given a location."""
    from sparkflow.terminal import for_person

    for source in chosen.trace().sources.values():
        if ("://" in source.uri and not source.uri.startswith("file://")) or source.name in inputs:
            continue
        warning = (
            f"warning: {source.origin}: source {source.name!r} is the local path {source.uri!r}, which deployed "
            f"functions cannot read: pass --input {source.name}=s3://... (or gs://...) here, and the same location "
            f'in each run\'s input ({{"sources": {{"{source.name}": "..."}}}})'
        )
        click.echo(for_person(warning, sys.stderr), err=True)


def _definition_for(chosen: Any, target: str) -> tuple[Any, str]:
    """The Plan and definition of a pipeline; warns when the checked-in definition differs from the compiled one."""
    from sparkflow.compiler import definition_text, plan_pipeline
    from sparkflow.outputs import default_out_dir, definition_path
    from sparkflow.targets import get_target
    from sparkflow.terminal import for_person

    plan = plan_pipeline(chosen, target)
    text = definition_text(plan, target)
    checked_in = definition_path(default_out_dir(chosen.origin.file), chosen.name, get_target(target).suffix)
    if os.path.isfile(checked_in):
        with open(checked_in, encoding="utf-8") as handle:
            if handle.read() != text:
                stale = (
                    f"warning: {os.path.relpath(checked_in)} is out of date; using the compiled definition "
                    "(run `sparkflow compile` and commit it)"
                )
                click.echo(for_person(stale, sys.stderr), err=True)
    return plan, text


@main.command("package")
@click.argument("pipeline", metavar="PIPELINE")
@_target_option("Where the pipeline will run.")
@click.option("--out", type=click.Path(file_okay=False), help="Build context folder (default: build/<target>/<name>).")
@click.option("--input", "inputs", multiple=True, metavar="NAME=URI", help="Let the functions read source NAME at URI.")
@click.option("--storage-root", help="gcp: gs://bucket/prefix/ runs write under (default: the pipeline's storage=).")
@click.option("--image-uri", help="gcp: the image the service and job run (default: IMAGE_URI, to fill in).")
@_work_expiry_option("package prints (aws) or writes as lifecycle.json (gcp) the storage bucket's lifecycle rule")
@click.option(
    "--engine",
    type=click.Choice(engines.NAMES),
    default=engines.DEFAULT,
    show_default=True,
    help="The engine of every stage: spark (an image with Java), sail (an image without Java) or, aws only, duckdb "
    "(a plain Lambda .zip: no image, no Java, no pyspark).",
)
@_zip_options
def package_command(
    pipeline: str,
    target: str,
    out: str | None,
    inputs: tuple[str, ...],
    storage_root: str | None,
    image_uri: str | None,
    work_expiry_days: int,
    engine: str,
    python_version: str | None,
    wheelhouse: str | None,
) -> None:
    """Write a build context for PIPELINE: the stage image's Dockerfile and its infrastructure files.

    aws: a Lambda container image and a CloudFormation template; with --engine duckdb a Lambda .zip
    (function.zip) and a template of zip functions instead. gcp: a Cloud Run image and the Cloud Run service and
    job YAML (`gcloud run services replace service.yaml`, `gcloud run jobs replace job.yaml`).
    """
    from sparkflow.loading import load_pipeline
    from sparkflow.targets import get_target
    from sparkflow.targets.base import ShipOptions

    with _user_errors():
        chosen = load_pipeline(pipeline)
        _warn_local_sources(chosen, _parse_inputs(inputs))
        options = ShipOptions(
            out=out or os.path.join("build", target, chosen.name),
            inputs=_parse_inputs(inputs),
            storage_root=storage_root,
            image_uri=image_uri,
            engine=engine,
            python_version=python_version,
            wheelhouse=wheelhouse,
            work_expiry_days=work_expiry_days,
        )
        plan, text = _definition_for(chosen, target)
        lines = get_target(target).package(chosen, plan, text, options)
    from sparkflow.terminal import for_person

    for line in lines:
        click.echo(for_person(line))


@main.command("deploy")
@click.argument("pipeline", metavar="PIPELINE")
@_target_option("Where the pipeline will run.")
@click.option(
    "--stack", help="aws: the CloudFormation stack; it also names the state machine (default: the pipeline's name)."
)
@click.option("--image-uri", help="aws: the stage image (built from `sparkflow package`'s Dockerfile), in ECR.")
@click.option(
    "--engine",
    type=click.Choice(engines.NAMES),
    default=engines.DEFAULT,
    show_default=True,
    help="The engine of every stage: spark or sail (an image: give --image-uri) or, aws only, duckdb (builds, "
    "uploads and deploys the plain Lambda .zip, no --image-uri).",
)
@_zip_options
@click.option("--out", type=click.Path(file_okay=False), help="aws: build folder (default: build/<target>/<name>).")
@click.option(
    "--storage-root", help="s3:// or gs://bucket/prefix/ runs write under (default: the pipeline's storage=)."
)
@click.option(
    "--code-bucket",
    help="aws: the S3 bucket deploy uploads the function zip and the EMR entry script to, under "
    "sparkflow/<pipeline>/ (default: the storage root's bucket).",
)
@click.option(
    "--parameter",
    "parameters",
    multiple=True,
    metavar="NAME=VALUE",
    help="aws: a template parameter, e.g. ContainerSubnets=subnet-1,subnet-2 ContainerSecurityGroups=sg-1 for "
    "container stages, EmrImageUri=... for serverless Spark stages; deploy names any that is missing.",
)
@click.option("--role-arn", help="aws: a service role CloudFormation acts as (default: your credentials).")
@_work_expiry_option("aws: deploy sets the storage bucket's lifecycle rule")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=URI",
    help="aws: let the functions read source NAME at URI; scheduled runs (aws, gcp) read it there.",
)
@click.option("--project", help="gcp: the Google Cloud project id.")
@_aws_options
@click.option("--service-url", help="gcp: the URL of the Cloud Run service from `sparkflow package --target gcp`.")
@click.option("--job", help="gcp: the Cloud Run job that runs large fan-outs (default: <pipeline>-chunks).")
@click.option(
    "--env",
    "env_values",
    multiple=True,
    metavar="NAME=VALUE",
    help="gcp: a workflow environment variable, e.g. SPARKFLOW_DATAPROC_ENTRY=gs://b/entry.py for serverless Spark "
    "stages, SPARKFLOW_CONTAINER_JOB_8192MB=my-job for container stages (default: <pipeline>-8192mb).",
)
@click.option(
    "--scheduler-service-account",
    metavar="EMAIL",
    help="gcp, a pipeline with schedule=: the service account (with roles/workflows.invoker) whose OAuth token the "
    "Cloud Scheduler job starts runs with.",
)
@click.option(
    "--trigger-service-account",
    metavar="EMAIL",
    help="gcp, a pipeline with trigger=: the service account (with roles/workflows.invoker and "
    "roles/eventarc.eventReceiver) the Eventarc trigger executes the workflow as.",
)
def deploy_command(
    pipeline: str,
    target: str,
    stack: str | None,
    image_uri: str | None,
    engine: str,
    python_version: str | None,
    wheelhouse: str | None,
    out: str | None,
    storage_root: str | None,
    code_bucket: str | None,
    parameters: tuple[str, ...],
    role_arn: str | None,
    work_expiry_days: int,
    inputs: tuple[str, ...],
    project: str | None,
    region: str | None,
    profile: str | None,
    service_url: str | None,
    job: str | None,
    env_values: tuple[str, ...],
    scheduler_service_account: str | None,
    trigger_service_account: str | None,
) -> None:
    """Create or update PIPELINE's deployment; print the state machine's ARN (aws) or the workflow's name (gcp).

    aws: packages (the image's template, or with --engine duckdb the zip), uploads what the stack reads from S3,
    then creates or updates the CloudFormation stack through a change set: it prints the changes, then the stack's
    events, and on a failure names each failed resource and why (CloudFormation rolls the stack back).
    gcp: creates or updates the workflow and, for a pipeline with schedule=, its Cloud Scheduler job; with trigger=,
    its Eventarc trigger.
    """
    from sparkflow.loading import load_pipeline
    from sparkflow.targets import get_target
    from sparkflow.targets.base import ShipOptions

    with _user_errors():
        chosen = load_pipeline(pipeline)
        _warn_local_sources(chosen, _parse_inputs(inputs))
        options = ShipOptions(
            out=out or os.path.join("build", target, chosen.name),
            inputs=_parse_inputs(inputs),
            storage_root=storage_root,
            engine=engine,
            python_version=python_version,
            wheelhouse=wheelhouse,
            image_uri=image_uri,
            stack=stack,
            role_arn=role_arn,
            region=region,
            profile=profile,
            code_bucket=code_bucket,
            parameters=_parse_pairs(parameters, "--parameter"),
            work_expiry_days=work_expiry_days,
            project=project,
            service_url=service_url,
            job=job,
            env=_parse_pairs(env_values, "--env"),
            scheduler_service_account=scheduler_service_account,
            trigger_service_account=trigger_service_account,
        )
        options.storage(chosen)  # refused before anything is compiled or called
        plan, text = _definition_for(chosen, target)
        deployed = get_target(target).deploy(chosen, plan, text, options)
    click.echo(deployed)


@main.command("delete")
@click.argument("pipeline", metavar="PIPELINE")
@_target_option("Where the pipeline was deployed.")
@click.option("--stack", help="aws: the stack it was deployed as (default: the pipeline's name, '_' as '-').")
@click.option("--project", help="gcp: the Google Cloud project id.")
@_aws_options
def delete_command(
    pipeline: str, target: str, stack: str | None, project: str | None, region: str | None, profile: str | None
) -> None:
    """Delete what `sparkflow deploy` created for PIPELINE, and wait. The data stays.

    aws: deletes the CloudFormation stack (state machine, functions, roles, log groups, containers' and EMR's
    parts). The storage bucket is never part of the stack, and the DynamoDB values table the stack made is
    retained (DeletionPolicy: Retain): delete it yourself when its values are no longer wanted.
    gcp: deletes the workflow and its Cloud Scheduler job and Eventarc trigger, if it has them.
    """
    from sparkflow.loading import load_pipeline
    from sparkflow.targets import get_target
    from sparkflow.targets.base import ShipOptions

    with _user_errors():
        chosen = load_pipeline(pipeline)
        options = ShipOptions(stack=stack, project=project, region=region, profile=profile)
        deleted = get_target(target).delete(chosen, options)
    click.echo(deleted)


@main.command("start")
@click.argument("pipeline", metavar="PIPELINE")
@_target_option("Where the pipeline was deployed.")
@click.option("--stack", help="aws: the stack it was deployed as (default: the pipeline's name, '_' as '-').")
@click.option("--input", "inputs", multiple=True, metavar="NAME=URI", help="Read source NAME from URI in this run.")
@click.option("--run-id", help="The run's id, used as the execution name (default: a new one).")
@_param_option
@click.option(
    "--resume",
    "resume_run",
    metavar="RUN_ID",
    help="Run the failed run RUN_ID again (same run id, storage and inputs): stages it committed answer at once.",
)
@click.option(
    "--keep-work",
    is_flag=True,
    help='Keep the run\'s working files once it has published (execution input {"keep_work": true}).',
)
@click.option("--no-follow", is_flag=True, help="Print the execution's id and return at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's end (or, with --no-follow, its id) as JSON.")
@click.option("--project", help="gcp: the Google Cloud project id.")
@_aws_options
def start_command(
    pipeline: str,
    target: str,
    stack: str | None,
    inputs: tuple[str, ...],
    run_id: str | None,
    params: tuple[str, ...],
    resume_run: str | None,
    keep_work: bool,
    no_follow: bool,
    as_json: bool,
    project: str | None,
    region: str | None,
    profile: str | None,
) -> None:
    """Start a run of the deployed PIPELINE and follow it: stages running / done / failed, then the outputs.

    With --resume RUN_ID, run a run that failed (or timed out, or was stopped) again as a new execution of the same
    run: stages it committed answer at once, the others run. Exits 1 when the run fails, printing the failed stage
    with its error and cause.
    """
    from sparkflow.loading import load_pipeline
    from sparkflow.targets import get_target
    from sparkflow.targets.base import ShipOptions

    with _user_errors():
        if resume_run and (run_id or inputs):
            raise click.UsageError(
                f"--resume {resume_run} runs the run again with its own run id and the inputs it started with: "
                f"drop {'--run-id' if run_id else '--input'} (start a new run to read other inputs)"
            )
        chosen = load_pipeline(pipeline)
        deployed = get_target(target)
        values = _start_params(chosen, target, params)  # refused here, before anything is sent
        options = ShipOptions(
            inputs=_parse_inputs(inputs),
            stack=stack,
            region=region,
            profile=profile,
            project=project,
            params=values,
            keep_work=keep_work,
        )
        if resume_run:
            execution = deployed.resume(chosen, options, resume_run)
        else:
            execution = deployed.start(chosen, options, run_id)
        click.echo(f"started {execution}", err=True)
        if no_follow:
            click.echo(json.dumps({"execution": execution}) if as_json else execution)
            return
        final = _follow(deployed, execution, options, _estimator(chosen, target), quiet=as_json)
    _print_end(final, as_json)


def _start_params(chosen: Any, target: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    """Every parameter's value for a deployed run (``--param`` converted by the declared types, defaults for the
    others): the execution input carries them all, so the run's record holds the values it used."""
    from sparkflow.compiler import plan_pipeline
    from sparkflow.params import from_command_line, resolve

    plan = plan_pipeline(chosen, target)
    return resolve(plan, from_command_line(plan, pairs))


def _estimator(chosen: Any, target: str) -> Callable[[Any], Any]:
    """What puts the estimate of each stage (as `sparkflow plan` makes it) beside its measured seconds in a run's
    status; without a size for every source (declared, or local data), says so and leaves the status as it is."""
    from sparkflow.compiler import plan_pipeline
    from sparkflow.estimate import cloud_seconds
    from sparkflow.targets.runs import with_estimates

    try:
        estimated = cloud_seconds(plan_pipeline(chosen, target), chosen, target, {})
    except SparkflowError as error:
        click.echo(f"no estimate beside the measured seconds: {error}", err=True)
        return lambda run: run
    return lambda run: with_estimates(run, estimated)


def _follow(deployed: Any, execution: str, options: Any, estimate: Callable[[Any], Any], quiet: bool = False) -> Any:
    from rich.console import Console
    from rich.live import Live

    from sparkflow.targets.runs import status_table

    if quiet:
        return estimate(deployed.follow(execution, options))
    console = Console(stderr=True)
    first = estimate(deployed.status(execution, options))
    with Live(status_table(first), console=console, refresh_per_second=4, transient=False) as live:
        final = deployed.follow(execution, options, lambda current: live.update(status_table(estimate(current))))
        return estimate(final)


def _print_end(final: Any, as_json: bool = False) -> None:
    from dataclasses import asdict

    from sparkflow.targets.runs import summary_lines
    from sparkflow.terminal import for_person

    if as_json:
        click.echo(json.dumps(asdict(final), indent=2, default=str))
    else:
        for line in summary_lines(final):  # a failure wrapped in a terminal; an output's line kept whole for scripts
            click.echo(line if final.succeeded else for_person(line, sys.stderr), err=not final.succeeded)
    if final.finished and not final.succeeded:
        sys.exit(1)


@main.command("logs")
@click.argument("pipeline", metavar="PIPELINE")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--target",
    "-t",
    default="local",
    show_default=True,
    metavar="[local|aws|gcp]",
    help="Where the run ran: local (`sparkflow run`), or the cloud it was deployed to.",
)
@click.option("--stage", help="Only the lines of this stage (a fused stage's are those of the stage it runs in).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option("--json", "as_json", is_flag=True, help="Print each record as the runtime wrote it (JSON lines).")
@click.option("--storage", help="local: the storage root the run wrote under (default: .sparkflow).")
@click.option("--stack", help="aws: the stack it was deployed as (default: the pipeline's name, '_' as '-').")
@click.option("--project", help="gcp: the Google Cloud project id (with --region: where the run was started).")
@_aws_options
def logs_command(
    pipeline: str,
    run_id: str,
    target: str,
    stage: str | None,
    follow: bool,
    as_json: bool,
    storage: str | None,
    stack: str | None,
    project: str | None,
    region: str | None,
    profile: str | None,
) -> None:
    """Print the runtime's log lines of the run RUN of PIPELINE: one line per record (time, stage, chunk,
    severity, message, what it counted), oldest first.

    local: from the run folder's _logs.jsonl. aws: from the stack's stages' log group in CloudWatch Logs. gcp: from
    Cloud Logging of --project (RUN: the execution id `start` printed the name of).
    """
    from sparkflow.compiler import plan_pipeline
    from sparkflow.loading import load_pipeline
    from sparkflow.targets import get_run_target
    from sparkflow.targets.base import ShipOptions
    from sparkflow.targets.runlogs import LogQuery, line, stage_nodes

    with _user_errors():
        where = get_run_target(target.lower())
        chosen = load_pipeline(pipeline)
        nodes = stage_nodes(plan_pipeline(chosen, where), stage)  # as the run was planned: which stages are fused
        options = ShipOptions(storage_root=storage, stack=stack, project=project, region=region, profile=profile)
        for record in where.logs(chosen, options, LogQuery(run_id, nodes, follow=follow)):
            click.echo(json.dumps(record, sort_keys=True) if as_json else _log_line(line(record)))


def _log_line(text: str) -> str:
    """A log line wrapped to the terminal a person reads it in; piped (to grep, a file), one record per line."""
    from sparkflow.terminal import is_terminal, wrapped

    return wrapped(text) if is_terminal(sys.stdout) else text


@main.command("status")
@click.argument("execution", metavar="EXECUTION")
@_target_option("Where the pipeline was deployed.")
@click.option(
    "--pipeline",
    "pipeline",
    metavar="PIPELINE",
    help="The run's pipeline: each stage's estimate (as `sparkflow plan` makes it) beside its measured seconds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run's status as JSON.")
@_aws_options
def status_command(
    execution: str, target: str, pipeline: str | None, as_json: bool, region: str | None, profile: str | None
) -> None:
    """Show a run of a deployed pipeline: every stage, then the outputs or the failed stage. EXECUTION is what
    `start` printed (aws: the execution ARN, whose region is used unless --region says otherwise; gcp: the
    execution's name, projects/P/locations/R/workflows/W/executions/ID).

    Exits 1 when the run failed, 0 when it succeeded or is still running.
    """
    from rich.console import Console

    from sparkflow.loading import load_pipeline
    from sparkflow.targets import get_target
    from sparkflow.targets.base import ShipOptions
    from sparkflow.targets.runs import status_table

    with _user_errors():
        estimate = _estimator(load_pipeline(pipeline), target) if pipeline else None
        current = get_target(target).status(execution, ShipOptions(region=region, profile=profile))
        if estimate is not None:
            current = estimate(current)
    if not as_json:
        Console().print(status_table(current))
    _print_end(current, as_json)


def entry() -> NoReturn:
    """The ``sparkflow`` console script: :func:`main`, then leave without interpreter finalization, as the
    runtime's processes do (``sparkflow run`` reads Parquet through pyarrow: see sparkflow/runtime/shutdown.py)."""
    from sparkflow.runtime.shutdown import exit_now

    try:
        main()  # click's standalone mode ends in SystemExit, with the command's exit code
    except SystemExit as done:
        exit_now(done.code)
    exit_now(0)


if __name__ == "__main__":  # pragma: no cover
    entry()
