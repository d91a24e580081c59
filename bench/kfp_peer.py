"""The peer of ``bench/compile_time.py``: Kubeflow Pipelines' compiler on the same pipeline shapes.

Runs in the benchmark's own environment (``.venv-bench``, where ``make bench`` installs the pinned ``kfp``), never
in sparkflow's. One shape and size per process:

    .venv-bench/bin/python bench/kfp_peer.py chain 1000

* chain: one lightweight component per stage, each consuming the previous one's output;
* fan-out/in: a first component, n-2 components consuming its output, and a last one that runs after all of
  them (``.after(...)``: a KFP component has a fixed number of inputs, so the fan-in is by dependency).

Prints one JSON line: the seconds from building the pipeline (``@dsl.pipeline`` traces the function and builds
its spec) to the compiled YAML written to a file, and the size of that file. The import of kfp is not timed
(nor is sparkflow's in compile_time.py).
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as types, not strings.

import json
import os
import sys
import tempfile
import time
from typing import Any


def main() -> None:
    shape, stages = sys.argv[1], int(sys.argv[2])
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11-slim")
    def step(data: str) -> str:
        return data

    @dsl.component(base_image="python:3.11-slim")
    def last() -> str:
        return "done"

    started = time.perf_counter()
    if shape == "chain":

        @dsl.pipeline(name=f"chain{stages}")
        def pipeline(data: str = "s3://bench/data/") -> None:
            output: Any = step(data=data)
            for _ in range(stages - 1):
                output = step(data=output.output)

    elif shape == "fan-out/in":

        @dsl.pipeline(name=f"fan{stages}")
        def pipeline(data: str = "s3://bench/data/") -> None:
            first = step(data=data)
            middle = [step(data=first.output) for _ in range(stages - 2)]
            last().after(*middle)

    else:
        raise SystemExit(f"unknown shape {shape!r}: chain or fan-out/in")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "pipeline.yaml")
        compiler.Compiler().compile(pipeline, path)
        seconds = time.perf_counter() - started
        size = os.path.getsize(path)
    print(json.dumps({"shape": shape, "stages": stages, "seconds": seconds, "bytes": size}))


if __name__ == "__main__":
    main()
