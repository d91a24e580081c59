"""A plain Lambda .zip deployment for an engine that ships as one (duckdb): no image, no Java, no pyspark.

``package_zip(pipeline, plan, definition_text, out_dir, engine="duckdb")`` writes into ``out_dir``:

* ``function.zip``: at its root (``/var/task`` on Lambda, first on ``sys.path``) sparkflow, the dependency closure
  of the engine and the user's project (so the project's own imports work as they do in the image, whose
  project folder is on ``PYTHONPATH``), with bytecode compiled ahead when the build runs the target's Python
  (unchecked-hash ``.pyc``: ``/var/task`` is read-only, so Python could not cache bytecode there and would
  compile sqlglot, botocore and the rest again on every cold start);
* ``template.yaml``: the image template's stack with ``PackageType: Zip`` functions (runtime, the handler
  ``sparkflow.runtime.aws.handler``, ``SPARKFLOW_ENGINE=<engine>`` and what the image sets: the pipeline, /tmp as
  the work folder and home) whose code is ``s3://${CodeBucket}/${CodeKey}``; the key's default names the zip by
  its digest, so a changed zip updates the functions.

**What is in the closure.** pip installs it (:func:`install`): the engine's pinned runtime requirements
(:func:`~sparkflow.shipping.requirements.engine_requirements`: no other engine's, so no pyspark and no Java) minus what
a zip function never runs (:data:`NOT_SHIPPED`: the compiler's and the CLI's libraries, GCP storage, pandas), as
wheels for the Lambda runtime's platform and Python::

    pip install --target DIR --only-binary=:all: --platform manylinux_2_34_x86_64 ... --python-version 3.12 \
        --implementation cp --constraint <the versions installed here> duckdb==... pyarrow==... ...

then removes what only the left-out distributions need (pandas and numpy, which sqlframe declares). Wheels come
from the package index, or with ``--wheelhouse`` only from a folder of wheels (:func:`pip_download_command` fills
one). A wheel must be for the runtime's Python and a manylinux glibc no newer than the runtime's OS (python3.11
runs on Amazon Linux 2, glibc 2.26; python3.12 and 3.13 on Amazon Linux 2023, glibc 2.34): when pip finds none,
its errors are quoted. Files no stage loads are left out (:data:`PRUNED`). Lambda counts the unzipped contents
against 250 MB: over it, the error names the biggest contributors.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from sparkflow import engines
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import PackageError
from sparkflow.plan import Plan
from sparkflow.shipping import project, requirements
from sparkflow.shipping.engine_fit import check_engine
from sparkflow.shipping.requirements import engine_requirements
from sparkflow.targets.aws.stack import TASK_ROOT, ZIP_FILE
from sparkflow.targets.aws.template import ZipCode, template_text
from sparkflow.targets.base import Limit

ZIP_NAME = ZIP_FILE
_RUNTIMES_PAGE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html"
# "Deployment package (.zip file archive) size: ... 250 MB. The maximum size of the contents of a deployment
# package, including layers and custom runtimes (unzipped)." Counted here as 250 MiB.
UNZIPPED_LIMIT = Limit(
    250 * 1024**2,
    "bytes",
    "Lambda unzipped deployment package limit",
    "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html",
)


@dataclass(frozen=True)
class LambdaRuntime:
    """A Lambda Python runtime: what its wheels must be built for.

    Attributes:
        name: the ``Runtime`` of the function, e.g. ``python3.12``.
        python: its Python version.
        glibc: the glibc of its operating system (the newest ``manylinux_2_N`` it loads).
        system: the operating system, for messages.
    """

    name: str
    python: tuple[int, int]
    glibc: tuple[int, int]
    system: str


# Lambda runtimes and their operating systems (_RUNTIMES_PAGE); glibc is Amazon Linux 2's 2.26 and 2023's 2.34.
RUNTIMES = {
    "3.11": LambdaRuntime("python3.11", (3, 11), (2, 26), "Amazon Linux 2"),
    "3.12": LambdaRuntime("python3.12", (3, 12), (2, 34), "Amazon Linux 2023"),
    "3.13": LambdaRuntime("python3.13", (3, 13), (2, 34), "Amazon Linux 2023"),
}

# sparkflow requirements a zip function never imports, and why (their own dependencies go with them). The other
# engines' own distributions are left out too (sparkflow.shipping.requirements.left_out).
NOT_SHIPPED = {
    "gcsfs": "gs:// storage, for GCP",
    "networkx": "the compiler",
    "jinja2": "packaging",
    "pyyaml": "packaging",
    "packaging": "packaging",
    "click": "the command line",
    "rich": "the command line",
    "gunicorn": "the Cloud Run image's HTTP server",
    # sqlframe declares it for DataFrame.toPandas(); sparkflow's runtime never calls it, and pandas with numpy
    # (~100 MB) and pyarrow (which key stages and Parquet splits need) do not fit 250 MB together.
    "pandas": "DataFrame.toPandas() (not available in a zip deployment)",
    # delta-rs is about 130 MB unzipped: with duckdb and pyarrow it is over 250 MB, so Delta sinks need the image.
    "deltalake": "Delta sinks (a pipeline with one ships as an image)",
}

# Files of distributions that no stage loads, and why.
PRUNED = (
    ("*/tests/*", "test suites"),
    ("*/include/*", "C headers"),
    ("*.pyi", "type stubs"),
    ("*.pxd", "Cython sources"),
    ("*.pyx", "Cython sources"),
    ("pyarrow/*flight*", "Arrow Flight RPC"),
    ("pyarrow/*_s3*", "Arrow's own S3 client (sparkflow reads S3 through s3fs)"),
    ("pyarrow/_pyarrow_cpp_tests*", "test suites"),
    ("*.pxi", "Cython sources"),
    # The wheel has three copies of each: the loader opens the one its SONAME names, lib*.so.N.
    ("pyarrow/libarrow*.so", "second copies of Arrow's Python libraries"),
    ("pyarrow/libarrow*.so.*.*.*", "second copies of Arrow's Python libraries"),
    ("botocore/data/*/*", "models of AWS services the runtime never calls (all but AWS_SERVICES)"),
)

# The AWS services a stage calls, whose models botocore loads when it makes their clients: S3 (through s3fs),
# DynamoDB (the KV store) and STS (credentials from an assumed role).
AWS_SERVICES = ("s3", "dynamodb", "sts")


class ZipError(PackageError):
    """The zip cannot be built for this runtime (a missing or incompatible distribution, over the size limit)."""


@dataclass(frozen=True)
class ZipPackage:
    """What :func:`build_zip` wrote.

    Attributes:
        path: the zip.
        runtime: the Lambda runtime it is built for.
        zipped_bytes: its size.
        unzipped_bytes: the size of its contents, which Lambda counts against :data:`UNZIPPED_LIMIT`.
        contributors: (distribution, or ``sparkflow`` / ``project``; unzipped bytes), biggest first.
        distributions: ``name==version`` of every shipped distribution.
        pruned_bytes: bytes of distribution files left out (:data:`PRUNED`).
        bytecode: whether ``.pyc`` files were compiled ahead.
        sha256: the zip's digest.
    """

    path: Path
    runtime: LambdaRuntime
    zipped_bytes: int
    unzipped_bytes: int
    contributors: tuple[tuple[str, int], ...]
    distributions: tuple[str, ...]
    pruned_bytes: int
    bytecode: bool
    sha256: str

    def summary(self) -> str:
        """One line: runtime, sizes, and the unzipped size against Lambda's limit."""
        return (
            f"{self.path.name} for {self.runtime.name}: {_mb(self.zipped_bytes)} zipped, "
            f"{_mb(self.unzipped_bytes)} unzipped of Lambda's {_mb(UNZIPPED_LIMIT.value)} "
            f"({self.unzipped_bytes / UNZIPPED_LIMIT.value:.0%})"
        )


def runtime_for(version: str | None) -> LambdaRuntime:
    """The Lambda runtime of Python ``version`` (``"3.12"``); by default the running Python's, if Lambda has it."""
    chosen = version or f"{sys.version_info.major}.{sys.version_info.minor}"
    if chosen not in RUNTIMES:
        if version is None:
            return RUNTIMES["3.12"]
        raise ZipError(f"--python {version}: Lambda has no such Python runtime; use one of {', '.join(RUNTIMES)}")
    return RUNTIMES[chosen]


def roots(engine: str) -> list[str]:
    """The pinned runtime requirements that a zip function of ``engine`` needs (all of the engine's but
    :data:`NOT_SHIPPED`)."""
    from packaging.requirements import Requirement

    return [line for line in engine_requirements(engine) if _canonical(Requirement(line).name) not in NOT_SHIPPED]


def exclusions(engine: str) -> set[str]:
    """What :func:`install` takes out again for a zip of ``engine`` (its ``excluded``): :data:`NOT_SHIPPED` and the
    other engines' own distributions."""
    return set(NOT_SHIPPED) | requirements.left_out(engine)


# ---- the closure: installed by pip ---------------------------------------------------------------------------


def install(
    requirements: list[str],
    runtime: LambdaRuntime,
    folder: Path,
    wheelhouse: str | os.PathLike[str] | None = None,
    *,
    excluded: Collection[str] = tuple(NOT_SHIPPED),
) -> list[importlib.metadata.Distribution]:
    """Install ``requirements`` for ``runtime`` into ``folder`` with pip, then take out again what only ``excluded``
    distributions (canonical names) need; return the distributions left.

    pip resolves and installs wheels for the runtime's platform and Python (:func:`pip_args`) from the package
    index, or only from ``wheelhouse`` when given; a distribution installed here is installed at the same version,
    so the zip runs what this environment runs. pip evaluates environment markers for the Python running it, not
    the target's: what only the running Python needs is taken out again, and what only the target needs is missing,
    which is refused.

    Raises:
        ZipError: pip found no wheel the runtime can load for some requirement (pip's own errors are quoted), or
            left out a distribution the runtime needs.
    """
    with tempfile.TemporaryDirectory(prefix="sparkflow-pip-") as scratch:
        constraints = Path(scratch) / "constraints.txt"
        constraints.write_text("".join(f"{line}\n" for line in _installed_versions()), encoding="utf-8")
        arguments = pip_args("install", runtime, requirements, wheelhouse=wheelhouse)
        arguments += ["--target", str(folder), "--no-compile", "--constraint", str(constraints), "--quiet"]
        finished = subprocess.run(
            [sys.executable, "-m", "pip", *arguments],
            capture_output=True,
            text=True,
            env=_pip_environment(),
            check=False,
        )
    if finished.returncode != 0:
        raise ZipError(_pip_failure(runtime, finished.stdout + finished.stderr, wheelhouse, requirements))
    shutil.rmtree(folder / "bin", ignore_errors=True)  # console scripts: nothing on Lambda runs them
    installed = list(importlib.metadata.distributions(path=[str(folder)]))
    kept, missing = closure(requirements, installed, runtime, excluded=excluded)
    if missing:
        raise ZipError(
            f"cannot build a {runtime.name} zip: pip did not install {', '.join(missing)}, which Python "
            f"{_dotted(runtime.python)} needs (pip evaluates environment markers for the Python that runs it, "
            f"{sys.version_info.major}.{sys.version_info.minor}); run sparkflow package with Python "
            f"{_dotted(runtime.python)}"
        )
    for dist in installed:
        if dist not in kept:
            _uninstall(dist, folder)
    return kept


def closure(
    requirements: list[str],
    distributions: Collection[importlib.metadata.Distribution],
    runtime: LambdaRuntime,
    *,
    excluded: Collection[str] = (),
) -> tuple[list[importlib.metadata.Distribution], list[str]]:
    """The ``distributions`` that ``requirements`` reach through ``Requires-Dist`` under ``runtime``'s markers, not
    going through ``excluded`` (canonical names), sorted by name; and the requirements reached that none of
    ``distributions`` provides, with what needs them."""
    from packaging.requirements import Requirement

    by_name = {_canonical(dist.metadata["Name"] or ""): dist for dist in distributions}
    environment = _markers(runtime)
    reached: dict[str, importlib.metadata.Distribution] = {}
    done: set[tuple[str, str]] = set()
    missing: list[str] = []
    queue = [(Requirement(line), "sparkflow") for line in requirements]
    while queue:
        requirement, wanted_by = queue.pop(0)
        key = _canonical(requirement.name)
        if key in excluded:
            continue
        if key not in by_name:
            missing.append(f"{requirement.name} (needed by {wanted_by})")
            continue
        dist = reached.setdefault(key, by_name[key])
        for extra in ("", *sorted(requirement.extras)):
            if (key, extra) in done:
                continue
            done.add((key, extra))
            for line in dist.requires or ():
                needed = Requirement(line)
                # An unconditional requirement comes with the distribution itself, not again with each extra.
                marker = needed.marker
                if (not extra) if marker is None else marker.evaluate({**environment, "extra": extra}):
                    queue.append((needed, dist.metadata["Name"] or key))
    return [reached[key] for key in sorted(reached)], sorted(set(missing))


def pip_download_command(runtime: LambdaRuntime, folder: str, requirements: list[str]) -> str:
    """The command that fills ``folder`` with wheels of the closure of ``requirements`` (:func:`roots`) for
    ``runtime`` (a wheelhouse for building offline)."""
    return shlex.join(["pip", *pip_args("download", runtime, requirements), "-d", folder])


def pip_args(
    verb: str, runtime: LambdaRuntime, requirements: list[str], *, wheelhouse: str | os.PathLike[str] | None = None
) -> list[str]:
    """pip's arguments (``pip`` not included) that ``verb`` (install, download) ``requirements`` as wheels that
    ``runtime`` loads: CPython of its version, manylinux x86_64 no newer than its glibc."""
    arguments = [verb, "--only-binary=:all:", "--disable-pip-version-check"]
    # pip takes a manylinux_2_N platform literally (only the legacy manylinux2014 stands for older ones too).
    for minor in range(runtime.glibc[1], 16, -1):
        arguments += ["--platform", f"manylinux_2_{minor}_x86_64"]
    arguments += ["--platform", "manylinux2014_x86_64", "--python-version", _dotted(runtime.python)]
    arguments += ["--implementation", "cp"]
    if wheelhouse is not None:
        arguments += ["--no-index", "--find-links", str(wheelhouse)]
    return [*arguments, *requirements]


def _installed_versions() -> list[str]:
    """``name==version`` of every distribution installed here (local versions left out: no index has them)."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and "+" not in dist.version:
            versions.setdefault(_canonical(name), dist.version)
    return [f"{name}=={version}" for name, version in sorted(versions.items())]


def _pip_environment() -> dict[str, str]:
    """pip's environment: this one, minus what would make pip install somewhere else than ``--target``."""
    return {key: value for key, value in os.environ.items() if key not in ("PIP_USER", "PIP_PREFIX", "PIP_TARGET")}


def _pip_failure(
    runtime: LambdaRuntime, output: str, wheelhouse: str | os.PathLike[str] | None, requirements: list[str]
) -> str:
    """What to tell the user when pip could not install the closure for ``runtime``: pip's errors, then why."""
    lines = output.splitlines()
    quoted = [line for line in lines if line.startswith("ERROR:") and "ResolutionImpossible" not in line]
    if "no matching distributions available for your environment:" in output:
        at = next(i for i, line in enumerate(lines) if "no matching distributions available" in line)
        names = [line.strip() for line in lines[at + 1 :] if line.startswith("    ") and line.strip()]
        quoted.append(f"no wheel for this runtime: {', '.join(names)}")
    source = f"the wheelhouse {wheelhouse}" if wheelhouse is not None else "the package index"
    quoted_text = "\n".join(f"  {line[:400]}" for line in quoted or lines[-10:])
    if not any(sign in output for sign in _NO_WHEEL):
        return (
            f"cannot build a {runtime.name} zip: pip failed installing its requirements from {source}:\n{quoted_text}"
        )
    message = (
        f"cannot build a {runtime.name} zip ({runtime.system}, glibc {_dotted(runtime.glibc)}): pip found no set "
        f"of wheels in {source} that this runtime loads (CPython {_dotted(runtime.python)}, manylinux x86_64 "
        f"up to glibc {_dotted(runtime.glibc)}):\n{quoted_text}"
    )
    newer = [other for other in RUNTIMES.values() if other.glibc > runtime.glibc]
    if newer:
        message += f"\nchoose a runtime on a newer glibc: --python {_dotted(newer[0].python)} ({newer[0].system})"
        message += ", or build a wheelhouse for this one and pass --wheelhouse:\n  "
    else:
        message += "\nbuild a wheelhouse for this runtime and pass --wheelhouse:\n  "
    return message + pip_download_command(runtime, "wheelhouse", requirements)


# What pip prints when no wheel of a requirement fits the platform and Python it was given.
_NO_WHEEL = (
    "Could not find a version",
    "No matching distribution",
    "no matching distributions",
    "ResolutionImpossible",
)


def _uninstall(dist: importlib.metadata.Distribution, folder: Path) -> None:
    """Remove the files ``dist``'s RECORD lists under ``folder``, and the folders that leaves empty."""
    emptied: set[Path] = set()
    for item in dist.files or []:
        path = folder / item
        if path.is_file():
            path.unlink()
            emptied.add(path.parent)
    for parent in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        while parent != folder and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def _markers(runtime: LambdaRuntime) -> dict[str, str]:
    version = _dotted(runtime.python)
    return {
        "python_version": version,
        "python_full_version": f"{version}.0",
        "implementation_name": "cpython",
        "implementation_version": f"{version}.0",
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_release": "",
        "platform_version": "",
    }


# ---- the zip ----------------------------------------------------------------------------------------------


def build_zip(
    pipeline: Pipeline,
    plan: Plan,
    out_dir: str | os.PathLike[str],
    *,
    engine: str,
    runtime: LambdaRuntime,
    wheelhouse: str | os.PathLike[str] | None = None,
    bytecode: bool | None = None,
) -> ZipPackage:
    """Write ``out_dir/function.zip`` for ``pipeline``: sparkflow, the closure of :func:`roots` and the project.

    Args:
        engine: the engine the functions run every stage on.
        runtime: the Lambda runtime it is built for.
        wheelhouse: a folder of wheels for ``runtime``; by default the distributions installed here.
        bytecode: compile ``.pyc`` files ahead; by default when this Python is the runtime's (else impossible).

    Raises:
        ZipError: a distribution is missing or not loadable on ``runtime``, a project file collides with one of
            the zip's, or the contents exceed Lambda's 250 MB.
    """
    same_python = sys.version_info[:2] == runtime.python
    if bytecode and not same_python:
        raise ZipError(f"bytecode for {runtime.name} can only be compiled by Python {_dotted(runtime.python)}")
    compile_ahead = same_python if bytecode is None else bytecode
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sparkflow-zip-", dir=out) as scratch:
        root = Path(scratch) / "root"
        distributions = install(roots(engine), runtime, root, wheelhouse, excluded=exclusions(engine))
        owners, pruned = _lay_out(pipeline, plan, distributions, root, skip=out.resolve())
        shipped = tuple(f"{dist.metadata['Name']}=={dist.version}" for dist in distributions)
        if compile_ahead:
            _compile(root)
        entries = sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
        sizes: dict[str, int] = {}
        for entry in entries:
            owner = owners.get(_source_of(entry), owners.get(entry, "project"))
            sizes[owner] = sizes.get(owner, 0) + (root / entry).stat().st_size
        contributors = tuple(sorted(sizes.items(), key=lambda item: (-item[1], item[0])))
        unzipped = sum(sizes.values())
        if unzipped > UNZIPPED_LIMIT.value:
            biggest = ", ".join(f"{name} {_mb(size)}" for name, size in contributors[:8])
            raise ZipError(
                f"the zip's contents are {_mb(unzipped)}, over the {UNZIPPED_LIMIT.describe()}: biggest are "
                f"{biggest}; move data files out of the project, or package the pipeline as an image "
                f"(sparkflow package without --engine {engine})"
            )
        target = out / ZIP_NAME
        partial = Path(scratch) / ZIP_NAME
        _write_zip(root, entries, partial)
        os.replace(partial, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    return ZipPackage(
        path=target,
        runtime=runtime,
        zipped_bytes=target.stat().st_size,
        unzipped_bytes=unzipped,
        contributors=contributors,
        distributions=shipped,
        pruned_bytes=pruned,
        bytecode=compile_ahead,
        sha256=digest,
    )


def _lay_out(
    pipeline: Pipeline,
    plan: Plan,
    distributions: list[importlib.metadata.Distribution],
    root: Path,
    *,
    skip: Path,
) -> tuple[dict[str, str], int]:
    """Complete the zip's files under ``root``, where pip installed ``distributions``: prune those (:data:`PRUNED`),
    add sparkflow, the Plan and the project; return (path in the zip -> owner, bytes pruned)."""
    owners: dict[str, str] = {}
    pruned = 0
    for dist in distributions:
        for item in dist.files or []:
            path = root / item
            if item.parts[0] == ".." or not path.is_file():  # a console script, removed with bin/
                continue
            arcname = item.as_posix()
            if is_pruned(arcname):
                pruned += path.stat().st_size
                path.unlink()
                continue
            owners[arcname] = dist.metadata["Name"]
    package_dir = project.SPARKFLOW_DIR
    for relative, source_path in project.tree_files(package_dir, skip=[skip]):
        arcname = f"sparkflow/{relative}"
        target = root / arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_path, target)
        target.chmod(0o644)
        owners[arcname] = "sparkflow"
    clashes: list[str] = []
    owners[project.PLAN_FILE] = "sparkflow"
    project.write_plan(plan, root)
    for relative, source_path in project.project_files(pipeline, plan, skip=[skip, package_dir]):
        if relative == project.PLAN_FILE:  # a Plan an earlier package left in the project: this one ships instead
            continue
        if relative in owners:
            clashes.append(f"{relative} (also in {owners[relative]})")
            continue
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source_path, target)
        target.chmod(0o644)
    if clashes:
        raise ZipError(
            "the project's files share a path with the zip's own (the project goes to the zip's root): "
            f"{', '.join(clashes[:5])}; rename them"
        )
    return owners, pruned


def _compile(root: Path) -> None:
    """Compile every ``.py`` under ``root`` to unchecked-hash bytecode (valid whatever the files' times after
    unzipping), naming the function's paths (``/var/task/...``) for tracebacks. In a fresh interpreter with a fixed
    hash seed: frozenset constants are marshalled in string-hash order, so the same sources give the same bytes.
    One worker per core (``-j 0``): each file compiles on its own, to the same bytes in any worker."""
    command = [sys.executable, "-m", "compileall", "-qq", "-j", "0", "--invalidation-mode", "unchecked-hash"]
    command += ["-d", TASK_ROOT, str(root)]
    subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}, check=False, stdout=subprocess.DEVNULL)


def is_pruned(arcname: str) -> bool:
    """Whether the zip leaves out the distribution file ``arcname`` (:data:`PRUNED`, :data:`AWS_SERVICES`)."""
    if arcname.startswith(tuple(f"botocore/data/{service}/" for service in AWS_SERVICES)):
        return False
    return any(fnmatch.fnmatch(arcname, pattern) for pattern, _ in PRUNED)


def _source_of(entry: str) -> str:
    """The source file a ``__pycache__/x.cpython-312.pyc`` was compiled from (else ``entry`` itself)."""
    match = re.fullmatch(r"(?:(.*)/)?__pycache__/([^/.]+)\.[^/]+\.pyc", entry)
    if match is None:
        return entry
    return f"{match[1]}/{match[2]}.py" if match[1] else f"{match[2]}.py"


def _write_zip(root: Path, entries: list[str], target: Path) -> None:
    """The same files always give the same bytes: sorted entries, one fixed time, modes 644 or 755."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            path = root / entry
            info = zipfile.ZipInfo(entry, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            with open(path, "rb") as reader, archive.open(info, "w") as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)


# ---- the build folder: zip and template -------------------------------------------------------------------


def package_zip(
    pipeline: Pipeline,
    plan: Plan,
    definition_text: str,
    out_dir: str | os.PathLike[str],
    *,
    engine: str,
    inputs: Mapping[str, str] | None = None,
    runtime: LambdaRuntime | None = None,
    wheelhouse: str | os.PathLike[str] | None = None,
    bytecode: bool | None = None,
) -> ZipPackage:
    """Write ``function.zip`` and ``template.yaml`` (zip functions, ``SPARKFLOW_ENGINE=<engine>``) into ``out_dir``.

    Raises:
        ZipError: see :func:`build_zip`; also for an engine that ships as an image, a stage placed anywhere but on a
            function, and a Delta sink.
        PackageError: a stage that declares another engine (:func:`~sparkflow.shipping.engine_fit.check_engine`), a
            location or KV store that cannot work on AWS, or a definition that is not this plan's.
    """
    spec = engines.engine(engine, what="--engine")
    if spec.ships_as != "zip":
        raise ZipError(
            f'engine {engine!r} ships as an image, not a Lambda zip (docs/engines.md, "Deployable size"): package '
            "its image (sparkflow package without --python and --wheelhouse)"
        )
    chosen = runtime or runtime_for(None)
    elsewhere = [f"{task.id} ({task.placement})" for task in plan.tasks if task.placement not in ("", "function")]
    if elsewhere:
        raise ZipError(
            f"stage(s) {', '.join(elsewhere)} are not placed on a function: containers and serverless Spark run the "
            "stage image, which a zip deployment does not have; package the pipeline as an image (without --engine "
            f"{engine})"
        )
    delta = [f"{sink.name} ({sink.origin})" for sink in plan.sinks if sink.format == "delta"]
    if delta:
        raise ZipError(
            f"sink(s) {', '.join(delta)} publish Delta tables, whose library (deltalake, about 130 MB) does not fit a "
            f"zip deployment beside {engine} and pyarrow (250 MB in all): package the pipeline as an image (without "
            f"--engine {engine}), or publish Parquet (format='parquet')"
        )
    check_engine(pipeline, plan, engine)
    code = zip_code(pipeline, plan, chosen, "0" * 64)
    template_text(plan, definition_text, engine=engine, inputs=inputs, zip_code=code)  # validates before the build
    built = build_zip(pipeline, plan, out_dir, engine=engine, runtime=chosen, wheelhouse=wheelhouse, bytecode=bytecode)
    code = zip_code(pipeline, plan, chosen, built.sha256)
    text = template_text(plan, definition_text, engine=engine, inputs=inputs, zip_code=code)
    (Path(out_dir) / "template.yaml").write_text(text, encoding="utf-8", newline="\n")
    return built


def zip_code(pipeline: Pipeline, plan: Plan, runtime: LambdaRuntime, sha256: str) -> ZipCode:
    """The template's view of a zip: runtime, default S3 key (named by the digest) and the pipeline it serves."""
    return ZipCode(
        runtime=runtime.name,
        key=f"sparkflow/{plan.pipeline}/function-{sha256[:16]}.zip",
        pipeline_spec=project.pipeline_spec(pipeline, plan, folder=TASK_ROOT),
        plan_path=project.plan_path(TASK_ROOT),
    )


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dotted(version: tuple[int, int]) -> str:
    return ".".join(str(part) for part in version)


def _mb(size: int) -> str:
    return f"{size / 1024**2:,.1f} MB"


__all__ = [
    "AWS_SERVICES",
    "NOT_SHIPPED",
    "PRUNED",
    "RUNTIMES",
    "UNZIPPED_LIMIT",
    "LambdaRuntime",
    "ZipError",
    "ZipPackage",
    "build_zip",
    "closure",
    "exclusions",
    "install",
    "is_pruned",
    "package_zip",
    "pip_args",
    "pip_download_command",
    "roots",
    "runtime_for",
]
