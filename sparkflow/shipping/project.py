"""The user's project as it is shipped: its files, sparkflow's own, the Plan, and how the runtime finds them."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import PackageError
from sparkflow.plan import Plan
from sparkflow.plan import project_root as plan_project_root

#: The folder of an image (or of a zip's root) that holds the copy of the user's project.
PROJECT_DIR = "project"
#: The compiled Plan, shipped beside the project's code; the runtime finds it through ``SPARKFLOW_PLAN``.
PLAN_FILE = "sparkflow-plan.json"
#: The project's own requirements, installed into the image after sparkflow's when the project has the file.
PROJECT_REQUIREMENTS = "requirements.txt"
#: The ``.dockerignore`` of a build context: bytecode is compiled in the image, not copied.
DOCKERIGNORE = "**/__pycache__\n**/*.pyc\n"
_EXCLUDED_DIRS = {"__pycache__", "node_modules", "build", "dist", "site-packages"}
#: sparkflow's own package folder, copied beside the project.
SPARKFLOW_DIR = Path(__file__).resolve().parents[1]


def copy_project(pipeline: Pipeline, plan: Plan, out: Path) -> tuple[list[str], str | None]:
    """Copy the user's project (with the Plan, :data:`PLAN_FILE`) into ``out/project`` and sparkflow into
    ``out/sparkflow``, replacing what was there; return the paths written and the project's requirements file
    (:data:`PROJECT_REQUIREMENTS`, or None when it has none)."""
    root = project_root(pipeline, plan)
    written = copy_tree(root, out / PROJECT_DIR, skip=out.resolve())
    written.append(write_plan(plan, out / PROJECT_DIR))
    written += copy_tree(SPARKFLOW_DIR, out / "sparkflow", skip=out.resolve())
    return written, PROJECT_REQUIREMENTS if (root / PROJECT_REQUIREMENTS).is_file() else None


def write_files(out: Path, files: Mapping[str, str]) -> list[str]:
    """Write each text of ``files`` (path relative to ``out`` -> text) with LF line ends; return the paths."""
    written: list[str] = []
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(str(path))
    return written


def project_root(pipeline: Pipeline, plan: Plan) -> Path:
    """The user's project: the folder ``plan.source_file`` is relative to (nearest pyproject.toml or .git)."""
    return Path(plan_project_root(pipeline.origin.file, plan.source_file))


def pipeline_spec(pipeline: Pipeline, plan: Plan, folder: str) -> str:
    """What ``SPARKFLOW_PIPELINE`` says where the project's copy is ``folder``: the file, and the attribute when
    the file has several."""
    path = f"{folder}/{plan.source_file}"
    module = _module_of(pipeline)
    if module is None:
        return path
    found = [value for value in vars(module).values() if isinstance(value, Pipeline)]
    if len({id(value) for value in found}) <= 1:
        return path
    names = sorted(name for name, value in vars(module).items() if value is pipeline)
    if not names:
        raise PackageError(f"{plan.source_file}: pipeline {plan.pipeline!r} is not a module attribute")
    return f"{path}:{names[0]}"


def plan_path(folder: str) -> str:
    """What ``SPARKFLOW_PLAN`` says where the project's copy is ``folder``."""
    return f"{folder}/{PLAN_FILE}"


def write_plan(plan: Plan, folder: Path) -> str:
    """Write ``plan`` as shipped (:data:`PLAN_FILE`) into ``folder``; return its path."""
    path = folder / PLAN_FILE
    path.write_text(plan.to_json(), encoding="utf-8", newline="\n")
    return str(path)


def _module_of(pipeline: Pipeline) -> Any:
    target = os.path.realpath(pipeline.origin.file)
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.realpath(file) == target and any(v is pipeline for v in vars(module).values()):
            return module
    return None


def copy_tree(source: Path, target: Path, *, skip: Path) -> list[str]:
    """Copy the sources of a project (no hidden folders, caches, virtual environments or build output)."""
    if target.exists():
        shutil.rmtree(target)
    written: list[str] = []
    for relative, path in tree_files(source, skip=skip):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        written.append(str(destination))
    return written


def tree_files(source: Path, *, skip: Path, also: Path | None = None) -> Iterator[tuple[str, Path]]:
    """(POSIX path relative to ``source``, file) of a project's sources, sorted: no hidden folders, caches, virtual
    environments or build output, nothing under ``skip`` or ``also``."""
    left_out = {skip, also}
    for folder, dirs, names in os.walk(source):
        here = Path(folder)
        dirs[:] = sorted(
            name
            for name in dirs
            if not name.startswith(".")
            and name not in _EXCLUDED_DIRS
            and not name.endswith(".egg-info")
            and not (here / name / "pyvenv.cfg").exists()
            and (here / name).resolve() not in left_out
        )
        for name in sorted(names):
            if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                continue
            yield (here / name).relative_to(source).as_posix(), here / name
