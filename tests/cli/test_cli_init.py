"""``sparkflow init``: the files of a new project, its definitions current from the start, and the refusal of a
folder that already holds something (nothing written, the folder named, how to go on)."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from sparkflow.cli import main
from sparkflow.loading import load_pipeline
from sparkflow.starter import FILES

PROJECT_FILES = sorted(
    [path for path, _ in FILES] + ["definitions/revenue.asl.json", "definitions/revenue.workflows.yaml"]
)


def invoke(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "80"}).invoke(main, list(args), catch_exceptions=False)


def files_under(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def test_init_writes_a_project_whose_definitions_are_current(tmp_path: Path) -> None:
    parent = tmp_path / "work"
    project = parent / "demo"
    done = invoke("init", str(project))
    assert done.exit_code == 0, done.output
    assert files_under(project) == PROJECT_FILES
    assert [path.name for path in parent.iterdir()] == ["demo"]  # no staging folder left beside it
    assert "sparkflow run pipeline.py" in done.output
    config = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["project"]["name"] == "demo"
    assert config["project"]["dependencies"] == [f"sparkflow=={version('sparkflow')}"]
    for target in ("aws", "gcp"):
        checked = invoke("compile", str(project / "pipeline.py"), "--target", target, "--check")
        assert checked.exit_code == 0, checked.output
    assert load_pipeline(str(project / "pipeline.py")).name == "revenue"
    assert ".sparkflow/" in (project / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_the_ci_workflow_checks_both_targets_and_verifies(tmp_path: Path) -> None:
    invoke("init", str(tmp_path / "demo"))
    workflow = yaml.safe_load((tmp_path / "demo" / ".github" / "workflows" / "sparkflow.yml").read_text())
    commands = [step["run"] for step in workflow["jobs"]["check"]["steps"] if "run" in step]
    assert commands == [
        'pip install -e ".[test]"',
        "sparkflow compile pipeline.py --target aws --check",
        "sparkflow compile pipeline.py --target gcp --check",
        "sparkflow verify pipeline.py",
        "pytest",
    ]


def test_init_writes_into_the_current_folder_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "my.pipeline"
    (here / ".git").mkdir(parents=True)  # a fresh `git init` is still an empty folder
    monkeypatch.chdir(here)
    done = invoke("init")
    assert done.exit_code == 0, done.output
    assert "wrote pipeline.py" in done.output
    assert 'name = "my.pipeline"' in (here / "pyproject.toml").read_text(encoding="utf-8")


def test_init_refuses_a_folder_that_is_not_empty_and_writes_nothing(tmp_path: Path) -> None:
    project = tmp_path / "work" / "mine"
    project.mkdir(parents=True)
    (project / "notes.txt").write_text("keep me", encoding="utf-8")
    done = invoke("init", str(project))
    assert done.exit_code == 2
    assert f"error: {project}: the folder is not empty (notes.txt)" in done.output
    assert "Give it a new folder, e.g. `sparkflow init my-pipeline`" in done.output
    assert files_under(project) == ["notes.txt"]
    assert [path.name for path in project.parent.iterdir()] == ["mine"]


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("", encoding="utf-8")
    done = invoke("init", str(tmp_path / "taken"))
    assert done.exit_code == 2
    assert "taken: is a file, not a folder: give `sparkflow init` a new or empty folder" in done.output


def test_init_in_a_folder_that_is_not_empty_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = tmp_path / "project"
    (here / "src").mkdir(parents=True)
    (here / "code.py").write_text("", encoding="utf-8")
    monkeypatch.chdir(here)
    done = invoke("init")
    assert done.exit_code == 2
    assert f"error: {here}: the folder is not empty (code.py, src)" in done.output
