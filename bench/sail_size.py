"""What the sail engine would ship: a Lambda .zip's contents, pruned as the duckdb engine's zip is, and the Python
packages its image installs (or another engine's image, ``--engine spark``), from the wheels the package index has
for one Lambda runtime.

Sail ships as an image (:attr:`sparkflow.engines.EngineSpec.ships_as`) because the zip does not fit Lambda's 250 MB
unzipped limit; this measures by how much, with :mod:`sparkflow.targets.aws.lambda_zip`'s own machinery: pip
installs the wheels for the runtime's platform and Python (:func:`~sparkflow.targets.aws.lambda_zip.install`), the
closure leaves out what a zip function never imports (``NOT_SHIPPED``) but what PySpark's Connect client imports
(pandas, numpy, PyYAML: the client refuses to start without them), and the zip's pruning rules
(:func:`~sparkflow.targets.aws.lambda_zip.is_pruned`) take out tests, headers, stubs and unused AWS models.
``pyspark-client`` and ``pyspark`` are published as source distributions only: the engine's own distributions are
built into wheels here first (pure Python).

    .venv/bin/python bench/sail_size.py [--python 3.12] [--glibc 2.28] [--engine spark]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sparkflow.shipping import project
from sparkflow.shipping.requirements import engine_pins, engine_requirements
from sparkflow.targets.aws import lambda_zip

MiB = 1024**2
ENGINE = "sail"
# What PySpark's Connect client requires (its Requires-Dist) that the duckdb zip leaves out: its session imports them.
NEEDED_BY_THE_CLIENT = ("pandas", "pyyaml")


@dataclass(frozen=True)
class Contents:
    """Installed bytes by distribution (``sparkflow``: the package itself), biggest first."""

    sizes: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(size for _, size in self.sizes)

    def of(self, *names: str) -> int:
        wanted = {name.lower() for name in names}
        return sum(size for name, size in self.sizes if name.lower() in wanted)


def wheelhouse(engine: str, runtime: lambda_zip.LambdaRuntime, requirements: list[str], folder: Path) -> Path:
    """Fill ``folder`` with wheels of ``requirements`` for ``runtime``, at the versions installed here (the engine's
    own distributions built here: some are source distributions only)."""
    folder.mkdir(parents=True, exist_ok=True)
    constraints = folder / "constraints.txt"
    installed = {dist.metadata["Name"].lower(): dist.version for dist in importlib.metadata.distributions()}
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(installed.items())))
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "-w", str(folder), *engine_pins(engine)], check=True)
    download = lambda_zip.pip_args("download", runtime, requirements, wheelhouse=None)
    subprocess.run(
        [*pip, *download, "--quiet", "-d", str(folder), "--find-links", str(folder), "-c", str(constraints)],
        check=True,
    )
    return folder


def installed(
    requirements: list[str], runtime: lambda_zip.LambdaRuntime, wheels: Path, folder: Path, *, zip_rules: bool
) -> Contents:
    """Install ``requirements`` into ``folder`` from ``wheels``; with ``zip_rules``, as a zip would hold them (the
    zip's exclusions and pruning), else everything pip installs, as an image does."""
    excluded = (lambda_zip.exclusions(ENGINE) - set(NEEDED_BY_THE_CLIENT)) if zip_rules else set()
    distributions = lambda_zip.install(requirements, runtime, folder, wheels, excluded=excluded)
    sizes: dict[str, int] = {}
    for dist in distributions:
        for item in dist.files or []:
            path = folder / item
            if item.parts[0] == ".." or not path.is_file() or (zip_rules and lambda_zip.is_pruned(item.as_posix())):
                continue
            name = str(dist.metadata["Name"])
            sizes[name] = sizes.get(name, 0) + path.stat().st_size
    sizes["sparkflow"] = sum(path.stat().st_size for _, path in project.tree_files(project.SPARKFLOW_DIR))
    return Contents(tuple(sorted(sizes.items(), key=lambda item: (-item[1], item[0]))))


def measure_image(engine: str, runtime: lambda_zip.LambdaRuntime, scratch: Path) -> Contents:
    """The Python packages ``engine``'s image installs for ``runtime``."""
    requirements = engine_requirements(engine)
    wheels = wheelhouse(engine, runtime, requirements, scratch / f"{engine}-wheels")
    return installed(requirements, runtime, wheels, scratch / f"{engine}-image", zip_rules=False)


def measure_zip(runtime: lambda_zip.LambdaRuntime, scratch: Path) -> Contents:
    """What a sail zip would hold for ``runtime``."""
    image = engine_requirements(ENGINE)
    wheels = wheelhouse(ENGINE, runtime, image, scratch / f"{ENGINE}-wheels")
    requirements = lambda_zip.roots(ENGINE) + [
        line for line in image if line.split("==")[0].lower() in NEEDED_BY_THE_CLIENT
    ]
    return installed(requirements, runtime, wheels, scratch / f"{ENGINE}-zip", zip_rules=True)


def zip_report(as_zip: Contents) -> list[str]:
    limit = lambda_zip.UNZIPPED_LIMIT.value
    floor = as_zip.of("pysail", "pyarrow")
    biggest = ", ".join(f"{name} {size / MiB:,.1f}" for name, size in as_zip.sizes[:8])
    return [
        f"sail zip, unzipped: {as_zip.total / MiB:,.1f} MB = {as_zip.total / limit:.0%} of Lambda's 250 MB "
        f"({len(as_zip.sizes) - 1} distributions + sparkflow); biggest: {biggest}",
        f"  pysail + pyarrow alone (neither can go: the server, and the client's Arrow): {floor / MiB:,.1f} MB "
        f"= {floor / limit:.0%} of the limit",
    ]


def image_report(engine: str, as_image: Contents) -> str:
    own = ", ".join(f"{pin.split('==')[0]} {as_image.of(pin.split('==')[0]) / MiB:,.1f}" for pin in engine_pins(engine))
    return (
        f"{engine} image, Python packages: {as_image.total / MiB:,.1f} MB ({len(as_image.sizes) - 1} distributions + "
        f"sparkflow, nothing pruned); its own: {own}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default="3.12", choices=sorted(lambda_zip.RUNTIMES), help="the Lambda Python")
    parser.add_argument("--engine", default=ENGINE, help="whose image to measure besides the sail zip (default sail)")
    parser.add_argument(
        "--glibc",
        help="take wheels up to this glibc instead of the runtime's (python3.11's Amazon Linux 2 has 2.26, too old for "
        "pyarrow 26's wheels: 2.28 measures the sizes it would have)",
    )
    args = parser.parse_args()
    runtime = lambda_zip.RUNTIMES[args.python]
    if args.glibc:
        major, minor = (int(part) for part in args.glibc.split("."))
        runtime = dataclasses.replace(runtime, glibc=(major, minor), system=f"glibc {args.glibc} stand-in")
    glibc = ".".join(str(part) for part in runtime.glibc)
    print(f"{runtime.name} wheels (manylinux x86_64 up to glibc {glibc}), MB = MiB:")
    with tempfile.TemporaryDirectory(prefix="sparkflow-sail-size-") as scratch:
        print("\n".join(zip_report(measure_zip(runtime, Path(scratch)))))
        print(image_report(args.engine, measure_image(args.engine, runtime, Path(scratch))))


if __name__ == "__main__":
    main()
