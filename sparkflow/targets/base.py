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


@dataclass(frozen=True)
class ContainerLimits:
    """A target's containers (ECS Fargate tasks / Cloud Run jobs): the machine sizes sparkflow uses, as
    (vCPUs, memory in MB) pairs the provider accepts, smallest first, and their limits.

    Attributes:
        service: the name users know, for messages.
        sizes: the sizes a container stage may get; its memory is rounded up to one of them.
        timeout_s: the longest a container may run.
        scratch_bytes: local disk a container may fill; None when its disk is memory (Cloud Run).
    """

    service: str
    sizes: tuple[tuple[int, int], ...]
    timeout_s: Limit
    scratch_bytes: Limit | None
    source: str

    @property
    def memory_mb(self) -> Limit:
        return Limit(self.sizes[-1][1], "MB", f"{self.service} memory limit", self.source)

    def size_for(self, memory_mb: int) -> tuple[int, int]:
        """The smallest size with at least ``memory_mb`` (the largest if none has)."""
        return next((size for size in self.sizes if size[1] >= memory_mb), self.sizes[-1])


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

    @property
    def container_limits(self) -> ContainerLimits | None:
        """Containers for stages too big or too long for a function; None where there are none (local runs)."""
        ...

    @property
    def serverless_spark(self) -> str | None:
        """The serverless Spark service whole stages beyond any container go to (None: there is none)."""
        ...

    def emit(self, plan: Plan) -> str:
        """The definition, deterministic: the same plan gives the same bytes."""
        ...

    def check(self, plan: Plan, definition: str) -> list[SparkflowError]:
        """Problems of the emitted definition against the target's limits (size, states, payload)."""
        ...
