"""``sparkflow init``: a new project that works at once — a small pipeline with sample data, its test, its compiled
definitions, and a CI workflow that checks them.

The project is written into a temporary folder beside the destination, compiled there, and only then moved into
place, so a failure (a template, the compiler) leaves nothing half-written behind.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from importlib.metadata import version

from sparkflow.errors import SparkflowError

# Each file of a new project: its path in the project, and the template under templates/ it is made from (a .j2
# template is rendered with jinja2; any other file is copied as it is).
FILES: tuple[tuple[str, str], ...] = (
    ("pyproject.toml", "pyproject.toml.j2"),
    ("pipeline.py", "pipeline.py.j2"),
    ("data/orders.csv", "orders.csv"),
    ("tests/test_pipeline.py", "test_pipeline.py.j2"),
    (".github/workflows/sparkflow.yml", "sparkflow.yml.j2"),
    (".gitignore", "gitignore"),
    ("README.md", "README.md.j2"),
)
# The pipeline the templates declare (the function decorated with @sf.pipeline in pipeline.py.j2).
PIPELINE = "revenue"
# What an existing folder may already hold and still count as empty: a fresh `git init`.
_ALLOWED = frozenset({".git"})


def write_project(folder: str) -> list[str]:
    """Write a new project into ``folder`` (made when missing) and return the paths written, relative to it.

    Raises:
        SparkflowError: ``folder`` is a file, or a folder that already holds something.
    """
    destination = os.path.abspath(folder)
    _refuse_occupied(folder if folder not in ("", ".") else destination, destination)  # "." names no folder
    parent = os.path.dirname(destination)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".sparkflow-init-", dir=parent)  # same file system: the moves are renames
    try:
        written = _write_files(staging, _project_name(destination))
        written += _write_definitions(staging)
        _move_into(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        while staging in sys.path:  # loading the pipeline put its folder there, which is gone now
            sys.path.remove(staging)
    return sorted(written)


def _refuse_occupied(folder: str, destination: str) -> None:
    if os.path.exists(destination) and not os.path.isdir(destination):
        raise SparkflowError(f"{folder}: is a file, not a folder: give `sparkflow init` a new or empty folder")
    present = sorted(set(os.listdir(destination)) - _ALLOWED) if os.path.isdir(destination) else []
    if present:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise SparkflowError(
            f"{folder}: the folder is not empty ({shown}): `sparkflow init` writes only into a new or empty folder, "
            "so nothing of yours is overwritten. Give it a new folder, e.g. `sparkflow init my-pipeline`"
        )


def _project_name(destination: str) -> str:
    """The folder's name as a Python project name (letters, digits, '.', '_' and '-'; PEP 508)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", os.path.basename(destination)).strip("-._")
    return name or "pipeline"


def _write_files(root: str, name: str) -> list[str]:
    from sparkflow.targets import target_names
    from sparkflow.targets.templating import render

    values = {
        "project": name,
        "pipeline": PIPELINE,
        "version": version("sparkflow"),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "targets": list(target_names()),
    }
    templates = os.path.join(os.path.dirname(__file__), "templates")
    for path, template in FILES:
        location = os.path.join(root, *path.split("/"))
        os.makedirs(os.path.dirname(location), exist_ok=True)
        if template.endswith(".j2"):
            with open(location, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(render(__file__, template, **values))
        else:
            shutil.copyfile(os.path.join(templates, template), location)
    return [path for path, _ in FILES]


def _write_definitions(root: str) -> list[str]:
    """Compile the new pipeline for every target into its definitions folder, as `sparkflow compile` does: the
    project's CI (`compile --check`) passes from its first commit."""
    from sparkflow.compiler import definition_text, plan_pipeline
    from sparkflow.loading import load_pipeline
    from sparkflow.outputs import default_out_dir, definition_path
    from sparkflow.targets import get_target, target_names

    pipeline = load_pipeline(os.path.join(root, "pipeline.py"))
    folder = default_out_dir(pipeline.origin.file)
    os.makedirs(folder, exist_ok=True)
    written = []
    for target in target_names():
        path = definition_path(folder, pipeline.name, get_target(target).suffix)
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(definition_text(plan_pipeline(pipeline, target), target))
        written.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return written


def _move_into(staging: str, destination: str) -> None:
    if not os.path.exists(destination):
        os.rename(staging, destination)  # the caller's cleanup then finds nothing to remove
        return
    for entry in os.listdir(staging):  # an empty folder (or one holding only .git): each entry is one rename
        os.rename(os.path.join(staging, entry), os.path.join(destination, entry))
