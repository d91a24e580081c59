"""`sparkflow start --param`: the values are checked against the Plan before anything is sent, the execution input
carries every value (defaults included), and `status` shows them."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.targets.aws.watch import start, status
from sparkflow.targets.runs import status_table
from tests.aws_moto import MotoAws
from tests.examples import example

TOP_WORDS = str(example("top-words"))


@pytest.fixture
def recorder(monkeypatch: Any) -> Any:
    from sparkflow import targets
    from tests.ship import recording_target

    monkeypatch.setitem(targets._REGISTRY, "recorder", "tests.ship.recording_target")
    monkeypatch.setattr(recording_target.TARGET, "calls", [])
    return recording_target.TARGET


def test_start_sends_every_value_converted_by_its_type(recorder: Any) -> None:
    result = CliRunner().invoke(main, ["start", TOP_WORDS, "--target", "recorder", "--param", "n=2"])
    assert result.exit_code == 0, result.output
    [options] = [given for name, given in recorder.calls if name == "start"]
    assert dict(options.params) == {"min_length": 1, "n": 2}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("n=abc", r"top-words/pipeline.py:\d+: --param n=abc: parameter 'n' is an int: give a whole number"),
        ("m=5", r"--param m=5: pipeline 'top-words' has no parameter 'm' \(its parameters: min_length, n\)"),
    ],
)
def test_start_refuses_a_bad_param_before_anything_is_sent(recorder: Any, given: str, message: str) -> None:
    result = CliRunner().invoke(main, ["start", TOP_WORDS, "--target", "recorder", "--param", given])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and re.search(message, result.stderr), result.stderr
    assert recorder.calls == []


@pytest.mark.moto
def test_the_execution_input_carries_the_values_and_status_shows_them(moto_aws: MotoAws) -> None:
    definition = {"StartAt": "done", "States": {"done": {"Type": "Pass", "End": True}}}
    machine = moto_aws.create_state_machine(f"params-{uuid.uuid4().hex[:6]}", json.dumps(definition))
    execution = start(machine, {"books": "s3://b/books/"}, clients=moto_aws.client, params={"n": 2, "min_length": 1})
    described = moto_aws.client("stepfunctions").describe_execution(executionArn=execution)
    sent = json.loads(described["input"])
    assert sent == {"sources": {"books": "s3://b/books/"}, "params": {"n": 2, "min_length": 1}}
    shown = status(execution, clients=moto_aws.client)
    assert shown.params == {"n": 2, "min_length": 1}
    assert "(n=2, min_length=1)" in str(status_table(shown).title)


def test_status_of_a_run_without_params_shows_none() -> None:
    from sparkflow.targets.aws.watch import _params_of

    assert _params_of(None) == {} and _params_of('{"sources": {}}') == {} and _params_of("not json") == {}
