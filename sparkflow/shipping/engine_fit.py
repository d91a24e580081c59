"""Whether the functions shipped for one engine run a pipeline as its code declares it: what ``package`` and
``deploy`` check before anything is built or sent.

One image (or zip) serves every stage of a pipeline. A function of an engine that prepares its process
(:attr:`~sparkflow.engines.EngineSpec.prepare`: sail, duckdb) runs every stage on that engine, so a stage that
declares another engine itself would silently run elsewhere; a Spark function runs each stage on the engine its Plan
gives it, which must then be Spark. Stages on serverless Spark run the platform's Spark image, which sparkflow builds
only beside an engine that runs on clusters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.dsl.trace import StageCall
from sparkflow.engines import DEFAULT
from sparkflow.engines import engine as engine_spec
from sparkflow.errors import PackageError
from sparkflow.plan import Plan


def check_engine(pipeline: Pipeline, plan: Plan, engine: str) -> None:
    """Refuse what keeps the functions of ``engine`` from running ``plan``'s stages as declared.

    Raises:
        PackageError: naming every such stage (with its file:line) and what to do, one sentence per kind.
    """
    spec = engine_spec(engine, what="--engine")
    calls = pipeline.trace().calls
    declared: dict[str, list[str]] = defaultdict(list)  # another engine a stage declares itself
    planned: dict[str, list[str]] = defaultdict(list)  # another engine the Plan runs a stage on
    on_clusters: list[str] = []
    chosen: list[str] = []  # stages engine="auto" put on another engine
    for task in plan.tasks:
        if task.placement == "serverless-spark":
            if not spec.runs_on_clusters:
                on_clusters.append(_named(calls, task.id))
            continue
        if not spec.own_process:
            if task.engine != engine:
                planned[task.engine].append(_named(calls, task.id))
            continue
        for node in (task, *task.fused):
            call = calls.get(node.id)
            if node.engine_choice and node.engine != engine:  # engine="auto" chose another engine, for a reason
                chosen.append(f"{_named(calls, node.id)} ({node.engine}: {node.engine_choice})")
            elif call is not None and call.stage.options.engine_declared and call.stage.options.engine != engine:
                declared[call.stage.options.engine].append(_named(calls, node.id))
    problems = [
        f"stage(s) {', '.join(stages)} declare engine={other!r}, which functions packaged with --engine {engine} do "
        f"not run (they run every stage on {engine}): drop engine= there, or package with --engine {other}"
        for other, stages in sorted(declared.items())
    ]
    problems += [
        f"stage(s) {', '.join(stages)} run on engine {other!r}, which the {engine} image cannot run (its functions "
        f"run each stage on the engine the Plan gives it): package with --engine {other}, or declare "
        f"engine={engine!r} there"
        for other, stages in sorted(planned.items())
    ]
    if chosen:
        problems.append(
            f'engine="auto" runs stage(s) {", ".join(chosen)} on another engine than {engine}, whose functions would '
            f"run them on {engine}: package with --engine {DEFAULT}, or declare engine={engine!r} on them"
        )
    if on_clusters:
        problems.append(
            f"stage(s) {', '.join(on_clusters)} are placed on serverless Spark, whose image a package for --engine "
            f"{engine} does not build: declare engine={engine!r} on them or on their pipeline (the compiler then "
            "places them for it), or package with --engine spark"
        )
    if problems:
        raise PackageError("; ".join(problems))


def _named(calls: Mapping[str, StageCall], node: str) -> str:
    """A stage as problems name it: its node and the file:line of its function."""
    call = calls.get(node)
    return node if call is None else f"{node} ({call.stage.origin})"
