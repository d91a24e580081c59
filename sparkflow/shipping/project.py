"""The user's project as it is shipped: its files, sparkflow's own, the Plan, and how the runtime finds them.

Which files of the project are shipped (:func:`project_files`): in a git checkout, what git tracks or would track
(``git ls-files --cached --others --exclude-standard``: untracked files count unless an ignore rule excludes them);
elsewhere, what the project's ``.gitignore`` does not exclude. Then, either way, not what ``.dockerignore``
excludes (gitignore's pattern syntax), hidden files and folders, caches, virtual environments, build output, and
never a declared local source's data: the functions read sources from storage, not from the image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
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
#: A project copy larger than this gets its largest folders named (they may be data the image does not need).
LARGE_CONTEXT_BYTES = 50 * 1024**2


def copy_project(pipeline: Pipeline, plan: Plan, out: Path) -> tuple[list[str], str | None]:
    """Copy the user's project (with the Plan, :data:`PLAN_FILE`) into ``out/project`` and sparkflow into
    ``out/sparkflow``, replacing what was there; return the paths written and the project's requirements file
    (:data:`PROJECT_REQUIREMENTS`, or None when it has none)."""
    root = project_root(pipeline, plan)
    target = out / PROJECT_DIR
    if target.exists():
        shutil.rmtree(target)
    written: list[str] = []
    for relative, path in project_files(pipeline, plan, skip=[out]):
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        written.append(str(destination))
    written.append(write_plan(plan, target))
    written += copy_tree(SPARKFLOW_DIR, out / "sparkflow", skip=[out])
    return written, PROJECT_REQUIREMENTS if (root / PROJECT_REQUIREMENTS).is_file() else None


def project_files(pipeline: Pipeline, plan: Plan, *, skip: Iterable[Path] = ()) -> list[tuple[str, Path]]:
    """(POSIX path relative to the project root, file) of every project file to ship, sorted (see module docs);
    nothing under ``skip`` (the build folder) or under a declared local source."""
    root = project_root(pipeline, plan)
    left_out = {path.resolve() for path in skip} | _local_sources(pipeline, plan)
    found = _git_files(root)
    if found is None:  # not a git checkout: walk the project, as git would with its .gitignore
        ignored = _ignore_spec(root / ".gitignore")
        found = [relative for relative, _ in tree_files(root) if not ignored(relative)]
    docker_ignored = _ignore_spec(root / ".dockerignore")
    kept = []
    for relative in sorted(set(found)):
        path = root / relative
        if docker_ignored(relative) or not _shippable(relative) or not path.is_file():
            continue
        resolved = path.resolve()
        if resolved in left_out or any(parent in left_out for parent in resolved.parents):
            continue
        kept.append((relative, path))
    return kept


def context_summary(out: Path, *, large: int = LARGE_CONTEXT_BYTES) -> list[str]:
    """What to print of the copy of the project in the build context ``out``: its files and bytes, and when it is
    large, its largest top-level folders."""
    folder = out / PROJECT_DIR
    sizes: dict[str, int] = {}
    files = 0
    for path in folder.rglob("*"):
        if path.is_file():
            files += 1
            top = path.relative_to(folder).parts[0] + ("/" if len(path.relative_to(folder).parts) > 1 else "")
            sizes[top] = sizes.get(top, 0) + path.stat().st_size
    total = sum(sizes.values())
    lines = [f"project copy: {files} files, {total / 1024**2:,.1f} MB ({folder})"]
    if total > large:
        largest = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:3]
        named = ", ".join(f"{name} {size / 1024**2:,.1f} MB" for name, size in largest)
        lines.append(
            f"warning: the project copy is over {large / 1024**2:,.0f} MB; the largest parts: {named}. Exclude "
            "what the functions do not import in .dockerignore (or .gitignore)"
        )
    return lines


def _git_files(root: Path) -> list[str] | None:
    """What git tracks or would track under ``root``, relative to it; None when ``root`` is not in a git checkout
    (or git is not installed)."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=False,
        )
    except OSError:
        return None
    if listed.returncode != 0:
        return None
    return [name for name in listed.stdout.decode("utf-8", "surrogateescape").split("\0") if name]


def _ignore_spec(path: Path) -> Any:
    """A predicate on relative POSIX paths: True for what the ignore file at ``path`` excludes (none if missing)."""
    import pathspec

    if not path.is_file():
        return lambda relative: False
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines).match_file


def _shippable(relative: str) -> bool:
    """Not hidden, not a cache, not build output, not bytecode."""
    parts = relative.split("/")
    if any(part.startswith(".") or part in _EXCLUDED_DIRS or part.endswith(".egg-info") for part in parts):
        return False
    return not relative.endswith((".pyc", ".pyo"))


def _local_sources(pipeline: Pipeline, plan: Plan) -> set[Path]:
    """Where the pipeline's local sources are on this machine (their data is never shipped)."""
    folder = Path(pipeline.origin.file).resolve().parent
    found = set()
    for source in plan.sources:
        if "://" in source.uri and not source.uri.startswith("file://"):
            continue
        path = Path(source.uri.removeprefix("file://"))
        found.add((path if path.is_absolute() else folder / path).resolve())
    return found


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


def copy_tree(source: Path, target: Path, *, skip: Iterable[Path] = ()) -> list[str]:
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


def tree_files(source: Path, *, skip: Iterable[Path] = ()) -> Iterator[tuple[str, Path]]:
    """(POSIX path relative to ``source``, file) of a folder's sources, sorted: no hidden folders, caches, virtual
    environments or build output, nothing under ``skip``."""
    left_out = {path.resolve() for path in skip}
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
