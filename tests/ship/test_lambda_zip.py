"""``sparkflow package --engine duckdb``: a plain Lambda .zip (no image, no Java, no pyspark) whose stages run in an
interpreter that sees nothing but the zip and the standard library; its template passes cfn-lint; the closure
comes from distributions fit for the Lambda runtime, and the size is checked against Lambda's 250 MB."""

from __future__ import annotations

import dataclasses
import json
import os
import re
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
from sparkflow.errors import PackageError
from sparkflow.loading import load_pipeline
from sparkflow.targets.aws import lambda_zip
from sparkflow.targets.aws.lambda_zip import LambdaRuntime, ZipError, ZipPackage
from sparkflow.targets.aws.template import ZipCode, template_text
from tests.examples import long_but
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
    package = lambda_zip.package_zip(
        project.pipeline, project.plan, project.definition, out, engine="duckdb", runtime=this_machine()
    )
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
    partitioned = handler({**event, "node": "totals", "phase": "partition"}, None)
    results.append(partitioned)
    for reducer in range(partitioned["output"]["buckets"]):
        results.append(handler({**event, "node": "totals", "phase": "reduce", "chunk": reducer}, None))
    results.append(handler({**event, "node": "totals", "phase": "commit"}, None))
    import boto3, s3fs  # the clients a stage makes on AWS, from the service models left in the zip

    s3fs.S3FileSystem(anon=True).connect()
    services = [boto3.client(name, region_name="us-east-1").meta.service_model.service_name for name in sys.argv[4:]]
    files = [getattr(module, "__file__", None) or "" for module in list(sys.modules.values())]
    known = (sys.argv[1], sys.base_prefix)
    seen.update(
        results=results,
        services=services,
        pyspark_sql=sys.modules["pyspark.sql"].__name__,  # what the user's `from pyspark.sql import` bound
        outside=sorted({f for f in files if f.endswith((".py", ".so")) and not f.startswith(known)}),
    )
    print(json.dumps(seen))
    """
)


@pytest.mark.long  # a real build: pip, bytecode and zip (about 45 s)
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
    script = [sys.executable, "-I", "-S", "-c", ISOLATED, str(task), params, str(16 * 1024), *lambda_zip.AWS_SERVICES]
    finished = subprocess.run(script, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    seen: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    assert seen["pyspark_before"] is False  # nothing named pyspark on the path before sqlframe's activation
    assert seen["path"][0] == str(task) and not [p for p in seen["path"] if "site-packages" in p]
    assert seen["pyspark_sql"] == "sqlframe.duckdb"
    assert seen["outside"] == []  # every module came from the zip or the standard library
    assert seen["services"] == ["s3", "dynamodb", "sts"]
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


@pytest.mark.long  # a real build: pip, bytecode and zip (about 45 s)
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
    entries = {info.filename for info in infos}
    assert not {entry for entry in entries if entry.startswith("botocore/data/ec2/")}  # a service no stage calls
    # One copy of Arrow's Python library: the one its SONAME names (libarrow_python.so.N), which the loader opens.
    assert [entry for entry in entries if entry.startswith("pyarrow/libarrow_python.so")] == [
        next(entry for entry in entries if re.fullmatch(r"pyarrow/libarrow_python\.so\.\d+", entry))
    ]
    assert package.bytecode and any(info.filename.endswith(".pyc") for info in infos)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {(info.external_attr >> 16) & 0o777 for info in infos} <= {0o644, 0o755}
    assert "unzipped of Lambda's 250.0 MB" in package.summary()


@pytest.mark.long
def test_packaging_twice_gives_the_same_zip(built: tuple[ZipPackage, Path], project: Compiled, tmp_path: Path) -> None:
    """Byte for byte, bytecode included."""
    first, out = built
    second = lambda_zip.package_zip(
        project.pipeline, project.plan, project.definition, tmp_path, engine="duckdb", runtime=this_machine()
    )
    assert first.bytecode and second.sha256 == first.sha256
    assert (out / "template.yaml").read_bytes() == (tmp_path / "template.yaml").read_bytes()
    key = yaml.safe_load((out / "template.yaml").read_text())["Parameters"]["CodeKey"]["Default"]
    assert key == f"sparkflow/ducks/function-{first.sha256[:16]}.zip"


def test_over_the_limit_names_the_biggest_contributors(
    ducks: Compiled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel(tmp_path / "house", "big-1.0-py3-none-any.whl", files={"big/blob.bin": "x" * (3 * 1024**2)})
    monkeypatch.setattr(lambda_zip, "roots", lambda engine: ["big==1.0"])
    small = lambda_zip.UNZIPPED_LIMIT.__class__(1024**2, "bytes", "test limit", "here")
    monkeypatch.setattr(lambda_zip, "UNZIPPED_LIMIT", small)
    out = tmp_path / "out"
    with pytest.raises(ZipError, match=r"over the test limit of 1,048,576 bytes .*biggest are big 3\.0 MB, "):
        lambda_zip.build_zip(
            ducks.pipeline,
            ducks.plan,
            out,
            engine="duckdb",
            runtime=this_machine(),
            wheelhouse=tmp_path / "house",
            bytecode=False,
        )
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("path", long_but("wordcount", "clickstream"))
def test_zip_template_passes_cfn_lint_for_every_example(path: Path) -> None:
    item = compiled(path.parent.name)
    code = ZipCode(
        "python3.12",
        "sparkflow/x/function-0123.zip",
        "/var/task/examples/x/pipeline.py",
        "/var/task/sparkflow-plan.json",
    )
    inputs = {source.name: f"s3://data/{source.name}/" for source in item.plan.sources}
    for given in (None, inputs):
        text = template_text(item.plan, item.definition, engine="duckdb", inputs=given, zip_code=code)
        assert [str(match) for match in lint(text)] == []


def test_zip_template_runs_zip_functions_on_duckdb(ducks: Compiled) -> None:
    code = lambda_zip.zip_code(ducks.pipeline, ducks.plan, lambda_zip.RUNTIMES["3.12"], "ab" * 32)
    document = yaml.safe_load(template_text(ducks.plan, ducks.definition, engine="duckdb", zip_code=code))
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
    with pytest.raises(PackageError, match=r"stage\(s\) counts \(.*pipeline_engine.py:\d+\) declare engine='spark'"):
        lambda_zip.package_zip(pipeline, plan, compile_pipeline(pipeline, "aws"), tmp_path / "out", engine="duckdb")
    assert not (tmp_path / "out").exists()


def test_a_stage_placed_off_functions_is_refused(ducks: Compiled, tmp_path: Path) -> None:
    tasks = tuple(
        dataclasses.replace(task, placement="container") if task.id == "totals" else task for task in ducks.plan.tasks
    )
    plan = dataclasses.replace(ducks.plan, tasks=tasks)
    with pytest.raises(ZipError, match=r"stage\(s\) totals \(container\) are not placed on a function"):
        lambda_zip.package_zip(
            ducks.pipeline, plan, ducks.definition, tmp_path / "out", engine="duckdb", runtime=this_machine()
        )
    assert not (tmp_path / "out").exists()


def test_a_delta_sink_is_refused_naming_it(tmp_path: Path) -> None:
    pipeline = load_pipeline(str(RESOURCES.parent.parent.parent / "examples" / "revenue" / "pipeline.py"))
    plan = plan_pipeline(pipeline, "aws")
    with pytest.raises(ZipError, match=r"sink\(s\) revenue_history \(.*pipeline.py:\d+\) publish Delta tables"):
        lambda_zip.package_zip(pipeline, plan, compile_pipeline(pipeline, "aws"), tmp_path / "out", engine="duckdb")
    assert not (tmp_path / "out").exists()


# ---- the closure: pip installs wheels fit for the runtime ---------------------------------------------------


def wheel(folder: Path, filename: str, requires: tuple[str, ...] = (), files: dict[str, str] | None = None) -> None:
    """A minimal installable wheel: METADATA with Requires-Dist lines, WHEEL, RECORD, and ``files``."""
    name, version = filename.split("-")[:2]
    info = f"{name}-{version}.dist-info"
    extras = sorted({match for line in requires for match in re.findall(r"extra == '(\w+)'", line)})
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Provides-Extra: {extra}\n" for extra in extras)
    metadata += "".join(f"Requires-Dist: {line}\n" for line in requires)
    contents = {
        **(files or {f"{name}/__init__.py": ""}),
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n",
    }
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / filename, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", "".join(f"{path},,\n" for path in [*contents, f"{info}/RECORD"]))


# A Lambda Python other than the one running the tests (and so pip).
OTHER_PYTHON = next(
    version for version in lambda_zip.RUNTIMES if version != f"{sys.version_info[0]}.{sys.version_info[1]}"
)


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    house = tmp_path / "house"
    wheel(house, "alpha-1.0-py3-none-any.whl", ("beta[fast]>=2", "old; python_version < '3.12'"))
    wheel(house, "beta-1.0-py3-none-any.whl")
    wheel(house, "beta-2.1-cp312-abi3-manylinux2014_x86_64.whl", ("gamma; extra == 'fast'", "zeta; extra == 'no'"))
    wheel(house, "gamma-3.0-cp312-cp312-manylinux_2_28_x86_64.whl", files={"gamma-3.0.data/purelib/g.py": "x = 1"})
    wheel(house, "old-1.0-py3-none-any.whl")
    wheel(house, "uses-1.0-py3-none-any.whl", (f"new; python_version == '{OTHER_PYTHON}'",))
    wheel(house, "new-1.0-py3-none-any.whl")
    wheel(house, "tooNew-1.0-cp312-cp312-manylinux_2_35_x86_64.whl")
    wheel(house, "arm-1.0-cp312-cp312-manylinux_2_28_aarch64.whl")
    return house


def test_pip_installs_the_closure_under_the_runtimes_markers_and_extras(wheelhouse: Path, tmp_path: Path) -> None:
    runtime = lambda_zip.RUNTIMES["3.12"]
    found = lambda_zip.install(["alpha==1.0"], runtime, tmp_path / "all", wheelhouse)
    assert [(d.metadata["Name"], d.version) for d in found] == [("alpha", "1.0"), ("beta", "2.1"), ("gamma", "3.0")]
    assert (tmp_path / "all" / "g.py").read_text() == "x = 1"  # purelib goes to the root
    # pip evaluates markers for the Python running it: on 3.11 it installs 'old' too, which 3.12 does not need.
    assert not (tmp_path / "all" / "old").exists()
    # What only a left-out distribution needs is taken out again: gamma comes only with beta[fast].
    found = lambda_zip.install(["alpha==1.0"], runtime, tmp_path / "some", wheelhouse, excluded={"beta"})
    assert [d.metadata["Name"] for d in found] == ["alpha"]
    assert sorted(path.name for path in (tmp_path / "some").iterdir()) == ["alpha", "alpha-1.0.dist-info"]


def test_what_pip_leaves_out_for_its_own_python_is_refused(wheelhouse: Path, tmp_path: Path) -> None:
    """'uses' needs 'new' only on another Python than the one running pip, which therefore leaves it out."""
    pattern = rf"pip did not install new \(needed by uses\), which Python {re.escape(OTHER_PYTHON)} needs"
    with pytest.raises(ZipError, match=pattern):
        lambda_zip.install(["uses"], lambda_zip.RUNTIMES[OTHER_PYTHON], tmp_path / "out", wheelhouse)


@pytest.mark.parametrize(
    ("requirement", "runtime", "named"),
    [
        ("alpha==1.0", "3.11", "beta"),  # beta 2.1 is for CPython 3.12 and newer; 1.0 is too old
        ("toonew", "3.12", "toonew"),  # manylinux_2_35: newer than Amazon Linux 2023's glibc 2.34
        ("arm", "3.12", "arm"),  # aarch64
        ("missing>=1", "3.12", "missing"),
    ],
)
def test_pip_refuses_what_the_runtime_cannot_load(
    wheelhouse: Path, tmp_path: Path, requirement: str, runtime: str, named: str
) -> None:
    chosen = lambda_zip.RUNTIMES[runtime]
    with pytest.raises(ZipError) as caught:
        lambda_zip.install([requirement], chosen, tmp_path / "out", wheelhouse)
    message = str(caught.value)
    assert message.startswith(f"cannot build a {chosen.name} zip ({chosen.system}, glibc ")
    assert f"pip found no set of wheels in the wheelhouse {wheelhouse}" in message
    assert f"ERROR: No matching distribution found for {named}" in message
    assert f"--python-version {runtime} --implementation cp " in message.rsplit("\n", 1)[1]


def test_cli_says_which_wheels_python311_cannot_load(tmp_path: Path) -> None:
    """The pinned duckdb and pyarrow wheels need glibc 2.27 / 2.28: Lambda's python3.11 (Amazon Linux 2, glibc
    2.26) cannot load them, and packaging says so, from pip's own answer, instead of shipping a zip that fails at
    import."""
    pipeline = str(RESOURCES / "ducks" / "pipeline.py")
    result = CliRunner().invoke(
        main, ["package", pipeline, "--engine", "duckdb", "--python", "3.11", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "cannot build a python3.11 zip (Amazon Linux 2, glibc 2.26): pip found no set of wheels" in result.output
    assert "duckdb" in result.output and "choose a runtime on a newer glibc: --python 3.12" in result.output
    result = CliRunner().invoke(main, ["package", pipeline, "--target", "gcp", "--engine", "duckdb"])
    assert result.exit_code == 2 and "--engine duckdb builds a Lambda .zip: use --target aws" in result.output
