"""The versioned event and result between a state machine and the runtime, checked with jsonschema.

The schemas ship in the package (``sparkflow/runtime/schemas``) so that other tools can validate too.
jsonschema is imported on first use: importing this module costs nothing.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from sparkflow.engines import ENGINES, runtime_engine
from sparkflow.errors import EventError

if TYPE_CHECKING:
    from sparkflow.plan import Plan, PlanTask

EVENT_VERSION = 1

# The environment of a deployed function: every target's package sets these, sparkflow.runtime.deployed reads them.
PIPELINE_VARIABLE = "SPARKFLOW_PIPELINE"
PLAN_VARIABLE = "SPARKFLOW_PLAN"
STORAGE_ROOT_VARIABLE = "SPARKFLOW_STORAGE_ROOT"
KV_VARIABLE = "SPARKFLOW_KV"
ALLOWED_INPUTS_VARIABLE = "SPARKFLOW_ALLOWED_INPUTS"
WORKDIR_VARIABLE = "SPARKFLOW_WORKDIR"
ENGINE_VARIABLE = "SPARKFLOW_ENGINE"
#: A file for the engine's own log lines (Spark's JVM: its start-up notices, its log4j errors and Java stack traces);
#: unset, they go to stderr, the platform's log (deployed functions), or where the command says (`sparkflow run` and
#: `verify`: their storage's _engine.log, see sparkflow.runtime.spark.log_engine_to).
ENGINE_LOG_VARIABLE = "SPARKFLOW_ENGINE_LOG"
#: A container task's event (a Cloud Run job task, an ECS task): the definition sets it as an override.
EVENT_VARIABLE = "SPARKFLOW_EVENT"

#: The field of a run's input (``run.params``: ``sparkflow start --input '{"keep_work": true}'``, ``sparkflow run
#: --keep-work``) that keeps the run's working files after it has published; by default the publish task deletes them.
KEEP_WORK_FIELD = "keep_work"

#: Errors another attempt of the same task cannot fix (by class name, as Lambda reports a function's error): a bad
#: event, a missing or corrupt input, a refused location, the stage's own code failing (``StageError``), an API the
#: engine cannot run. The state machines do not retry them, the container entry exits 2 for them, the HTTP entry
#: answers them with a 4xx status, and ``sparkflow run`` fails the stage at once. Every other error (storage,
#: throttling, a lost engine, a timeout, a stage's ``retry_on=`` exceptions) is retried up to the stage's
#: ``retries=``. Subclasses are named here too: Step Functions matches names, not classes.
FINAL_ERRORS = ("EventError", "InputError", "ConfinementError", "StageError", "EngineUnsupported")
# Final errors only some engines raise (their EngineSpec.final_errors): a state machine names them only for tasks on
# those engines (definitions stay small).
_ENGINE_ERRORS = frozenset(name for spec in ENGINES.values() for name in spec.final_errors)


def final_errors(engine: str) -> tuple[str, ...]:
    """The final errors a task on ``engine`` can raise (:data:`FINAL_ERRORS`, less other engines' own)."""
    own = runtime_engine(engine).final_errors
    return tuple(name for name in FINAL_ERRORS if name not in _ENGINE_ERRORS or name in own)


def is_final(error: BaseException) -> bool:
    """Whether another attempt cannot fix ``error`` (see :data:`FINAL_ERRORS`)."""
    return type(error).__name__ in FINAL_ERRORS


def event(plan: Plan, task: PlanTask | None, run: Any, *, run_key: str = "run", **fields: Any) -> dict[str, Any]:
    """The event that runs ``task`` of ``plan`` (None: the run's publish task), as every target and the local
    executor send it: it names the pipeline, the node and ``fields`` (a phase, a chunk), and the stages fused into
    it; ``run`` (under ``run_key``: ``run.$`` in ASL) is the run's object (:func:`run_object`) or what fills it in."""
    found: dict[str, Any] = {"version": EVENT_VERSION, "pipeline": plan.pipeline}
    if task is None:
        found["phase"] = "publish"
    else:
        found["node"] = task.id
    found.update(fields)
    if task is not None and task.fused:  # the row-wise stages its split and map phases apply first (the fuse pass)
        found["fused"] = [fused.id for fused in task.fused]
    found[run_key] = run
    return found


def run_object(plan: Plan, **fields: Any) -> dict[str, Any]:
    """The ``run`` of every event of a run: ``fields`` (its id, storage root and params, or what fills them in)
    and the digest of the Plan it executes. Built once per run (a state machine's first state), it reaches every
    event at no cost to the definition's size, and the runtime refuses a run of a Plan it was not deployed with."""
    return {**fields, "plan": plan.digest}


@cache
def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of ``kind`` (``event`` or ``result``) for the current version."""
    text = resources.files("sparkflow.runtime").joinpath(f"schemas/{kind}-{EVENT_VERSION}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate_event(event: object) -> dict[str, Any]:
    """Return ``event`` if it follows the protocol, else raise :class:`EventError` naming the field."""
    if not isinstance(event, dict):
        raise EventError(f"the event must be a JSON object, got {type(event).__name__}")
    version = event.get("version")
    if "version" in event and version != EVENT_VERSION:
        raise EventError(
            f"event field 'version' is {version!r}, but this runtime speaks version {EVENT_VERSION}: "
            "recompile the pipeline with the same sparkflow version as the deployed runtime"
        )
    if event.get("phase") == "publish" and "node" in event:
        raise EventError("event field 'node': a publish event (phase 'publish') names no node: it publishes the run")
    _validate(event, "event")
    return event


def validate_result(result: dict[str, Any]) -> dict[str, Any]:
    _validate(result, "result")
    return result


def _validate(document: dict[str, Any], kind: str) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema(kind))
    errors = sorted(
        validator.iter_errors(document), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if not errors:
        return
    error = errors[0]
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "required":
        missing = next((name for name in error.validator_value if name not in error.instance), "?")
        path = f"{path}.{missing}" if path else missing
        raise EventError(f"{kind} field {path!r} is missing")
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where = f"{path}." if path else ""
        allowed = ", ".join(error.schema.get("properties", {}))
        raise EventError(f"{kind} field {where}{extra[0]!r} is not allowed (allowed: {allowed})")
    raise EventError(f"{kind} field {path or '(top)'!r} is invalid: {error.message}")
