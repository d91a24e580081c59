"""``sparkflow init`` as a new user meets it: sparkflow's wheel installed in a fresh virtualenv, a project made
with it, run with it, and the project's own tests passing there.

Offline by design (tests run where no package index may be reached, and must not depend on one): the wheel is built
from this checkout with ``pip wheel --no-deps --no-build-isolation --no-index`` (the build backend is the one in this
environment), installed into the fresh virtualenv with ``--no-deps --no-index``, and the fresh virtualenv gets
sparkflow's dependencies from a ``.pth`` file naming this environment's site-packages. Python reads a ``.pth`` only
in a site-packages folder itself, not in folders it names, so this environment's editable install of sparkflow
(a ``.pth`` hook in its site-packages) stays inert: the fresh virtualenv imports sparkflow from the wheel, which
the test checks, so a template missing from the wheel's package data fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]


def run(command: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


def fresh_virtualenv_with_the_wheel(tmp_path: Path) -> Path:
    """A new virtualenv holding sparkflow's wheel built from this checkout; its ``bin`` folder."""
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ and egg-info there
    shutil.copytree(CHECKOUT / "sparkflow", source / "sparkflow", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, source / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    built = run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), "."], source)
    assert built.returncode == 0, built.stderr
    venv = tmp_path / "fresh"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    (wheel,) = wheels.glob("sparkflow-*.whl")
    installed = run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], tmp_path)
    assert installed.returncode == 0, installed.stderr
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path)
    Path(site.stdout.strip(), "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = run([str(python), "-c", "import sparkflow; print(sparkflow.__file__)"], tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the wheel's, not this checkout's
    return venv / "bin"


@pytest.mark.long  # about 80 s: the wheel, a run, and the project's tests (two more Spark runs)
def test_a_new_project_runs_and_passes_its_tests_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    bin_folder = fresh_virtualenv_with_the_wheel(tmp_path)
    made = run([str(bin_folder / "sparkflow"), "init", "demo"], tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "demo"
    ran = run([str(bin_folder / "sparkflow"), "run", "pipeline.py"], project)
    assert ran.returncode == 0, ran.stderr
    assert "succeeded" in ran.stdout
    tested = run([str(bin_folder / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], project, timeout=600)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "3 passed" in tested.stdout
