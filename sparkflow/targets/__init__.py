"""The registry of compile targets. Adding a target = one package + one entry here."""

from __future__ import annotations

import difflib
import importlib

from sparkflow.errors import CompileError, DefinitionError, OptionError, Origin
from sparkflow.targets.base import CloudTarget, HoldsRuns

# name -> module exposing TARGET; imported only when used so the CLI and the runtime stay light.
_REGISTRY = {
    "aws": "sparkflow.targets.aws",
    "gcp": "sparkflow.targets.gcp",
}


# Where runs happen besides the compile targets: this machine (`sparkflow run`), for the commands that read runs.
_HERE = {"local": "sparkflow.targets.local"}


def target_names() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_target(name: str, origin: Origin | None = None) -> CloudTarget:
    """The target called ``name``; an unknown name is a CompileError suggesting the nearest one."""
    module = _REGISTRY.get(name)
    if module is None:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=1, cutoff=0.3)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise CompileError(
            [DefinitionError(f"unknown target {name!r}: {hint}(known targets: {', '.join(target_names())})", origin)]
        )
    target: CloudTarget = importlib.import_module(module).TARGET
    return target


def run_target_names() -> tuple[str, ...]:
    return tuple(sorted({**_REGISTRY, **_HERE}))


def get_run_target(name: str) -> HoldsRuns:
    """Where the runs of ``name`` are read (``local``: this machine's, or a compile target's); an unknown name is an
    OptionError suggesting the nearest one."""
    if name in _HERE:
        here: HoldsRuns = importlib.import_module(_HERE[name]).TARGET
        return here
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), run_target_names(), n=1, cutoff=0.3)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise OptionError(f"unknown target {name!r}: {hint}(targets: {', '.join(run_target_names())})")
    return get_target(name)
