"""Human-facing files (Dockerfiles) from jinja2 templates kept beside each target's code."""

from __future__ import annotations

import os
from typing import Any


def render(package_file: str, name: str, **values: Any) -> str:
    """Render ``templates/<name>`` next to ``package_file``; a missing value is an error, not an empty string."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(package_file), "templates")),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    return environment.get_template(name).render(**values)
