"""Nothing secret goes into generated definitions, logs or results: credential-shaped values set in the
environment while compiling and running never show up in what sparkflow writes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.runtime.local import run_plan
from sparkflow.targets import target_names
from sparkflow.targets.local import LOCAL
from tests.examples import EXAMPLES, example, example_ids

SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAZZZZSPARKFLOWTEST",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSPARKFLOWKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEPARKFLOW-session-token-value",
    "GOOGLE_API_KEY": "AIzaSyD-sparkflow-test-api-key-000000",
}
ACCOUNT_ID = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")  # an AWS account number baked into an ARN


@pytest.mark.parametrize("path", EXAMPLES, ids=example_ids())
def test_definitions_hold_no_secrets_and_no_account(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for target in target_names():
        text = compile_pipeline(load_pipeline(str(path)), target)
        assert not [name for name, value in SECRETS.items() if value in text], target
        assert not ACCOUNT_ID.search(text), f"{target}: an account number in the definition"


@pytest.mark.spark
def test_logs_results_and_manifests_hold_no_secrets(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    pipeline = load_pipeline(str(example("wordcount")))
    summary = run_plan(plan_pipeline(pipeline, LOCAL), pipeline, storage_root=str(tmp_path / "store"))
    assert summary.status == "succeeded"
    written = [json.dumps(summary.to_dict(), default=str)]
    written += [
        path.read_text(errors="replace")
        for path in (tmp_path / "store").rglob("*")
        if path.is_file() and path.suffix in (".json", ".jsonl")
    ]
    assert len(written) > 3, "the run's logs and manifests were scanned"
    leaked = [name for name, value in SECRETS.items() if any(value in text for text in written)]
    assert leaked == []
