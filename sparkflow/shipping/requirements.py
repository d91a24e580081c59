"""sparkflow's runtime requirements as its metadata pins them, and what the functions of each engine install of them.

An engine's own distributions (:attr:`sparkflow.engines.EngineSpec.installs`: pyspark for Spark, pysail and PySpark's
Connect client for Sail, sqlframe and DuckDB for DuckDB) go only into its own image or zip; everything else sparkflow
pins goes into all of them.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING

from sparkflow.engines import ENGINES, runtime_engine
from sparkflow.errors import PackageError

if TYPE_CHECKING:
    from packaging.requirements import Requirement


def runtime_requirements() -> list[str]:
    """sparkflow's own dependencies as its metadata pins them (no extras), every engine's included."""
    requirements = importlib.metadata.requires("sparkflow") or []
    return [requirement for requirement in requirements if ";" not in requirement]


def engine_requirements(engine: str) -> list[str]:
    """What a function of ``engine`` installs, pinned, in sparkflow's order: sparkflow's runtime requirements
    without what only other engines install, this engine's own as sparkflow pins them, and a stand-in at the version
    of the requirement it stands in for (sail: ``pyspark-client==V`` where sparkflow pins ``pyspark[connect]==V``).

    Raises:
        PackageError: sparkflow's metadata pins no version of a requirement the engine's own distributions take
            theirs from (a broken install).
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    own = {canonicalize_name(package.pin): package for package in runtime_engine(engine).installs}
    others = left_out(engine)
    kept: list[str] = []
    for line in runtime_requirements():
        requirement = Requirement(line)
        key = canonicalize_name(requirement.name)
        package = own.get(key)
        if package is None:
            if key not in others:
                kept.append(line)
        elif package.version_of is None:
            kept.append(line)
            del own[key]
        elif _pinned(requirement):
            kept.append(f"{package.name}=={_pinned(requirement)}")
            del own[key]
    if own:
        raise PackageError(
            f"sparkflow's metadata pins no {', '.join(sorted(own))}, which engine {engine!r} installs: reinstall "
            "sparkflow (pip install -e .)"
        )
    return kept


def engine_pins(engine: str) -> list[str]:
    """``name==version`` of what only ``engine``'s functions install (extras left out), in the registry's order."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    installed = {canonicalize_name(Requirement(line).name): Requirement(line) for line in engine_requirements(engine)}
    own = [installed[canonicalize_name(package.name)] for package in runtime_engine(engine).installs]
    return [f"{requirement.name}=={_pinned(requirement)}" for requirement in own]


def left_out(engine: str) -> set[str]:
    """The canonical names of the distributions that only other engines' functions install (and of the
    requirements they stand in for), which a function of ``engine`` does not."""
    from packaging.utils import canonicalize_name

    mine = {canonicalize_name(package.name) for package in runtime_engine(engine).installs}
    theirs = {
        canonicalize_name(name)
        for spec in ENGINES.values()
        if spec.name != engine
        for package in spec.installs
        for name in (package.name, package.pin)
    }
    return {str(name) for name in theirs - mine}


def pyspark_version() -> str:
    from packaging.requirements import Requirement

    for line in runtime_requirements():
        requirement = Requirement(line)
        if requirement.name.lower() == "pyspark" and _pinned(requirement):
            return _pinned(requirement)
    raise PackageError("sparkflow's metadata pins no pyspark version: reinstall sparkflow (pip install -e .)")


def requirements_text(engine: str) -> str:
    """The ``requirements.txt`` of an image of ``engine``: one pinned requirement per line."""
    return "".join(f"{line}\n" for line in engine_requirements(engine))


def _pinned(requirement: Requirement) -> str:
    """The version ``requirement`` pins with ``==`` (empty when it pins none)."""
    return next((spec.version for spec in requirement.specifier if spec.operator == "=="), "")
