"""Shared fixtures: one SparkSession for the whole test session (the runtime's own), and example helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The session's moto server and the Lambda double (fixtures moto_aws, lambda_double) for every test module.
pytest_plugins = ["tests.aws_moto"]


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The runtime's SparkSession (the same one the runtime uses in this process), started once."""
    from sparkflow.runtime import spark as engine

    yield engine.session(2048)


@pytest.fixture(autouse=True)
def _quiet_runtime_logs(tmp_path: Path) -> Iterator[None]:
    """Runtime log lines of a test go to a file, not the test output."""
    from sparkflow.runtime import logs

    with open(tmp_path / "runtime-logs.jsonl", "w", encoding="utf-8") as handle:
        previous = logs.configure(handle)
        try:
            yield
        finally:
            logs.configure(previous)


os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
