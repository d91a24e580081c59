"""What `sparkflow package` copies of the user's project: what git tracks or would track (in a checkout) or what
.gitignore leaves (elsewhere), minus .dockerignore, hidden files, caches and a declared local source's data; and the
size of the copy it prints, naming the largest folders of a large one."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from sparkflow.compiler import plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.shipping.project import context_summary, copy_project, project_files

PIPELINE = textwrap.dedent(
    """
    from pyspark.sql import DataFrame
    import sparkflow as sf
    from helpers import shout

    lines = sf.source("lines", "inputs/lines.txt", format="text")

    @sf.stage
    def loud(lines: DataFrame) -> DataFrame:
        return shout(lines)

    @sf.pipeline(storage="s3://bucket/sparkflow/")
    def project():
        return loud(lines)
    """
)


def make_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "pyproject.toml": "[project]\nname = 'mine'\n",
        "pipeline.py": PIPELINE,
        "helpers.py": "def shout(frame):\n    return frame\n",
        "inputs/lines.txt": "a local source: its data is read from storage, never shipped\n",
        "data/big.parquet": "data the .gitignore excludes\n",
        "notes/todo.md": "what the .dockerignore excludes\n",
        "run.log": "a log .gitignore excludes\n",
        "lib/util.py": "VALUE = 1\n",
        ".env": "SECRET=1\n",
        "lib/__pycache__/util.cpython-311.pyc": "bytecode",
        ".gitignore": "data/\n*.log\n",
        ".dockerignore": "notes/\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    with open(root / "data" / "big.parquet", "r+b") as data:
        data.truncate(100 * 1024**2)  # a 100 MB ignored data folder (sparse: no disk written)
    return root / "pipeline.py"


SHIPPED = ["helpers.py", "lib/util.py", "pipeline.py", "pyproject.toml"]


def shipped(path: Path) -> list[str]:
    pipeline = load_pipeline(str(path))
    return [relative for relative, _ in project_files(pipeline, plan_pipeline(pipeline, "aws"))]


def test_outside_git_the_gitignore_and_dockerignore_decide(tmp_path: Path) -> None:
    assert shipped(make_project(tmp_path / "project")) == SHIPPED


def test_in_a_git_checkout_what_git_tracks_or_would_track(tmp_path: Path) -> None:
    path = make_project(tmp_path / "project")
    git = ["git", "-C", str(path.parent), "-c", "user.email=a@b.c", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "pipeline.py", "helpers.py", "pyproject.toml", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "start"], check=True)
    (path.parent / "data" / "tracked.csv").write_text("a tracked file in an ignored folder is shipped\n")
    subprocess.run([*git, "add", "-f", "data/tracked.csv"], check=True)
    # lib/util.py is untracked and not ignored: shipped, as the image build would need it
    assert shipped(path) == ["data/tracked.csv", *SHIPPED]


def test_the_build_context_holds_the_project_and_its_size_is_printed(tmp_path: Path) -> None:
    path = make_project(tmp_path / "project")
    pipeline = load_pipeline(str(path))
    out = tmp_path / "build"
    copy_project(pipeline, plan_pipeline(pipeline, "aws"), out)
    copied = sorted(p.relative_to(out / "project").as_posix() for p in (out / "project").rglob("*") if p.is_file())
    assert copied == sorted([*SHIPPED, "sparkflow-plan.json"])
    (lines,) = context_summary(out)
    assert lines.startswith("project copy: 5 files, 0.0 MB")
    (out / "project" / "lib" / "model.bin").write_bytes(b"\0" * 3 * 1024**2)
    summary, warning = context_summary(out, large=2 * 1024**2)
    assert summary.startswith("project copy: 6 files, 3.0 MB")
    assert warning.startswith("warning: the project copy is over 2 MB; the largest parts: lib/ 3.0 MB, ")
    assert warning.endswith("Exclude what the functions do not import in .dockerignore (or .gitignore)")


@pytest.mark.parametrize("target", ["aws", "gcp"])
def test_package_prints_the_size_of_the_project_copy(tmp_path: Path, target: str) -> None:
    from click.testing import CliRunner

    from sparkflow.cli import main

    path = make_project(tmp_path / "project")
    storage = ["--storage-root", "gs://bucket/sparkflow/"] if target == "gcp" else []
    result = CliRunner().invoke(
        main, ["package", str(path), "--target", target, "--out", str(tmp_path / "b"), *storage]
    )
    assert result.exit_code == 0, result.output
    assert "project copy: 5 files, 0.0 MB" in result.stdout
