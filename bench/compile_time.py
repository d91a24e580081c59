"""How compile time grows with the number of stages: ``.venv/bin/python bench/compile_time.py``.

Builds pipelines of 10, 100, 1,000 and 10,000 stages in two shapes, a chain (each stage feeds the next) and
a wide fan-out/fan-in (one stage feeds n-2 independent stages that one last stage joins), and times, per
shape and size, the compiler (``plan_pipeline``: trace, passes, schedule), the target's ``emit`` and its
``check`` of the target's limits. The last columns say the time per stage, which stays flat when compile time
grows linearly, the definition's size (minified JSON for ASL, the YAML text for Workflows) and its bytes per stage,
and whether it fits (a definition of about 1,000 stages reaches Step Functions' 1 MB limit, so 10,000 stages
compile but do not fit).

Options: ``--target aws``, ``--sizes 10,100,1000,10000``, ``--repeat 3`` (the best of the repeats is shown).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import sparkflow as sf
from sparkflow.compiler import plan_pipeline
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.targets import get_target


def _identity(frame: Any) -> Any:
    return frame


def _join(*frames: Any) -> Any:
    return frames[0]


def chain(stages: int) -> Pipeline:
    """source -> s1 -> s2 -> ... -> s<stages>."""
    data = sf.source("data", "s3://bench/data/", format="parquet", size="1GB")
    declared = [sf.stage(name=f"s{index}")(_identity) for index in range(1, stages + 1)]

    def body() -> Any:
        output = data
        for declared_stage in declared:
            output = declared_stage(output)
        return output

    return sf.pipeline(name=f"chain{stages}")(body)


def fan(stages: int) -> Pipeline:
    """source -> first -> (m1 | m2 | ... | m<stages-2>) -> last: one Parallel state with stages-2 branches."""
    data = sf.source("data", "s3://bench/data/", format="parquet", size="1GB")
    first = sf.stage(name="first")(_identity)
    middle = [sf.stage(name=f"m{index}")(_identity) for index in range(1, stages - 1)]
    last = sf.stage(name="last")(_join)

    def body() -> Any:
        start = first(data)
        return last(*[declared_stage(start) for declared_stage in middle])

    return sf.pipeline(name=f"fan{stages}")(body)


SHAPES: dict[str, Callable[[int], Pipeline]] = {"chain": chain, "fan-out/in": fan}


def measure(shape: str, stages: int, target_name: str, repeat: int) -> dict[str, Any]:
    """Best-of-``repeat`` seconds of each phase, the minified definition size and the limit problems."""
    target = get_target(target_name)
    best: dict[str, float] = {}
    for _ in range(repeat):
        pipeline = SHAPES[shape](stages)
        started = time.perf_counter()
        plan = plan_pipeline(pipeline, target_name)
        planned = time.perf_counter()
        text = target.emit(plan)
        emitted = time.perf_counter()
        problems = target.check(plan, text)
        checked = time.perf_counter()
        for phase, seconds in (("plan", planned - started), ("emit", emitted - planned), ("check", checked - emitted)):
            best[phase] = min(best.get(phase, seconds), seconds)
    assert len(plan.tasks) == stages, (shape, stages, len(plan.tasks))
    minified = len(json.dumps(json.loads(text), separators=(",", ":")).encode()) if text.lstrip()[:1] == "{" else None
    return {
        "shape": shape,
        "stages": stages,
        **best,
        "total": best["plan"] + best["emit"] + best["check"],
        "bytes": minified if minified is not None else len(text.encode()),
        "fits": "yes" if not problems else "no: " + "; ".join(_why(problem.message) for problem in problems),
    }


def _why(message: str) -> str:
    if "definition" in message or "source is" in message:
        return "definition size"
    return "history events" if "history" in message else message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", default="aws")
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    header = f"{'shape':<11} {'stages':>7} {'plan s':>8} {'emit s':>8} {'check s':>8} {'total s':>8} "
    header += f"{'µs/stage':>9} {'KB':>8} {'B/stage':>8}  fits {args.target}"
    print(header)
    print("-" * len(header))
    for shape in SHAPES:
        for stages in sizes:
            row = measure(shape, stages, args.target, args.repeat if stages < 10_000 else 1)
            print(
                f"{row['shape']:<11} {row['stages']:>7,} {row['plan']:>8.3f} {row['emit']:>8.3f} {row['check']:>8.3f} "
                f"{row['total']:>8.3f} {row['total'] / stages * 1e6:>9.0f} {row['bytes'] / 1024:>8,.0f} "
                f"{row['bytes'] / stages:>8,.0f}  {row['fits']}"
            )


if __name__ == "__main__":
    main()
