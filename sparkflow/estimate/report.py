"""An estimate as deterministic JSON (``sparkflow plan --json`` and the examples' ``.plan-<target>.json``) and as a
rich table with totals."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sparkflow.engines import ENGINES, NAMES
from sparkflow.estimate import Estimate, StageEstimate
from sparkflow.shrink import COMBINED_SHRINK, SUFFIX

SERVICES = {
    "aws": {"function": "Lambda", "container": "ECS Fargate", "serverless-spark": "EMR Serverless"},
    "gcp": {"function": "Cloud Run", "container": "Cloud Run job", "serverless-spark": "Dataproc Serverless"},
}
STEPS_NAME = {"aws": "state_transitions", "gcp": "workflow_steps"}
ASSUMPTIONS = (
    "seconds: per task a start-up plus its input bytes over the engine's throughput (the compiler's chunk model), "
    "tasks of a phase running as many at once as the stage's fan-out allows; see docs/performance.md (Estimates)",
    "every task succeeds at its first attempt: retries are not counted",
    "object storage: working files (_work/: attempts, shuffle objects) are held for the run's estimated seconds and "
    "deleted when it publishes; stage outputs kept under the run and tables published to sinks are priced for a "
    "month; a key stage's map task writes one shuffle object, read by one ranged GET per reduce task; request "
    "counts are per task, approximate",
    "prices: on-demand list prices without free tiers; a price that could not be confirmed is not counted "
    "(see unpriced and prices)",
)


def document(estimate: Estimate) -> dict[str, Any]:
    """The estimate as plain JSON data: every stage, the run's own part and the totals."""
    target = estimate.target
    stages = [_stage(item, target) for item in estimate.stages]
    run = _stage(estimate.run, target)
    usage: defaultdict[str, float] = defaultdict(float)
    for item in (*estimate.stages, estimate.run):
        for key, value in item.usage.items():
            usage[key] += value
    costs = {key: estimate.prices.price(key).cost(value) for key, value in usage.items()}
    known = sum(value for value in costs.values() if value is not None)
    unpriced = sorted(key for key, value in costs.items() if value is None and usage[key] > 0)
    # Only for sources that have compressed files: the examples' checked-in estimates (none has) stay as they were.
    compressed = {"compressed": _compressed(estimate)} if estimate.compressed else {}
    return {
        **compressed,
        "pipeline": estimate.plan.pipeline,
        "target": target,
        "region": estimate.prices.region,
        "prices_checked": estimate.prices.checked,
        "sources": dict(estimate.sources),
        "stages": stages,
        "run": run,
        "total": {
            "seconds": round(estimate.seconds, 1),
            "tasks": sum(item["tasks"] for item in stages) + 1,
            STEPS_NAME[target]: sum(item.steps for item in (*estimate.stages, estimate.run)),
            "usage": _rounded(usage),
            "cost_usd": _rounded(costs),
            "cost_usd_priced": round(known, 6),
            "unpriced": unpriced,
        },
        "model": {
            "engines": {
                name: {
                    "throughput_mib_s": ENGINES[name].chunk_model.throughput / 1024**2,
                    "memory_per_input_byte": ENGINES[name].chunk_model.expansion,
                }
                for name in sorted(NAMES)
            },
            "assumptions": [*_shrink_assumptions(estimate), *ASSUMPTIONS],
        },
        "prices": {
            key: {
                "usd": price.usd,
                "per": price.per,
                "unit": price.unit,
                "source": price.source,
                "confirmed_by": price.confirmed_by,
                "note": price.note,
            }
            for key, price in sorted(estimate.prices.prices.items())
        },
    }


def _shrink_assumptions(estimate: Estimate) -> list[str]:
    """What the estimate took each dataset stage's output to be, grouped by where the figure came from (see
    :mod:`sparkflow.shrink`)."""
    stages = [item.work for item in estimate.stages if item.work is not None and item.work.task.output != "value"]
    named = {
        basis: ", ".join(f"{work.task.id} ({work.shrink.ratio:.4g})" for work in stages if work.shrink.basis == basis)
        for basis in ("measured", "combined", "assumed")
    }
    file = f"{estimate.plan.pipeline}{SUFFIX}"
    lines = []
    if named["measured"]:
        lines.append(f"output per input byte measured in a local run ({file}) for: {named['measured']}")
    if named["combined"]:
        lines.append(
            f"combine= partial results, not measured, taken to be at most {COMBINED_SHRINK:g} of the input for: "
            f"{named['combined']}; measure with sparkflow run --record-shrink"
        )
    if named["assumed"]:
        lines.append(
            f"output as large as the input read, not measured, for: {named['assumed']}; a stage that shrinks its "
            "data (an aggregate, a filter) makes the stages after it cost less than shown: measure with sparkflow "
            "run --record-shrink"
        )
    return lines


def _compressed(estimate: Estimate) -> dict[str, Any]:
    """Per source with compressed files: how many, their bytes and compressions, the largest, the split stages whose
    chunks are smaller than it (with their chunk bytes), and why a file cannot be read at all (or None)."""
    return {
        name: {
            "files": found.files,
            "bytes": found.bytes,
            "compressions": list(found.compressions),
            "largest": {"file": found.largest, "bytes": found.largest_bytes},
            "larger_than_a_chunk_of": dict(found.larger_than_a_chunk),
            "refused": found.refused,
        }
        for name, found in sorted(estimate.compressed.items())
    }


def to_json(estimate: Estimate) -> str:
    """Deterministic JSON: sorted keys, no timestamps, a newline at the end."""
    return json.dumps(document(estimate), indent=2, sort_keys=True) + "\n"


def _stage(item: StageEstimate, target: str) -> dict[str, Any]:
    work = item.work
    priced = [value for value in item.costs.values() if value is not None]
    common = {
        STEPS_NAME[target]: item.steps,
        "usage": _rounded(item.usage),
        "cost_usd": _rounded(item.costs),
        "cost_usd_priced": round(sum(priced), 6),
    }
    if work is None:
        return {"stage": item.name, "tasks": 1, "runs_on": SERVICES[target]["function"], **common}
    task = work.task
    late = work.over_timeout()
    return {
        "stage": task.id,
        "fused": [inner.id for inner in task.fused],
        "placement": task.placement,
        "runs_on": SERVICES[target][task.placement],
        "engine": work.engine,
        **({"engine_choice": task.engine_choice} if task.engine_choice else {}),
        "memory_mb": task.memory_mb,
        "timeout_s": task.timeout_s,
        "input_bytes": work.input_bytes,
        "output_bytes": work.output_bytes,
        "shrink": {"ratio": round(work.shrink.ratio, 6), "basis": work.shrink.basis},
        "chunks": work.chunks,
        "buckets": work.buckets,
        "tasks": work.tasks,
        "phases": [
            {"phase": phase.name, "tasks": phase.count, "seconds_each": round(phase.seconds_each, 1)}
            for phase in work.phases
        ],
        "seconds": round(work.seconds, 1),
        "task_seconds": round(work.task_seconds, 1),
        "warnings": [
            f"the {phase} tasks are estimated to run longer than timeout={task.timeout_s} s: raise timeout=, "
            "lower chunk_size=, or split the stage"
            for phase in late
        ],
        **common,
    }


def _rounded(values: Any) -> dict[str, float | None]:
    """Values to 6 decimals; whole numbers (requests, steps) as integers, whatever arithmetic gave them."""
    rounded = {key: None if value is None else round(value, 6) for key, value in sorted(values.items())}
    return {key: int(value) if value is not None and value == int(value) else value for key, value in rounded.items()}


# The columns of the table that fits 80 columns; `sparkflow plan --wide` shows them all.
NARROW = ("stage", "runs on", "tasks", "seconds", "cost (USD)")


def table(estimate: Estimate, wide: bool = False) -> Any:
    """A rich Table: one row per stage, then the run's own row and the totals. Narrow (:data:`NARROW`, to fit 80
    columns) unless ``wide``: then also memory, timeout, input, chunks, buckets and orchestration steps."""
    from rich.table import Table

    data = document(estimate)
    steps = STEPS_NAME[estimate.target]
    title = (
        f"{data['pipeline']} on {estimate.target} ({data['region']}): estimate per run, "
        f"prices checked {data['prices_checked']}"
    )
    grid = Table(title=title, title_justify="left", show_footer=True)
    total = data["total"]
    columns = [
        ("stage", "total"),
        ("runs on", ""),
        ("memory", ""),
        ("timeout", ""),
        ("input", ""),
        ("chunks", ""),
        ("buckets", ""),
        ("tasks", f"{total['tasks']:,}"),
        (steps.replace("_", " "), f"{total[steps]:,}"),
        ("seconds", f"{total['seconds']:,.1f}"),
        ("cost (USD)", _usd(total["cost_usd_priced"])),
    ]
    shown = [index for index, (name, _) in enumerate(columns) if wide or name in NARROW]
    for index in shown:
        name, footer = columns[index]
        grid.add_column(name, footer=footer, justify="left" if name in ("stage", "runs on") else "right")
    for item in data["stages"]:
        cells = [
            item["stage"] + "".join(f" + {inner}" for inner in item["fused"]),
            f"{item['runs_on']} ({item['engine']})",
            f"{item['memory_mb']:,} MB",
            f"{item['timeout_s']:,} s",
            _bytes(item["input_bytes"]),
            "" if item["chunks"] is None else f"{item['chunks']:,}",
            "" if item["buckets"] is None else f"{item['buckets']:,}",
            f"{item['tasks']:,}",
            f"{item[steps]:,}",
            f"{item['seconds']:,.1f}",
            _usd(item["cost_usd_priced"]),
        ]
        grid.add_row(*(cells[index] for index in shown))
    run = data["run"]
    cells = ["(run: start, publish)", run["runs_on"], *[""] * 5, "1", f"{run[steps]:,}", ""]
    cells.append(_usd(run["cost_usd_priced"]))
    grid.add_row(*(cells[index] for index in shown))
    return grid


def notes(estimate: Estimate) -> list[str]:
    """What to print below the table: warnings, what is not priced, the basis."""
    data = document(estimate)
    lines = [f"warning: stage {item['stage']}: {text}" for item in data["stages"] for text in item["warnings"]]
    lines += [
        f'engine: stage {item["stage"]} runs on {item["engine"]} (engine="auto": {item["engine_choice"]})'
        for item in data["stages"]
        if "engine_choice" in item
    ]
    lines += _compressed_notes(data.get("compressed", {}))
    for key in data["total"]["unpriced"]:
        price = data["prices"][key]
        lines.append(f"not priced: {key} = {data['total']['usage'][key]:,.6g} ({price['unit']}): {price['note']}")
    lines += [f"assumes: {text}" for text in data["model"]["assumptions"]]
    return lines


def _compressed_notes(compressed: dict[str, Any]) -> list[str]:
    """What the estimate says of compressed files: they are read whole; a file larger than a chunk, and a file of a
    compression sparkflow does not read, are warnings."""
    lines: list[str] = []
    for name, found in compressed.items():
        size = "" if found["bytes"] is None else f", {_bytes(found['bytes'])}"
        files = f"{found['files']} compressed file{'s' if found['files'] > 1 else ''}"
        if found["files"]:
            lines.append(
                f"note: source {name}: {files} ({', '.join(found['compressions'])}{size}) cannot be split: "
                f"{'each' if found['files'] > 1 else 'it'} is read whole, in one chunk"
            )
        largest = found["largest"]
        for stage, chunk in found["larger_than_a_chunk_of"].items():
            lines.append(
                f"warning: source {name}: {largest['file']} ({_bytes(largest['bytes'])} compressed) is larger than a "
                f"chunk of stage {stage} ({_bytes(chunk)}): one task reads it whole, and more once decompressed; "
                "store it as smaller files (or uncompressed) to spread it over tasks"
            )
        if found["refused"]:
            lines.append(f"warning: source {name}: {found['refused']}; sparkflow run refuses it before anything runs")
    return lines


def _usd(value: float) -> str:
    return f"${value:,.4f}"


def _bytes(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:,.1f} {unit}"
    return f"{size} B"
