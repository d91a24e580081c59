"""The registry of compile targets. Adding a target = one package + one entry here."""

from __future__ import annotations

import difflib
import importlib

from sparkflow.errors import CompileError, DefinitionError, Origin
from sparkflow.targets.base import CloudTarget

# name -> module exposing TARGET; imported only when used so the CLI and the runtime stay light.
_REGISTRY = {
    "aws": "sparkflow.targets.aws",
    "gcp": "sparkflow.targets.gcp",
}


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
