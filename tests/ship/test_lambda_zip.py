"""``sparkflow package --engine duckdb``: a plain Lambda .zip (no image, no Java, no pyspark) whose stages run in an
interpreter that sees nothing but the zip and the standard library; its template passes cfn-lint; the closure
comes from distributions fit for the Lambda runtime, and the size is checked against Lambda's 250 MB."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.api import lint
from click.testing import CliRunner

from sparkflow.cli import main
from sparkflow.compiler import compile_pipeline, plan_pipeline
from sparkflow.loading import load_pipeline
from sparkflow.targets.aws import lambda_zip
from sparkflow.targets.aws.lambda_zip import LambdaRuntime, ZipError, ZipPackage
from sparkflow.targets.aws.template import ZipCode, template_text
from tests.examples import EXAMPLES, example_ids
from tests.ship.conftest import RESOURCES, Compiled, compiled


def this_machine() -> LambdaRuntime:
    """A stand-in runtime with this Python and this machine's glibc, so the zip's binaries load here.

    The wheels installed here (manylinux_2_27 / 2_28) are too new for Lambda's python3.11 (Amazon Linux 2,
    glibc 2.26), which ``test_platform_check_*`` shows; what this stand-in proves is the zip's content.
    """
    glibc = os.confstr("CS_GNU_LIBC_VERSION") or "glibc 2.17"
    major, minor = (int(part) for part in glibc.split()[1].split(".")[:2])
    return LambdaRuntime(
        f"python{sys.version_info.major}.{sys.version_info.minor}", sys.version_info[:2], (major, minor), "here"
    )


@pytest.fixture(scope="module")
def ducks() -> Compiled:
    return compiled("ducks")


def own_project(folder: Path) -> Compiled:
    """The ducks pipeline copied into ``folder`` as a project of its own: this repository, its project where it
    lies, would go into the zip whole, and changes while tests run."""
    shutil.copytree(RESOURCES / "ducks", folder)
    (folder / "pyproject.toml").write_text('[project]\nname = "ducks"\n', encoding="utf-8")
    path = folder / "pipeline.py"
    pipeline = load_pipeline(str(path))
    return Compiled(path, pipeline, plan_pipeline(pipeline, "aws"), compile_pipeline(pipeline, "aws"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    return own_project(tmp_path_factory.mktemp("ducks") / "project")


@pytest.fixture(scope="module")
def built(project: Compiled, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ZipPackage, Path]]:
    out = tmp_path_factory.mktemp("zip")
    package = lambda_zip.package_zip(project.pipeline, project.plan, project.definition, out, runtime=this_machine())
    yield package, out


# The stage events a state machine would send, run through the Lambda handler with only the zip on sys.path.
ISOLATED = textwrap.dedent(
    """
    import importlib.util, json, os, sys

    sys.path.insert(0, sys.argv[1])  # the unzipped function: /var/task on Lambda
    assert sys.flags.isolated and sys.flags.no_site, sys.flags
    seen = {"pyspark_before": importlib.util.find_spec("pyspark") is not None, "path": sys.path}

    from sparkflow.runtime.aws import handler

    run = {"id": "r1", "storage": os.environ["SPARKFLOW_STORAGE_ROOT"], "params": json.loads(sys.argv[2])}
    event = {"version": 1, "pipeline": "ducks", "run": run}
    results = [handler({**event, "node": "shout"}, None)]
    split = handler({**event, "node": "totals", "phase": "split", "chunk_bytes": int(sys.argv[3])}, None)
    results.append(split)
    for chunk in range(split["output"]["chunks"]):
        results.append(handler({**event, "node": "totals", "phase": "map", "chunk": chunk}, None))
    for bucket in range(split["output"]["buckets"]):
        results.append(handler({**event, "node": "totals", "phase": "reduce", "chunk": bucket}, None))
    results.append(handler({**event, "node": "totals", "phase": "commit"}, None))
    files = [getattr(module, "__file__", None) or "" for module in list(sys.modules.values())]
    known = (sys.argv[1], sys.base_prefix)
    seen.update(
        results=results,
        pyspark_sql=sys.modules["pyspark.sql"].__name__,  # what the user's `from pyspark.sql import` bound
        outside=sorted({f for f in files if f.endswith((".py", ".so")) and not f.startswith(known)}),
    )
    print(json.dumps(seen))
    """
)


def test_zip_runs_stages_in_an_interpreter_that_has_no_pyspark(
    built: tuple[ZipPackage, Path], project: Compiled, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    package, out = built
    with zipfile.ZipFile(package.path) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "task")
    assert not [name for name in names if name.split("/")[0] in ("pyspark", "py4j") or name.endswith(".jar")]
    assert "sparkflow/runtime/aws.py" in names and "pipeline.py" in names
    assert "data/lines.txt" not in names  # a local source's data: read from where the run says, never shipped
    lines = Path(project.pipeline.origin.file).parent / "data" / "lines.txt"
    sales = tmp_path / "sales"
    sales.mkdir()
    users = [f"u{index % 7}" for index in range(4000)]
    amounts = list(range(4000))
    pq.write_table(pa.table({"user": users, "amount": amounts}), sales / "part-0.parquet", row_group_size=500)
    template = yaml.safe_load((out / "template.yaml").read_text(encoding="utf-8"))
    variables = template["Resources"]["StageFunction1024MB"]["Properties"]["Environment"]["Variables"]
    task = tmp_path / "task"
    env = {
        "PATH": os.environ["PATH"],
        "SPARKFLOW_ENGINE": variables["SPARKFLOW_ENGINE"],
        "SPARKFLOW_PIPELINE": variables["SPARKFLOW_PIPELINE"].replace("/var/task", str(task)),
        "SPARKFLOW_PLAN": variables["SPARKFLOW_PLAN"].replace("/var/task", str(task)),
        "SPARKFLOW_STORAGE_ROOT": f"{tmp_path / 'store'}/",
        "SPARKFLOW_ALLOWED_INPUTS": f"{sales}/,{lines}",
        "SPARKFLOW_WORKDIR": str(tmp_path / "work"),
        "HOME": str(tmp_path / "work"),
    }
    (tmp_path / "work").mkdir()
    params = json.dumps({"sources": {"sales": f"{sales}/", "lines": str(lines)}})
    script = [sys.executable, "-I", "-S", "-c", ISOLATED, str(task), params, str(16 * 1024)]
    finished = subprocess.run(script, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    seen: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    assert seen["pyspark_before"] is False  # nothing named pyspark on the path before sqlframe's activation
    assert seen["path"][0] == str(task) and not [p for p in seen["path"] if "site-packages" in p]
    assert seen["pyspark_sql"] == "sqlframe.duckdb"
    assert seen["outside"] == []  # every module came from the zip or the standard library
    results = seen["results"]
    assert [r["status"] for r in results] == ["committed"] * len(results)
    split = results[1]["output"]
    assert split["chunks"] >= 2 and split["buckets"] >= 2  # a real shuffle through pyarrow, not one piece
    shout = pq.read_table(next((tmp_path / "store/ducks/r1/shout").rglob("*.parquet"))).to_pylist()
    assert sorted(row["line"] for row in shout) == ["FLY SOUTH", "QUACK", "WADDLE AND SWIM"]
    manifest = json.loads((tmp_path / "store/ducks/r1/totals/_COMMITTED.json").read_text())
    parts = [pq.read_table(tmp_path / "store/ducks/r1/totals" / name) for name in manifest["files"]]
    totals = {row["user"]: (int(row["total"]), row["orders"]) for part in parts for row in part.to_pylist()}
    expected: dict[str, tuple[int, int]] = {}
    for user, amount in zip(users, amounts, strict=True):
        total, orders = expected.get(user, (0, 0))
        expected[user] = (total + amount, orders + 1)
    assert totals == expected


def test_zip_holds_the_closure_and_reports_its_size(built: tuple[ZipPackage, Path]) -> None:
    package, _ = built
    names = {line.split("==")[0].lower() for line in package.distributions}
    assert {"duckdb", "sqlframe", "sqlglot", "pyarrow", "s3fs", "boto3", "jsonschema"} <= names
    assert not names & {"pyspark", "py4j", "pandas", "numpy", "networkx", "click", "gcsfs"}
    with zipfile.ZipFile(package.path) as archive:
        infos = archive.infolist()
    assert package.unzipped_bytes == sum(info.file_size for info in infos)
    assert package.zipped_bytes == package.path.stat().st_size
    assert package.unzipped_bytes <= lambda_zip.UNZIPPED_LIMIT.value == 250 * 1024**2
    assert sum(size for _, size in package.contributors) == package.unzipped_bytes
    assert package.contributors[0][0] == "pyarrow" and package.pruned_bytes > 0
    assert package.bytecode and any(info.filename.endswith(".pyc") for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {(info.external_attr >> 16) & 0o777 for info in infos} <= {0o644, 0o755}
    assert "unzipped of Lambda's 250.0 MB" in package.summary()


@pytest.mark.image
def test_packaging_twice_gives_the_same_zip(built: tuple[ZipPackage, Path], project: Compiled, tmp_path: Path) -> None:
    """Byte for byte, bytecode included."""
    first, out = built
    second = lambda_zip.package_zip(
        project.pipeline, project.plan, project.definition, tmp_path, runtime=this_machine()
    )
    assert first.bytecode and second.sha256 == first.sha256
    assert (out / "template.yaml").read_bytes() == (tmp_path / "template.yaml").read_bytes()
    key = yaml.safe_load((out / "template.yaml").read_text())["Parameters"]["CodeKey"]["Default"]
    assert key == f"sparkflow/ducks/function-{first.sha256[:16]}.zip"


def test_over_the_limit_names_the_biggest_contributors(
    ducks: Compiled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = lambda_zip.UNZIPPED_LIMIT.__class__(100 * 1024**2, "bytes", "test limit", "here")
    monkeypatch.setattr(lambda_zip, "UNZIPPED_LIMIT", small)
    with pytest.raises(
        ZipError, match=r"over the test limit of 104,857,600 bytes .*biggest are pyarrow [\d.]+ MB, duckdb"
    ):
        lambda_zip.build_zip(ducks.pipeline, ducks.plan, tmp_path, runtime=this_machine(), bytecode=False)
    assert not (tmp_path / "function.zip").exists()


@pytest.mark.parametrize("path", EXAMPLES, ids=example_ids())
def test_zip_template_passes_cfn_lint_for_every_example(path: Path) -> None:
    item = compiled(path.parent.name)
    code = ZipCode(
        "python3.12",
        "sparkflow/x/function-0123.zip",
        "/var/task/examples/x/pipeline.py",
        "/var/task/sparkflow-plan.json",
    )
    inputs = {source.name: f"s3://data/{source.name}/" for source in item.plan.sources}
    assert [str(match) for match in lint(template_text(item.plan, item.definition, zip_code=code))] == []
    assert [str(match) for match in lint(template_text(item.plan, item.definition, inputs=inputs, zip_code=code))] == []


def test_zip_template_runs_zip_functions_on_duckdb(ducks: Compiled) -> None:
    code = lambda_zip.zip_code(ducks.pipeline, ducks.plan, lambda_zip.RUNTIMES["3.12"], "ab" * 32)
    document = yaml.safe_load(template_text(ducks.plan, ducks.definition, zip_code=code))
    assert "ImageUri" not in document["Parameters"]
    assert document["Parameters"]["CodeKey"]["Default"] == "sparkflow/ducks/function-abababababababab.zip"
    functions = [v["Properties"] for v in document["Resources"].values() if v["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 2  # 1 GB and 2 GB stages
    for properties in functions:
        assert properties["PackageType"] == "Zip" and properties["Runtime"] == "python3.12"
        assert properties["Handler"] == "sparkflow.runtime.aws.handler"
        assert properties["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}
        variables = properties["Environment"]["Variables"]
        assert variables["SPARKFLOW_ENGINE"] == "duckdb"
        assert variables["SPARKFLOW_PIPELINE"] == "/var/task/tests/ship/resources/ducks/pipeline.py"
        assert (variables["SPARKFLOW_WORKDIR"], variables["HOME"]) == ("/tmp", "/tmp")
        assert not [name for name in variables if name.startswith(("SPARK_", "JAVA"))]
    assert [str(match) for match in lint(yaml.safe_dump(document))] == []


def test_a_stage_that_declares_spark_is_refused(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(RESOURCES.parent.parent / "resources" / "pipeline_engine.py"), "on_duckdb")
    plan = plan_pipeline(pipeline, "aws")
    with pytest.raises(ZipError, match=r"stage\(s\) counts \(.*pipeline_engine.py:\d+\) declare engine='spark'"):
        lambda_zip.package_zip(pipeline, plan, compile_pipeline(pipeline, "aws"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_stage_placed_off_functions_is_refused(ducks: Compiled, tmp_path: Path) -> None:
    tasks = tuple(
        dataclasses.replace(task, placement="container") if task.id == "totals" else task for task in ducks.plan.tasks
    )
    plan = dataclasses.replace(ducks.plan, tasks=tasks)
    with pytest.raises(ZipError, match=r"stage\(s\) totals \(container\) are not placed on a function"):
        lambda_zip.package_zip(ducks.pipeline, plan, ducks.definition, tmp_path / "out", runtime=this_machine())
    assert not (tmp_path / "out").exists()


def test_a_delta_sink_is_refused_naming_it(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(RESOURCES.parent.parent.parent / "examples" / "revenue" / "pipeline.py"))
    plan = plan_pipeline(pipeline, "aws")
    with pytest.raises(ZipError, match=r"sink\(s\) revenue_history \(.*pipeline.py:\d+\) publish Delta tables"):
        lambda_zip.package_zip(pipeline, plan, compile_pipeline(pipeline, "aws"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---- the closure: wheels fit for the runtime ---------------------------------------------------------------


def wheel(folder: Path, filename: str, requires: tuple[str, ...] = (), files: dict[str, str] | None = None) -> None:
    """A minimal wheel: METADATA with Requires-Dist lines, and ``files``."""
    name, version = filename.split("-")[:2]
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {line}\n" for line in requires
    )
    with zipfile.ZipFile(folder / filename, "w") as archive:
        archive.writestr(f"{name}-{version}.dist-info/METADATA", metadata)
        for path, text in (files or {f"{name}/__init__.py": ""}).items():
            archive.writestr(path, text)


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    wheel(tmp_path, "alpha-1.0-py3-none-any.whl", ("beta[fast]>=2", "old; python_version < '3.12'"))
    wheel(tmp_path, "beta-1.0-py3-none-any.whl")
    wheel(tmp_path, "beta-2.1-cp312-abi3-manylinux2014_x86_64.whl", ("gamma; extra == 'fast'", "zeta; extra == 'no'"))
    wheel(tmp_path, "gamma-3.0-cp312-cp312-manylinux_2_28_x86_64.whl", files={"gamma.data/purelib/g.py": "x = 1"})
    wheel(tmp_path, "old-1.0-cp311-cp311-manylinux_2_17_x86_64.whl")
    wheel(tmp_path, "tooNew-1.0-cp312-cp312-manylinux_2_35_x86_64.whl")
    wheel(tmp_path, "arm-1.0-cp312-cp312-manylinux_2_28_aarch64.whl")
    wheel(tmp_path, "local-1.0-cp312-cp312-linux_x86_64.whl")
    return tmp_path


def test_closure_follows_extras_and_markers_of_the_runtime(wheelhouse: Path) -> None:
    found = lambda_zip.resolve(["alpha==1.0"], lambda_zip.RUNTIMES["3.12"], wheelhouse)
    assert [(d.name, d.version) for d in found] == [("alpha", "1.0"), ("beta", "2.1"), ("gamma", "3.0")]
    gamma = found[2]
    assert dict(gamma.files)["g.py"] == "gamma.data/purelib/g.py"  # purelib goes to the root
    with pytest.raises(ZipError) as caught:
        lambda_zip.resolve(["alpha==1.0"], lambda_zip.RUNTIMES["3.11"], wheelhouse)  # python_version < 3.12: old
    message = str(caught.value)
    assert "beta 2.1 (cp312-abi3-manylinux2014_x86_64): needs Python 3.12" in message
    assert "gamma 3.0 (cp312-cp312-manylinux_2_28_x86_64): built for Python 3.12, not 3.11" in message
    assert "old 1.0" not in message  # fits: cp311, manylinux2014 = glibc 2.17
    command = message.rsplit("\n", 1)[1].strip()
    assert command.startswith(
        "pip download --only-binary=:all: --platform manylinux_2_26_x86_64 --platform manylinux_2_25"
    )
    assert "--platform manylinux2014_x86_64 --python-version 3.11 --implementation cp -d wheelhouse " in command
    assert "manylinux_2_27" not in command  # no wheel newer than the runtime's glibc


@pytest.mark.parametrize(
    ("requirement", "problem"),
    [
        (
            "toonew",
            r"tooNew 1.0 \(cp312-cp312-manylinux_2_35_x86_64\): needs glibc 2.35; "
            r"python3.12 runs on Amazon Linux 2023 \(glibc 2.34\)",
        ),
        ("arm", r"arm 1.0 \(cp312-cp312-manylinux_2_28_aarch64\): built for aarch64, not x86_64"),
        ("local", r"local 1.0 \(cp312-cp312-linux_x86_64\): built for linux_x86_64, not manylinux x86_64"),
        ("missing>=1", r"missing>=1 \(needed by sparkflow\) is not in the wheelhouse"),
        ("beta==3", r"beta 2.1 \(.*\) does not satisfy beta==3 \(sparkflow\)"),
    ],
)
def test_platform_check_refuses_what_the_runtime_cannot_load(wheelhouse: Path, requirement: str, problem: str) -> None:
    with pytest.raises(ZipError, match=problem):
        lambda_zip.resolve([requirement], lambda_zip.RUNTIMES["3.12"], wheelhouse)


def test_installed_wheels_too_new_for_python311_are_refused() -> None:
    """The pinned duckdb and pyarrow wheels installed here need glibc 2.27/2.28: Lambda's python3.11 cannot load
    them, and packaging says so instead of shipping a zip that fails at import."""
    from importlib.metadata import distribution

    tags = (distribution("pyarrow").read_text("WHEEL") or "").split("Tag:")[1:]
    newest = max(int(tag.split("manylinux_2_")[1].split("_")[0]) for tag in tags if "manylinux_2_" in tag)
    if sys.version_info[:2] != (3, 11) or newest <= 26:
        pytest.skip("this environment's pyarrow loads on python3.11")
    with pytest.raises(ZipError, match=r"pyarrow 26\.0\.1 .*needs glibc 2\.\d+; python3\.11 runs on Amazon Linux 2 "):
        lambda_zip.resolve(lambda_zip.roots(), lambda_zip.RUNTIMES["3.11"])


def test_cli_packages_a_zip_or_says_which_wheels_do_not_fit(tmp_path: Path) -> None:
    other = "3.13" if sys.version_info[:2] == (3, 12) else "3.12"
    pipeline = str(RESOURCES / "ducks" / "pipeline.py")
    runner = CliRunner()
    result = runner.invoke(
        main, ["package", pipeline, "--engine", "duckdb", "--python", other, "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 2, result.output
    assert f"cannot build a python{other} zip" in result.output
    assert f"not {other}" in result.output and f"--python-version {other}" in result.output
    result = runner.invoke(main, ["package", pipeline, "--target", "gcp", "--engine", "duckdb"])
    assert result.exit_code == 2 and "--engine duckdb builds a Lambda .zip: use --target aws" in result.output
