"""A plain Lambda .zip deployment for the duckdb engine: no image, no Java, no pyspark.

``package_zip(pipeline, plan, definition_text, out_dir)`` writes into ``out_dir``:

* ``function.zip``: at its root (``/var/task`` on Lambda, first on ``sys.path``) sparkflow, the dependency closure
  of the duckdb engine and the user's project (so the project's own imports work as they do in the image, whose
  project folder is on ``PYTHONPATH``), with bytecode compiled ahead when the build runs the target's Python
  (unchecked-hash ``.pyc``: ``/var/task`` is read-only, so Python could not cache bytecode there and would
  compile sqlglot, botocore and the rest again on every cold start);
* ``template.yaml``: the image template's stack with ``PackageType: Zip`` functions (runtime, the handler
  ``sparkflow.runtime.aws.handler``, ``SPARKFLOW_ENGINE=duckdb`` and what the image sets: the pipeline, /tmp as
  the work folder and home) whose code is ``s3://${CodeBucket}/${CodeKey}``; the key's default names the zip by
  its digest, so a changed zip updates the functions.

**What is in the closure.** sparkflow's pinned runtime requirements minus what a duckdb function never runs
(:data:`NOT_SHIPPED`: pyspark and so Java, the compiler's and the CLI's libraries, GCP storage, pandas), followed
through every distribution's ``Requires-Dist`` under the target runtime's markers. The files come from installed
distributions (their RECORD) or from a wheelhouse of wheels for the target, e.g.::

    pip download --only-binary=:all: --platform manylinux_2_34_x86_64 --python-version 3.12 \\
        --implementation cp -d wheelhouse -r requirements.txt   # sparkflow's pins, see `pip show sparkflow`

Each distribution must be a wheel the target can load: its Python tag, and a manylinux glibc no newer than the
runtime's OS (python3.11 runs on Amazon Linux 2, glibc 2.26; python3.12 and 3.13 on Amazon Linux 2023, glibc
2.34). Files no stage loads are left out (:data:`PRUNED`: test suites, C headers, Arrow Flight, Arrow's own S3
client). Lambda counts the unzipped contents against 250 MB: over it, the error names the biggest contributors.
"""

from __future__ import annotations

import email.parser
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
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import PackageError
from sparkflow.plan import Plan
from sparkflow.shipping import project
from sparkflow.shipping.requirements import runtime_requirements
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

# sparkflow requirements a duckdb function never imports, and why (their own dependencies go with them).
NOT_SHIPPED = {
    "pyspark": "the Spark engine: Spark stages ship as a container image with Java",
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
)


class ZipError(PackageError):
    """The zip cannot be built for this runtime (a missing or incompatible distribution, over the size limit)."""


@dataclass(frozen=True)
class Distribution:
    """One distribution of the closure and the files it puts in the zip.

    Attributes:
        name: its name as published.
        version: its version.
        requires: its ``Requires-Dist`` lines.
        tags: its wheel tags, e.g. ``cp312-cp312-manylinux_2_28_x86_64``.
        where: where it comes from (for messages).
        files: (path in the zip, source): a file path, or a member of ``wheel``.
        wheel: the wheel the files are members of; None for an installed distribution.
    """

    name: str
    version: str
    requires: tuple[str, ...]
    tags: tuple[str, ...]
    where: str
    files: tuple[tuple[str, str], ...]
    wheel: str | None = None

    @property
    def key(self) -> str:
        return _canonical(self.name)


# Finds a distribution by canonical name and version specifier.
_Finder = Callable[[str, str], "Distribution | None"]


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


def roots() -> list[str]:
    """sparkflow's pinned runtime requirements that a duckdb function needs (all but :data:`NOT_SHIPPED`)."""
    from packaging.requirements import Requirement

    return [line for line in runtime_requirements() if _canonical(Requirement(line).name) not in NOT_SHIPPED]


# ---- the closure ------------------------------------------------------------------------------------------


def resolve(
    requirements: list[str],
    runtime: LambdaRuntime,
    wheelhouse: str | os.PathLike[str] | None = None,
    *,
    excluded: Collection[str] = tuple(NOT_SHIPPED),
) -> list[Distribution]:
    """The distributions ``requirements`` need on ``runtime``, from ``wheelhouse`` or the installed ones, leaving
    out ``excluded`` (canonical names) and what only they need.

    Raises:
        ZipError: with every distribution that is missing, of the wrong version or not loadable on ``runtime``.
    """
    from packaging.requirements import Requirement

    find = _wheelhouse(Path(wheelhouse)) if wheelhouse is not None else _installed()
    environment = _markers(runtime)
    chosen: dict[str, Distribution] = {}
    done: set[tuple[str, str]] = set()
    problems: list[str] = []
    queue: list[tuple[Requirement, str]] = [(Requirement(line), "sparkflow") for line in requirements]
    while queue:
        requirement, wanted_by = queue.pop(0)
        key = _canonical(requirement.name)
        if key in excluded:
            continue
        dist = chosen.get(key)
        if dist is None:
            dist = find(key, str(requirement.specifier))
            if dist is None:
                source = f"the wheelhouse {wheelhouse}" if wheelhouse is not None else "this environment"
                problems.append(f"{requirement} (needed by {wanted_by}) is not in {source}")
                continue
            chosen[key] = dist
            problem = _unfit(dist, runtime)
            if problem:
                problems.append(problem)
        if not requirement.specifier.contains(dist.version, prereleases=True):
            problems.append(f"{dist.name} {dist.version} ({dist.where}) does not satisfy {requirement} ({wanted_by})")
        for extra in ("", *sorted(requirement.extras)):
            if (key, extra) in done:
                continue
            done.add((key, extra))
            for line in dist.requires:
                needed = Requirement(line)
                # An unconditional requirement comes with the distribution itself, not again with each extra.
                marker = needed.marker
                if (not extra) if marker is None else marker.evaluate({**environment, "extra": extra}):
                    queue.append((needed, f"{dist.name}[{extra}]" if extra else dist.name))
    if problems:
        newer = [other for other in RUNTIMES.values() if other.glibc > runtime.glibc]
        hint = ""
        if newer and any("needs glibc" in problem for problem in problems):
            hint = f" (or choose a runtime on a newer glibc: --python {_dotted(newer[0].python)}, {newer[0].system})"
        raise ZipError(
            f"cannot build a {runtime.name} zip ({runtime.system}, glibc {_dotted(runtime.glibc)}):\n"
            + "\n".join(f"  - {problem}" for problem in sorted(set(problems)))
            + f"\nbuild a wheelhouse for that runtime and pass --wheelhouse{hint}:\n  "
            + pip_download_command(runtime, "wheelhouse")
        )
    return sorted(chosen.values(), key=lambda dist: dist.key)


def pip_download_command(runtime: LambdaRuntime, folder: str) -> str:
    """The command that fills ``folder`` with wheels of sparkflow's duckdb closure for ``runtime``."""
    return shlex.join(pip_download_args(runtime, folder))


def pip_download_args(runtime: LambdaRuntime, folder: str) -> list[str]:
    """:func:`pip_download_command` as arguments (``pip`` first)."""
    from packaging.requirements import Requirement

    arguments = ["pip", "download", "--only-binary=:all:"]
    # pip takes a manylinux_2_N platform literally (only the legacy manylinux2014 stands for older ones too).
    for minor in range(runtime.glibc[1], 16, -1):
        arguments += ["--platform", f"manylinux_2_{minor}_x86_64"]
    arguments += ["--platform", "manylinux2014_x86_64", "--python-version", _dotted(runtime.python)]
    arguments += ["--implementation", "cp", "-d", folder]
    for line in roots():
        requirement = Requirement(line)
        requirement.extras = set()  # an extra's shipped requirements are roots too; the others need no download
        arguments.append(str(requirement))
    return arguments


def _unfit(dist: Distribution, runtime: LambdaRuntime) -> str | None:
    """Why ``dist`` cannot be loaded on ``runtime``, or None."""
    from packaging.tags import parse_tag

    if not dist.tags:
        return f"{dist.name} {dist.version} ({dist.where}) was not installed from a wheel: its platform is unknown"
    reasons: list[str] = []
    for line in dist.tags:
        for tag in parse_tag(line):
            reason = _python_unfit(tag.interpreter, tag.abi, runtime) or _platform_unfit(tag.platform, runtime)
            if reason is None:
                return None
            reasons.append(reason)
    return f"{dist.name} {dist.version} ({', '.join(dist.tags)}): {min(reasons, key=len)}"


def _python_unfit(interpreter: str, abi: str, runtime: LambdaRuntime) -> str | None:
    major, minor = runtime.python
    match = re.fullmatch(r"(py|cp)(\d)(\d*)", interpreter)
    if match is None:
        return f"built for {interpreter}, not CPython"
    kind, tag_major, tag_minor = match[1], int(match[2]), int(match[3] or 0)
    if tag_major != major:
        return f"built for Python {tag_major}"
    if kind == "py" or abi == "abi3":
        return None if tag_minor <= minor else f"needs Python {tag_major}.{tag_minor}"
    if tag_minor != minor:
        return f"built for Python {tag_major}.{tag_minor}, not {major}.{minor}"
    return None


_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def _platform_unfit(platform: str, runtime: LambdaRuntime) -> str | None:
    if platform == "any":
        return None
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    legacy = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)", platform)
    if match is not None:
        glibc, machine = (int(match[1]), int(match[2])), match[3]
    elif legacy is not None:
        glibc, machine = _LEGACY_MANYLINUX[legacy[1]], legacy[2]
    else:
        return f"built for {platform}, not manylinux x86_64"
    if machine != "x86_64":
        return f"built for {machine}, not x86_64"
    if glibc > runtime.glibc:
        return f"needs glibc {_dotted(glibc)}; {runtime.name} runs on {runtime.system} (glibc {_dotted(runtime.glibc)})"
    return None


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


def _installed() -> _Finder:
    """Distributions of this environment, the first on ``sys.path`` winning, their files from RECORD."""
    found: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(_canonical(name), dist)

    def find(key: str, specifier: str) -> Distribution | None:
        dist = found.get(key)
        if dist is None:
            return None
        files: list[tuple[str, str]] = []
        for item in dist.files or []:
            if item.parts[0] == ".." or "__pycache__" in item.parts:  # scripts outside site-packages; bytecode
                continue
            path = Path(str(dist.locate_file(item)))
            if path.is_file():
                files.append((item.as_posix(), str(path)))
        wheel = dist.read_text("WHEEL") or ""
        tags = tuple(line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:"))
        where = f"installed in {dist.locate_file('')}"
        return Distribution(dist.metadata["Name"], dist.version, tuple(dist.requires or ()), tags, where, tuple(files))

    return find


def _wheelhouse(folder: Path) -> _Finder:
    """Wheels in ``folder``; of several versions of one distribution, the newest that satisfies the requirement."""
    from packaging.specifiers import SpecifierSet
    from packaging.utils import parse_wheel_filename
    from packaging.version import Version

    if not folder.is_dir():
        raise ZipError(f"--wheelhouse {folder}: no such folder")
    wheels: dict[str, list[tuple[Version, Path]]] = {}
    for path in sorted(folder.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(path.name)
        wheels.setdefault(_canonical(name), []).append((version, path))

    def find(key: str, specifier: str) -> Distribution | None:
        candidates = [item for item in wheels.get(key, []) if SpecifierSet(specifier).contains(str(item[0]), True)]
        candidates = candidates or wheels.get(key, [])  # the version mismatch is reported by the caller
        if not candidates:
            return None
        return _read_wheel(max(candidates)[1])

    return find


def _read_wheel(path: Path) -> Distribution:
    from packaging.utils import parse_wheel_filename

    name, version, _, tags = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as archive:
        members = [member for member in archive.namelist() if not member.endswith("/")]
        metadata_file = next((m for m in members if re.fullmatch(r"[^/]+\.dist-info/METADATA", m)), None)
        if metadata_file is None:
            raise ZipError(f"{path}: not a wheel (no .dist-info/METADATA)")
        metadata = email.parser.Parser().parsestr(archive.read(metadata_file).decode("utf-8"))
    files: list[tuple[str, str]] = []
    for member in members:
        parts = member.split("/")
        if "__pycache__" in parts:
            continue
        if parts[0].endswith(".data"):  # purelib and platlib go to the root; scripts, headers and data nowhere
            if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                continue
            files.append(("/".join(parts[2:]), member))
        else:
            files.append((member, member))
    return Distribution(
        metadata["Name"] or str(name),
        str(version),
        tuple(metadata.get_all("Requires-Dist") or ()),
        tuple(sorted(str(tag) for tag in tags)),
        str(path),
        tuple(files),
        wheel=str(path),
    )


# ---- the zip ----------------------------------------------------------------------------------------------


def build_zip(
    pipeline: Pipeline,
    plan: Plan,
    out_dir: str | os.PathLike[str],
    *,
    runtime: LambdaRuntime,
    wheelhouse: str | os.PathLike[str] | None = None,
    bytecode: bool | None = None,
) -> ZipPackage:
    """Write ``out_dir/function.zip`` for ``pipeline``: sparkflow, the closure of :func:`roots` and the project.

    Args:
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
    distributions = resolve(roots(), runtime, wheelhouse)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sparkflow-zip-", dir=out) as scratch:
        root = Path(scratch) / "root"
        owners, pruned = _stage(pipeline, plan, distributions, root, skip=out.resolve())
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
                "(sparkflow package without --engine duckdb)"
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
        distributions=tuple(f"{dist.name}=={dist.version}" for dist in distributions),
        pruned_bytes=pruned,
        bytecode=compile_ahead,
        sha256=digest,
    )


def _stage(
    pipeline: Pipeline, plan: Plan, distributions: list[Distribution], root: Path, *, skip: Path
) -> tuple[dict[str, str], int]:
    """Lay the zip's files out under ``root``; return (path in the zip -> owner, bytes pruned)."""
    owners: dict[str, str] = {}
    pruned = 0
    for dist in distributions:
        archive = zipfile.ZipFile(dist.wheel) if dist.wheel else None
        try:
            for arcname, source in dist.files:
                if _pruned(arcname):
                    pruned += archive.getinfo(source).file_size if archive else os.path.getsize(source)
                    continue
                target = root / arcname
                target.parent.mkdir(parents=True, exist_ok=True)
                if archive is not None:
                    info = archive.getinfo(source)
                    with archive.open(info) as reader, open(target, "wb") as writer:
                        shutil.copyfileobj(reader, writer, 1 << 20)
                    target.chmod(0o755 if (info.external_attr >> 16) & 0o111 else 0o644)
                else:
                    shutil.copyfile(source, target)
                    target.chmod(0o755 if os.stat(source).st_mode & 0o111 else 0o644)
                owners[arcname] = dist.name
        finally:
            if archive is not None:
                archive.close()
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


def _pruned(arcname: str) -> bool:
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
    inputs: Mapping[str, str] | None = None,
    runtime: LambdaRuntime | None = None,
    wheelhouse: str | os.PathLike[str] | None = None,
    bytecode: bool | None = None,
) -> ZipPackage:
    """Write ``function.zip`` and ``template.yaml`` (zip functions, ``SPARKFLOW_ENGINE=duckdb``) into ``out_dir``.

    Raises:
        ZipError: see :func:`build_zip`; also when a stage declares ``engine="spark"`` (a zip has no Spark) or is
            placed anywhere but on a function.
        PackageError: a location or KV store that cannot work on AWS, or a definition that is not this plan's.
    """
    chosen = runtime or runtime_for(None)
    calls = pipeline.trace().calls
    on_spark = [
        f"{task.id} ({calls[task.id].stage.origin})"
        for task in plan.tasks
        if task.id in calls and task.engine == "spark" and calls[task.id].stage.options.engine_declared
    ]
    elsewhere = [f"{task.id} ({task.placement})" for task in plan.tasks if task.placement not in ("", "function")]
    if elsewhere:
        raise ZipError(
            f"stage(s) {', '.join(elsewhere)} are not placed on a function: containers and serverless Spark run the "
            "stage image, which a zip deployment does not have; package the pipeline as an image (without --engine "
            "duckdb)"
        )
    delta = [f"{sink.name} ({sink.origin})" for sink in plan.sinks if sink.format == "delta"]
    if delta:
        raise ZipError(
            f"sink(s) {', '.join(delta)} publish Delta tables, whose library (deltalake, about 130 MB) does not fit a "
            "zip deployment beside DuckDB and pyarrow (250 MB in all): package the pipeline as an image (without "
            "--engine duckdb), or publish Parquet (format='parquet')"
        )
    if on_spark:
        raise ZipError(
            f"stage(s) {', '.join(on_spark)} declare engine='spark', which a zip deployment cannot run (no Java, "
            "no pyspark): drop engine= there, or package the pipeline as an image (without --engine duckdb)"
        )
    code = zip_code(pipeline, plan, chosen, "0" * 64)
    template_text(plan, definition_text, inputs=inputs, zip_code=code)  # validates before the long build
    built = build_zip(pipeline, plan, out_dir, runtime=chosen, wheelhouse=wheelhouse, bytecode=bytecode)
    text = template_text(plan, definition_text, inputs=inputs, zip_code=zip_code(pipeline, plan, chosen, built.sha256))
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
    "NOT_SHIPPED",
    "PRUNED",
    "RUNTIMES",
    "UNZIPPED_LIMIT",
    "Distribution",
    "LambdaRuntime",
    "ZipError",
    "ZipPackage",
    "build_zip",
    "package_zip",
    "pip_download_command",
    "resolve",
    "roots",
    "runtime_for",
]
