"""sparkflow's runtime requirements as its metadata pins them: what every image installs."""

from __future__ import annotations

import importlib.metadata

from sparkflow.errors import PackageError


def runtime_requirements() -> list[str]:
    """sparkflow's own dependencies as its metadata pins them (no extras): what the image installs."""
    requirements = importlib.metadata.requires("sparkflow") or []
    return [requirement for requirement in requirements if ";" not in requirement]


def pyspark_version() -> str:
    from packaging.requirements import Requirement

    for line in runtime_requirements():
        requirement = Requirement(line)
        pinned = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if requirement.name.lower() == "pyspark" and pinned:
            return pinned[0]
    raise PackageError("sparkflow's metadata pins no pyspark version: reinstall sparkflow (pip install -e .)")


def requirements_text() -> str:
    """The ``requirements.txt`` of an image: one pinned requirement per line."""
    return "".join(f"{line}\n" for line in runtime_requirements())
