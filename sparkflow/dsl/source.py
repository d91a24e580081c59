"""``sf.source(...)``: a dataset that exists before the pipeline runs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from sparkflow.dsl.names import check_name
from sparkflow.errors import DefinitionError, Origin
from sparkflow.units import parse_size

FORMATS = ("text", "csv", "json", "parquet")
_EXTENSIONS = {".txt": "text", ".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
# Reader options each format understands, with their types.
_OPTIONS: dict[str, dict[str, type]] = {
    "text": {},
    "csv": {"header": bool, "sep": str, "schema": str},
    "json": {"schema": str},
    "parquet": {},
}


@dataclass(frozen=True)
class Source:
    """A declared input dataset. Inside a pipeline it is passed to stages like any stage output.

    Attributes:
        name: the source's name (a node id in the graph).
        uri: where the data lives: a local path, ``s3://...`` or ``gs://...``; a folder or one file.
        format: ``text``, ``csv``, ``json`` (JSON lines) or ``parquet``.
        size_bytes: the declared size hint, or None when unknown.
        options: reader options as sorted (key, value) pairs, e.g. ``(("header", True),)``.
        origin: where ``sf.source`` was called.
    """

    name: str
    uri: str
    format: str
    size_bytes: int | None
    options: tuple[tuple[str, Any], ...]
    origin: Origin

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


def source(name: str, uri: str, format: str | None = None, size: str | int | None = None, **options: Any) -> Any:
    """Declare an input dataset.

    Args:
        name: a short identifier (letters, digits, '_').
        uri: a local path, ``s3://bucket/prefix/`` or ``gs://bucket/prefix/``.
        format: ``text``, ``csv``, ``json`` or ``parquet``; guessed from the file extension when omitted.
        size: how big the input may get, e.g. ``"40GB"``: the compiler plans splitting and placement with it.
        **options: reader options: ``header``, ``sep`` and ``schema`` (a DDL string, e.g.
            ``"id INT, name STRING"``) for CSV; ``schema`` for JSON lines. Without a schema, types are inferred.

    Returns:
        A :class:`Source`, typed as ``Any`` so it can be passed where a stage expects a DataFrame.

    Example:
        >>> books = source("books", "s3://my-bucket/books/", format="text", size="40GB")
    """
    caller = sys._getframe(1)
    origin = Origin(caller.f_code.co_filename, caller.f_lineno)
    check_name(name, what="source", origin=origin)
    if not isinstance(uri, str) or not uri.strip():
        raise DefinitionError(f"source {name!r}: uri must be a non-empty string such as 's3://bucket/path/'", origin)
    if any(ch in uri for ch in "\n\r\0"):
        raise DefinitionError(f"source {name!r}: uri {uri!r} contains a control character", origin)
    if format is None:
        format = next((fmt for ext, fmt in _EXTENSIONS.items() if uri.lower().endswith(ext)), None)
        if format is None:
            raise DefinitionError(
                f"source {name!r}: cannot tell the format of {uri!r}; pass format= one of {', '.join(FORMATS)}",
                origin,
            )
    if format not in FORMATS:
        raise DefinitionError(
            f"source {name!r}: unknown format {format!r}; use one of {', '.join(FORMATS)}",
            origin,
        )
    allowed = _OPTIONS[format]
    for key, value in options.items():
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise DefinitionError(
                f"source {name!r}: unknown option {key}= for format {format!r} (known: {known})", origin
            )
        if not isinstance(value, allowed[key]):
            raise DefinitionError(f"source {name!r}: option {key}={value!r} must be a {allowed[key].__name__}", origin)
    if format == "csv":
        options.setdefault("header", True)
    size_bytes = None if size is None else parse_size(size, field="size", origin=origin)
    return Source(name, uri, format, size_bytes, tuple(sorted(options.items())), origin)
