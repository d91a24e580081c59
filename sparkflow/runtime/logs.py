"""Structured logs and metrics that work with no set-up and no API calls.

One JSON line per event on stderr (CloudWatch Logs Insights and Cloud Logging parse JSON lines; ``severity``
is the field Cloud Logging reads), and on AWS Lambda an Embedded Metric Format line per finished stage, which
CloudWatch turns into metrics (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

METRICS_NAMESPACE = "sparkflow"
# The messages of a local run's first and last lines (``sparkflow run`` writes them; ``sparkflow logs`` reads them).
RUN_START, RUN_END = "run start", "run end"
_STREAM: list[TextIO] = []  # where log lines go when set (the local executor keeps them in the run folder)


def configure(stream: TextIO | None) -> TextIO | None:
    """Send log lines to ``stream`` (None: back to stderr); returns the stream used before."""
    previous = _STREAM[0] if _STREAM else None
    _STREAM[:] = [stream] if stream else []
    return previous


def log(event: str, severity: str = "INFO", stream: TextIO | None = None, **fields: Any) -> None:
    """Write one structured log line."""
    record = {"severity": severity, "message": event, "time": round(time.time(), 3), **fields}
    target = stream or (_STREAM[0] if _STREAM else sys.stderr)
    print(json.dumps(record, default=str, sort_keys=True), file=target, flush=True)


def on_lambda() -> bool:
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def emit_metrics(pipeline: str, node: str, seconds: float, rows: int, size: int, stream: TextIO | None = None) -> None:
    """An EMF line with the stage's duration, rows and bytes; only on Lambda, where CloudWatch reads it."""
    if not on_lambda():
        return
    document = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [["pipeline", "node"]],
                    "Metrics": [
                        {"Name": "StageSeconds", "Unit": "Seconds"},
                        {"Name": "StageRows", "Unit": "Count"},
                        {"Name": "StageBytes", "Unit": "Bytes"},
                    ],
                }
            ],
        },
        "pipeline": pipeline,
        "node": node,
        "StageSeconds": round(seconds, 3),
        "StageRows": rows,
        "StageBytes": size,
    }
    print(json.dumps(document, sort_keys=True), file=stream or sys.stdout, flush=True)
