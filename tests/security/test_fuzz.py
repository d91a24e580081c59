"""Fuzzing what users type and what events carry: every bad value ends in a SparkflowError with a message,
never another exception, and a bad event writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import example as also_try
from hypothesis import strategies as st

from sparkflow.errors import SparkflowError
from sparkflow.loading import load_pipeline
from sparkflow.runtime.execute import handle_event
from sparkflow.units import parse_duration, parse_size
from tests.examples import example
from tests.runtime.configs import runtime_config


def example_values(values: list[Any]) -> Any:
    """Always try ``values`` too (huge numbers once overflowed float conversion)."""

    def decorate(test: Any) -> Any:
        for value in values:
            test = also_try(value)(test)
        return test

    return decorate


ANYTHING = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.from_regex(r"\A\d{1,400}(\.\d{1,40})?\s?(B|KB|MB|GB|TB|s|m|h|ms|d|x)?\Z"),
)


HUGE = ["9" * 400 + "GB", "9" * 400 + "s", "9" * 400, 10**30, "1" + "0" * 30 + "h"]


@settings(max_examples=300, deadline=None)
@given(ANYTHING)
@example_values(HUGE)
def test_sizes_parse_or_fail_clearly(value: Any) -> None:
    try:
        parsed = parse_size(value, field="size")
    except SparkflowError as error:
        assert "size=" in str(error)
    else:
        assert isinstance(parsed, int) and parsed > 0


@settings(max_examples=300, deadline=None)
@given(ANYTHING)
@example_values(HUGE)
def test_durations_parse_or_fail_clearly(value: Any) -> None:
    try:
        parsed = parse_duration(value, field="timeout")
    except SparkflowError as error:
        assert "timeout=" in str(error)
    else:
        assert isinstance(parsed, int) and parsed > 0


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
EVENTS = (
    st.fixed_dictionaries(
        {},
        optional={
            "version": st.one_of(st.just(1), JSON),
            "pipeline": st.one_of(st.just("wordcount"), JSON),
            "node": st.one_of(st.sampled_from(["words", "counts", "nope", "../x", ""]), JSON),
            "run": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "id": st.one_of(st.text(max_size=20), JSON),
                        "storage": st.one_of(st.sampled_from(["/", "/etc/", "s3://b/", "../", ""]), JSON),
                        "params": JSON,
                    },
                ),
                JSON,
            ),
            "attempt": JSON,
            "extra": JSON,
        },
    )
    | JSON
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(EVENTS)
def test_bad_events_fail_clearly_and_write_nothing(tmp_path: Path, event: Any) -> None:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    config = runtime_config(pipeline=load_pipeline(str(example("wordcount"))), storage_root=str(root))
    if _could_be_valid(event):
        return  # a valid event would run a stage: not what this test is about
    try:
        handle_event(event, config)
    except SparkflowError as error:
        assert str(error)
    else:
        raise AssertionError(f"accepted {json.dumps(event)[:200]}")
    assert not any(root.iterdir())


def _could_be_valid(event: Any) -> bool:
    if not isinstance(event, dict) or event.get("version") != 1 or event.get("pipeline") != "wordcount":
        return False
    run = event.get("run")
    return isinstance(run, dict) and run.get("storage") in ("/",) and event.get("node") in ("words", "counts")
