"""A pipeline of 1,000 stages, generated here, compiles for aws into one valid-looking state machine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import sparkflow as sf
from sparkflow.compiler import compile_pipeline
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import CompileError


def identity(frame: Any) -> Any:
    return frame


def join(*frames: Any) -> Any:
    return frames[0]


def chain(stages: int) -> Pipeline:
    data = sf.source("data", "s3://bucket/data/", format="parquet")
    declared = [sf.stage(name=f"step_{index:04d}")(identity) for index in range(stages)]

    def body() -> Any:
        output = data
        for item in declared:
            output = item(output)
        return output

    return sf.pipeline(name="long_chain")(body)


def fan(stages: int) -> Pipeline:
    data = sf.source("data", "s3://bucket/data/", format="parquet")
    first = sf.stage(name="first")(identity)
    middle = [sf.stage(name=f"part_{index:04d}")(identity) for index in range(stages - 2)]
    last = sf.stage(name="last")(join)

    def body() -> Any:
        start = first(data)
        return last(*[item(start) for item in middle])

    return sf.pipeline(name="wide_fan")(body)


def caterpillar(stages: int) -> Pipeline:
    """A chain whose every stage also feeds a side stage: series-parallel, but nested one level per pair."""
    data = sf.source("data", "s3://bucket/data/", format="parquet")
    spine = [sf.stage(name=f"spine_{index:04d}")(identity) for index in range(stages // 2)]
    legs = [sf.stage(name=f"leg_{index:04d}")(identity) for index in range(stages // 2)]

    def body() -> Any:
        output, sinks = data, []
        for spine_stage, leg_stage in zip(spine, legs, strict=True):
            output = spine_stage(output)
            sinks.append(leg_stage(output))
        return sinks

    return sf.pipeline(name="caterpillar")(body)


def states(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, state, the States object it lives in), branches included."""
    for name, state in document["States"].items():
        yield name, state, document["States"]
        for branch in state.get("Branches", ()):
            yield from states(branch)


@pytest.mark.parametrize("shape", [chain, fan, caterpillar], ids=["chain", "fan", "caterpillar"])
def test_a_thousand_stages_compile_for_aws(shape: Any) -> None:
    text = compile_pipeline(shape(1000), "aws")
    document = json.loads(text)
    found = list(states(document))
    tasks = [name for name, state, _ in found if state["Type"] == "Task"]
    assert len(tasks) == len(set(tasks)) == 1001  # a task per stage, and Run-publish
    assert "Run-publish" in tasks
    names = [name for name, _, _ in found]
    assert len(names) == len(set(names))  # state names are unique in the whole state machine
    for _, state, scope in found:  # every transition stays inside its own States object
        for target in [state.get("Next"), *(catch["Next"] for catch in state.get("Catch", ()))]:
            assert target is None or target in scope
    assert len(json.dumps(document, separators=(",", ":")).encode()) <= 1_048_576


def test_a_chain_over_the_definition_limit_is_refused_with_the_reason() -> None:
    with pytest.raises(CompileError, match=r"state machine definition is [\d,]+ bytes minified, over the .*1,048,576"):
        compile_pipeline(chain(3_000), "aws")
