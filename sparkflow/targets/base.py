"""What every target provides. A target is one place (a package) plus one entry in the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sparkflow.errors import SparkflowError
from sparkflow.plan import Plan


@dataclass(frozen=True)
class Limit:
    """A provider limit and the documentation page it comes from."""

    value: int
    unit: str
    what: str
    source: str

    def describe(self) -> str:
        return f"{self.what} of {self.value:,} {self.unit} ({self.source})"


@dataclass(frozen=True)
class FunctionLimits:
    """The limits the target-independent passes check for every function stage."""

    memory_mb: Limit
    timeout_s: Limit
    # Local disk a function may fill (Lambda's /tmp); None when it is not the binding limit.
    scratch_bytes: Limit | None = None


class Target(Protocol):
    """A compile target: turns a Plan into the text of one definition file."""

    @property
    def name(self) -> str: ...

    @property
    def suffix(self) -> str:
        """File name suffix of the definition, e.g. ``.asl.json``."""
        ...

    @property
    def function_limits(self) -> FunctionLimits: ...

    def emit(self, plan: Plan) -> str:
        """The definition, deterministic: the same plan gives the same bytes."""
        ...

    def check(self, plan: Plan, definition: str) -> list[SparkflowError]:
        """Problems of the emitted definition against the target's limits (size, states, payload)."""
        ...
