"""The configuration of a deployed function, read from its environment (set in the image or template):

* ``SPARKFLOW_PIPELINE``: the pipeline it serves, ``package.module:attribute`` or ``path/to/pipeline.py``
  (fixed at deploy time: an event can name a node, never code to import);
* ``SPARKFLOW_PLAN``: the pipeline's compiled Plan (a JSON file ``sparkflow package`` ships beside the code): the
  runtime runs each task as it says and refuses events of another Plan;
* ``SPARKFLOW_STORAGE_ROOT``: the storage root (default: the pipeline's ``storage=``);
* ``SPARKFLOW_KV``: the KV store URI (default: the pipeline's ``kv=``);
* ``SPARKFLOW_ALLOWED_INPUTS``: comma-separated locations sources may be read from besides the declared ones;
* ``SPARKFLOW_WORKDIR``: scratch folder (default: the system temporary folder, /tmp on Lambda);
* ``SPARKFLOW_ENGINE``: the engine of every stage this function serves (``spark``, ``sail``, ``duckdb``: see
  :mod:`sparkflow.engines`); an engine that needs a process of its own prepares it before the pipeline is loaded
  (sail: PySpark's Connect client; duckdb: PySpark imports resolve to sqlframe). Unset: each stage's own
  ``engine=``.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import TYPE_CHECKING

from sparkflow import engines
from sparkflow.errors import EnvironmentProblem
from sparkflow.runtime import engines as running
from sparkflow.runtime import protocol
from sparkflow.runtime.execute import RuntimeConfig

if TYPE_CHECKING:
    from sparkflow.plan import Plan

_VARIABLES = (
    protocol.PIPELINE_VARIABLE,
    protocol.PLAN_VARIABLE,
    protocol.STORAGE_ROOT_VARIABLE,
    protocol.KV_VARIABLE,
    protocol.ALLOWED_INPUTS_VARIABLE,
    protocol.WORKDIR_VARIABLE,
    protocol.ENGINE_VARIABLE,
)


def deployed_config() -> RuntimeConfig:
    """The configuration for the current environment, loaded once per distinct environment (warm reuse).

    Locked: a Cloud Run service answers concurrent requests in threads, and the pipeline module must be loaded
    once, not once per thread.
    """
    with _LOCK:
        return _config(tuple(os.environ.get(name) for name in _VARIABLES))


_LOCK = threading.Lock()


@cache
def _config(values: tuple[str | None, ...]) -> RuntimeConfig:
    spec, plan_file, root, kv, allowed, workdir, engine = values
    if not spec:
        raise EnvironmentProblem(
            "SPARKFLOW_PIPELINE is not set: set it where the function is deployed to the pipeline it serves, "
            "e.g. 'mypackage.pipeline:wordcount' or '/var/task/pipeline.py'"
        )
    if engine:
        if engine not in engines.NAMES:
            raise EnvironmentProblem(
                f"SPARKFLOW_ENGINE is {engine!r}: use one of {', '.join(engines.NAMES)}, or unset it"
            )
        running.prepare(engine)  # before the pipeline module is imported: its PySpark imports bind the engine's
    from sparkflow.loading import load_pipeline

    pipeline = load_pipeline(spec)
    plan = _load_plan(plan_file, pipeline.name)
    storage_root = root or pipeline.storage
    if not storage_root:
        raise EnvironmentProblem(
            f"pipeline {pipeline.name!r} declares no storage= and SPARKFLOW_STORAGE_ROOT is not set: set one of them"
        )
    readable = tuple(item.strip() for item in (allowed or "").split(",") if item.strip())
    return RuntimeConfig(
        pipeline=pipeline,
        plan=plan,
        storage_root=storage_root,
        kv=kv or None,
        readable=readable,
        workdir=workdir,
        engine=engine or None,
    )


def _load_plan(path: str | None, pipeline: str) -> Plan:
    from sparkflow.plan import Plan

    if not path:
        raise EnvironmentProblem(
            "SPARKFLOW_PLAN is not set: set it where the function is deployed to the pipeline's compiled Plan "
            "(sparkflow package ships it beside the code; `sparkflow compile --plan FILE` writes one)"
        )
    try:
        with open(path, encoding="utf-8") as handle:
            plan = Plan.from_json(handle.read())
    except OSError as error:
        raise EnvironmentProblem(f"SPARKFLOW_PLAN {path!r} cannot be read: {error}") from error
    except ValueError as error:
        raise EnvironmentProblem(f"SPARKFLOW_PLAN {path!r}: {error}") from error
    if plan.pipeline != pipeline:
        raise EnvironmentProblem(
            f"SPARKFLOW_PLAN {path!r} is the plan of pipeline {plan.pipeline!r}, but SPARKFLOW_PIPELINE is "
            f"{pipeline!r}: ship the plan compiled from the same code"
        )
    return plan
