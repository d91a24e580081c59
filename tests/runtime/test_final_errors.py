"""One list says which errors another attempt cannot fix (protocol.FINAL_ERRORS), and every place that decides
whether to try again follows it: the ASL Retry of every task, the container entry's exit code, the HTTP entry's
status (which the Workflows retry predicate does not retry), and `sparkflow run`'s retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import compile_pipeline
from sparkflow.errors import (
    ConfinementError,
    EngineUnsupported,
    EnvironmentProblem,
    EventError,
    InputError,
    SparkflowError,
    StorageError,
)
from sparkflow.loading import load_pipeline
from sparkflow.runtime import http
from sparkflow.runtime.__main__ import answer
from sparkflow.runtime.failures import RetryableStageError, StageError
from sparkflow.runtime.local import _retrying
from sparkflow.runtime.protocol import FINAL_ERRORS, final_errors, is_final
from sparkflow.targets.gcp.emit import retry_predicate

ROOT = Path(__file__).resolve().parents[2]
FINAL: list[SparkflowError] = [
    EventError("bad event"),
    InputError("a corrupt input"),
    ConfinementError("outside the storage root"),
    StageError("stage 'x' failed: ValueError: boom"),
    EngineUnsupported("no such API on DuckDB"),
]
RETRIED: list[SparkflowError] = [
    StorageError("connection reset"),
    EnvironmentProblem("the engine could not start"),
    RetryableStageError("stage 'x' failed: ConnectionError: the service did not answer"),
]


def test_the_list_names_every_final_error_class() -> None:
    assert [type(error).__name__ for error in FINAL] == list(FINAL_ERRORS)
    assert all(is_final(error) for error in FINAL) and not any(is_final(error) for error in RETRIED)


def tasks(states: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in states.values():
        if state["Type"] == "Task":
            yield state
        for branch in state.get("Branches", ()):
            yield from tasks(branch["States"])
        if "ItemProcessor" in state:
            yield from tasks(state["ItemProcessor"]["States"])


@pytest.mark.parametrize(
    ("pipeline", "engine"),
    [(ROOT / "examples/wordcount/pipeline.py", "spark"), (ROOT / "tests/ship/resources/ducks/pipeline.py", "duckdb")],
)
def test_every_state_machine_task_retries_all_but_the_final_errors(pipeline: Path, engine: str) -> None:
    document = json.loads(compile_pipeline(load_pipeline(str(pipeline)), "aws"))
    found = list(tasks(document["States"]))
    assert found
    for task in found:
        retriers = task["Retry"]
        never = [retrier for retrier in retriers if retrier.get("MaxAttempts") == 0]
        # The run's publish task runs no DataFrame code: no engine's own final errors.
        runs_on = "spark" if task["Parameters"]["Payload"].get("phase") == "publish" else engine
        assert [retrier["ErrorEquals"] for retrier in never] == [list(final_errors(runs_on))], task
        assert retriers[-1]["ErrorEquals"] == ["States.ALL"]  # anything else: the stage's retries=
        assert retriers.index(never[0]) < len(retriers) - 1  # Step Functions uses the first retrier that matches


@pytest.mark.parametrize("error", FINAL + RETRIED, ids=lambda error: type(error).__name__)
def test_exit_codes_http_statuses_and_sparkflow_run_follow_the_list(error: SparkflowError) -> None:
    final = is_final(error)

    def fail() -> dict[str, Any]:
        raise error

    assert answer(fail) == (2 if final else 1)

    statuses: list[str] = []
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "2", "wsgi.input": _Body(b"{}")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(http, "deployed_config", lambda: None)
        patch.setattr(http, "handle_event", lambda event, config: fail())
        http.app(environ, lambda status, headers: statuses.append(status))
    code = int(statuses[0].split()[0])
    # The Workflows retry predicate retries 429 and 5xx: a final error's 4xx ends the call.
    condition = retry_predicate()["steps"][1]["http-status"]["switch"][0]["condition"]
    assert condition == "${code == 429 or code >= 500}"
    assert (400 <= code < 500 and code != 429) if final else code >= 500

    calls: list[int] = []

    def attempt() -> dict[str, Any]:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        _retrying(attempt, retries=2)
    assert len(calls) == (1 if final else 3)


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, length: int) -> bytes:
        return self.data[:length]
