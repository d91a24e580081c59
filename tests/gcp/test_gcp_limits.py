"""The gcp target's limits: each reported as a SparkflowError naming the user's code and how to fix it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.errors import CompileError, SparkflowError
from sparkflow.loading import load_pipeline
from sparkflow.targets import get_target
from sparkflow.targets.gcp import check, limits
from sparkflow.targets.gcp import emit as emit_module
from sparkflow.targets.gcp.emit import emit
from tests.gcp.conftest import EXAMPLES, RESOURCES, compiled


def _parallel_depths(steps: list[dict[str, object]], depth: int = 1) -> list[tuple[int, int]]:
    """(depth, branches) of every parallel step."""
    found = []
    for item in steps:
        ((_, step),) = item.items()
        assert isinstance(step, dict)
        if "parallel" in step:
            branches = step["parallel"]["branches"]
            found.append((depth, len(branches)))
            for branch in branches:
                found += _parallel_depths([branch], depth + 1)
        found += _parallel_depths(step.get("steps", []), depth)
    return found


def test_target_is_registered_with_cloud_run_function_limits() -> None:
    target = get_target("gcp")
    assert (target.name, target.suffix) == ("gcp", ".workflows.yaml")
    assert (target.function_limits.memory_mb.value, target.function_limits.timeout_s.value) == (32_768, 1_800)


def test_stage_longer_than_an_http_call_is_refused_naming_its_line() -> None:
    path = RESOURCES / "long_stage.py"
    with pytest.raises(
        SparkflowError, match=r"stage 'slow': timeout=2,700 s is over the gcp Workflows HTTP request timeout limit"
    ) as raised:
        compile_pipeline(load_pipeline(str(path), "long_stage"), "gcp")
    assert raised.value.origin is not None
    assert (Path(raised.value.origin.file), raised.value.origin.line) == (path, 11)  # the @sf.stage line
    assert limits.HTTP_TIMEOUT_S.source in str(raised.value)


def test_stage_longer_than_an_http_call_runs_as_a_cloud_run_job() -> None:
    plan = plan_pipeline(load_pipeline(str(RESOURCES / "long_stage.py"), "long_job"), "gcp")
    assert [(task.id, task.placement, task.memory_mb) for task in plan.tasks] == [("patient", "container", 8_192)]


def test_too_large_a_source_is_refused() -> None:
    with pytest.raises(CompileError, match=r"the workflow source is [\d,]+ bytes, over the workflow source size limit"):
        compile_pipeline(load_pipeline(str(RESOURCES / "shapes.py"), "wide1500"), "gcp")


@pytest.mark.parametrize(("pipeline", "expected"), [("wide12", [(1, 10), (2, 2), (2, 2)]), ("wide25", None)])
def test_wide_pipelines_get_at_most_ten_branches_per_parallel_step(pipeline: str, expected: object) -> None:
    _, text = compiled(RESOURCES / "shapes.py", pipeline)
    depths = _parallel_depths(yaml.safe_load(text)["main"]["steps"])
    if expected is not None:
        assert depths == expected
    assert all(branches <= 10 and depth <= 2 for depth, branches in depths)


def test_third_level_of_parallel_steps_runs_its_branches_in_turn() -> None:
    _, text = compiled(RESOURCES / "shapes.py", "deep")
    assert _parallel_depths(yaml.safe_load(text)["main"]["steps"]) == [(1, 2), (2, 2)]


def test_breaking_branch_and_depth_limits_is_reported() -> None:
    plan = plan_pipeline(load_pipeline(str(RESOURCES / "shapes.py"), "wide12"), "gcp")
    document = yaml.safe_load(emit(plan))
    outer = document["main"]["steps"][2]["parallel-1"]["parallel"]  # after run-start and run-resumed
    single = outer["branches"].pop()  # the last branch runs one stage
    second_level = outer["branches"][0]["tag-branch"]["steps"][0]["parallel-2"]["parallel"]
    second_level["branches"][0]["tag-branch"]["steps"].append({"too-deep": {"parallel": {"branches": [single] * 2}}})
    outer["branches"] += [single] * 3
    messages = [str(problem) for problem in check.check(plan, yaml.safe_dump(document, sort_keys=False))]
    assert any("has 12 branches" in message for message in messages)
    assert any("is nested 3 deep" in message for message in messages)


def test_kept_http_response_is_reported_as_a_variable_risk() -> None:
    plan, text = compiled(EXAMPLES[0])
    document = yaml.safe_load(text)
    whole = next(task.id for task in plan.tasks if task.fanout is None)
    step = next(step for step in _all_steps(document["main"]["steps"]) if whole in step)
    step[whole]["result"] = "response"  # the stage's call, keeping what its subworkflow returns
    problems = check.check(plan, yaml.safe_dump(document, sort_keys=False))
    assert [p.message for p in problems] == [
        f"pipeline {plan.pipeline!r}: the workflow keeps variable 'response', which may grow past the "
        f"{limits.VARIABLES_BYTES.describe()}"
    ]


def test_steps_estimate_counts_retries_and_the_predicate() -> None:
    split, _ = compiled(EXAMPLES[-1])  # wordcount: two tasks in a row (words runs in counts), retries=2 each
    # run them whole here, on functions (top reads 4 GB of counts' output: the place pass puts it on a job)
    whole = tuple(dataclasses.replace(task, fanout=None, fused=(), placement="function") for task in split.tasks)
    text = emit(dataclasses.replace(split, tasks=whole))
    assert [task.retries for task in whole] == [2, 2]
    # the run's publish call: the step, 3 attempts asking the 5-step predicate call, 2 re-runs, the raise
    post = 1 + 3 * 5 + 2 + 1
    stage = 1 + (1 + post + 1)  # the call of the stage's subworkflow: its event, its post, its return
    start = 2  # run-start, run-resumed
    assert check.estimate_steps(yaml.safe_load(text)) == start + 2 * stage + post + 1
    assert check.estimate_steps(yaml.safe_load(text)) < limits.STEPS_PER_EXECUTION.value


def test_steps_estimate_of_a_split_stage_counts_its_costlier_fan_out() -> None:
    plan, _ = compiled(EXAMPLES[-1])  # wordcount: counts (key, words fused into it) split, top whole
    # top on a function here (it reads 4 GB of counts' output: the place pass puts it on a job)
    text = emit(
        dataclasses.replace(plan, tasks=tuple(dataclasses.replace(t, placement="function") for t in plan.tasks))
    )
    post = 1 + 3 * 5 + 2 + 1  # a post with retries=2: the step, 3 asks of the 5-step predicate, 2 re-runs, the raise
    call = 1 + (1 + post + 1)  # a call of the stage subworkflow: its event, its post, its return
    per_for = 1 + emit_module.PARALLEL_FOR_MAX * call  # the for step, then one call per chunk, at most 20
    per_job = 1 + (1 + (1 + check._CONNECTOR_POLLS + 1))  # the call: the event, the job with its polling, the raise
    fan = 1 + (1 + max(per_for, per_job))  # the call of the fan subworkflow: a switch runs one of its sides
    # the call: split, committed?, map, the reduce switch (partition, reduce), commit
    counts = 1 + (call + 1 + fan + (1 + call + fan) + call)
    start = 2  # run-start, run-resumed
    assert check.estimate_steps(yaml.safe_load(text)) == start + counts + call + post + 1  # ..., top, publish
    assert check.estimate_steps(yaml.safe_load(text)) < limits.STEPS_PER_EXECUTION.value


def test_long_expressions_are_reported() -> None:
    plan, text = compiled(EXAMPLES[0])
    long_text = text.replace("${run.id}", "${run.id" + ' + ""' * 100 + "}")
    assert any("expression length limit" in p.message for p in check.check(plan, long_text))


def _all_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every step, nested ones (sequences, parallel branches) included."""
    for item in steps:
        yield item
        ((_, body),) = item.items()
        yield from _all_steps(body.get("steps", []))
        for branch in body.get("parallel", {}).get("branches", ()):
            yield from _all_steps([branch])
