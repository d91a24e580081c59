"""Where compiled definitions go: ``--out``, else ``[tool.sparkflow] out`` in the nearest pyproject.toml
(relative to that file), else the pipeline file's own folder."""

from __future__ import annotations

import os
import tomllib

from sparkflow.errors import SparkflowError


def default_out_dir(pipeline_file: str) -> str:
    folder = os.path.dirname(os.path.abspath(pipeline_file))
    probe = folder
    while True:
        candidate = os.path.join(probe, "pyproject.toml")
        if os.path.isfile(candidate):
            configured = _configured_out(candidate)
            return os.path.join(probe, configured) if configured else folder
        parent = os.path.dirname(probe)
        if parent == probe:
            return folder
        probe = parent


def _configured_out(pyproject: str) -> str | None:
    try:
        with open(pyproject, "rb") as handle:
            config = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise SparkflowError(f"{pyproject}: cannot be read: {error}") from error
    value = config.get("tool", {}).get("sparkflow", {}).get("out")
    if value is not None and not isinstance(value, str):
        raise SparkflowError(f"{pyproject}: [tool.sparkflow] out must be a folder path string")
    return value


def definition_path(out_dir: str, pipeline_name: str, suffix: str) -> str:
    return os.path.join(out_dir, f"{pipeline_name}{suffix}")
