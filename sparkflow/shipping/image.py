"""What an image's Dockerfile says about the engine it serves, the same for every target's template."""

from __future__ import annotations

from typing import Any

from sparkflow import engines
from sparkflow.shipping.environment import engine_environment
from sparkflow.shipping.requirements import engine_pins


def engine_values(engine: str, package_command: str) -> dict[str, Any]:
    """The template values of an image of ``engine``: the command that writes it again (``package_command`` with the
    engine's flag), the engine's name and summary, whether it runs on a JVM (Java, Spark's launcher, its CDS
    archive), the engine's own pins for the comments, and the environment the image sets for it."""
    spec = engines.engine(engine, what="--engine")
    return {
        "package_command": f"{package_command}{engines.flag(engine)}",
        "engine": engine,
        "summary": spec.summary,
        "jvm": spec.needs_jvm,
        "engine_pins": ", ".join(engine_pins(engine)),
        "engine_environment": engine_environment(engine),
    }
