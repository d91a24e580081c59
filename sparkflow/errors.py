"""The one exception family of sparkflow.

Every mistake a user can make ends in a :class:`SparkflowError` that names where it happened (the user's
file and line, or the field of an event) and says how to fix it. Subclasses also derive from a built-in
exception, so callers may catch either (as ``attrs`` does with ``FrozenError(AttributeError)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    """Where something was declared in the user's code."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class SparkflowError(Exception):
    """A problem the user can fix, with the place it comes from.

    Args:
        message: what is wrong and how to fix it.
        origin: the user's file and line, when the problem comes from their code.
    """

    def __init__(self, message: str, origin: Origin | None = None) -> None:
        self.message = message
        self.origin = origin
        super().__init__(f"{origin}: {message}" if origin else message)

    @property
    def file(self) -> str | None:
        return self.origin.file if self.origin else None

    @property
    def line(self) -> int | None:
        return self.origin.line if self.origin else None


class DefinitionError(SparkflowError, ValueError):
    """A pipeline, stage or source is declared wrongly (found when decorating or tracing)."""


class CompileError(SparkflowError, ValueError):
    """The compiler found one or more problems; all of them are in :attr:`problems`."""

    def __init__(self, problems: Iterable[SparkflowError]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        if len(self.problems) == 1:
            super().__init__(first.message, first.origin)
        else:
            listed = "\n".join(f"  - {problem}" for problem in self.problems)
            super().__init__(f"{len(self.problems)} problems:\n{listed}", first.origin)


class EventError(SparkflowError, ValueError):
    """A runtime event (or result) does not follow the protocol; names the offending field."""


class StorageError(SparkflowError, OSError):
    """A location is refused (outside the storage root) or cannot be read or written."""


class ConfinementError(StorageError):
    """A location outside the pipeline's storage root or declared sources was refused; nothing was touched."""


class InputError(SparkflowError, ValueError):
    """A stage's input is missing, unreadable or corrupt."""


class EnvironmentProblem(SparkflowError, RuntimeError):
    """Something the runtime needs on this machine is missing (Java, a package)."""


class PackageError(SparkflowError, ValueError):
    """The pipeline cannot be packaged or deployed as asked (a location, a KV store, a definition)."""


class OptionError(SparkflowError, ValueError):
    """A command asked a target for something it cannot do, or without an option it needs; says which option."""


class EngineUnsupported(SparkflowError, NotImplementedError):
    """A stage uses an API its engine cannot run; the message names the API and the user's line, and suggests an
    engine that runs it. Final: another attempt on the same engine fails the same way."""
