"""The one rule for names of stages, sources, sinks and pipelines: a letter, then letters, digits, '_' and '-'
(``daily-revenue``, ``daily_revenue``), at most 64 characters.

Names become node ids, state names in Step Functions, step and variable names in Workflows, storage path parts,
log fields and cloud resource names. Each target derives the names it needs from them by a stated rule (a
Workflows variable turns '-' into '_', a CloudFormation stack '_' into '-', a Cloud Run service is lower case),
and two names that would collide after that are a compile error naming both.
"""

from __future__ import annotations

import re

from sparkflow.errors import DefinitionError, Origin

MAX_NAME_LENGTH = 64
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def check_name(name: object, *, what: str, origin: Origin | None) -> str:
    """Return ``name`` if it is a legal name, else raise a :class:`DefinitionError` saying why."""
    if not isinstance(name, str):
        raise DefinitionError(f"{what} name {name!r} must be a string", origin)
    if len(name) > MAX_NAME_LENGTH:
        raise DefinitionError(
            f"{what} name {name[:20]!r}... is {len(name)} characters long; "
            f"the limit is {MAX_NAME_LENGTH}: choose a shorter name=",
            origin,
        )
    if not _NAME.match(name):
        raise DefinitionError(
            f"{what} name {name!r} may contain only letters, digits, '_' and '-' and must start with a letter "
            f"(it becomes a state name and a storage path): e.g. {suggest_name(name)!r}",
            origin,
        )
    return name


def suggest_name(name: str) -> str:
    """A legal name close to ``name``."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")[:MAX_NAME_LENGTH] or "stage"
    return cleaned if cleaned[0].isalpha() else f"s_{cleaned}"[:MAX_NAME_LENGTH]
