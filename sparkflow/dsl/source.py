"""``sf.source(...)``: a dataset that exists before the pipeline runs."""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from typing import Any

from sparkflow import compression
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
#: What ``on_bad_record=`` may say: fail the stage, drop (and count) bad records, or drop and keep them aside.
BAD_RECORD_POLICIES = ("fail", "skip", "quarantine")
# Formats whose records can be bad one by one: every line of a text file is a record, and a Parquet file is
# either readable (its footer and pages check out) or corrupt as a whole.
_RECORD_FORMATS = ("csv", "json")


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
        on_bad_record: what a record that does not parse does: ``fail`` the stage, ``skip`` it (counted) or
            ``quarantine`` it (counted and kept under the run's ``_rejects/``); see :mod:`sparkflow.runtime.records`.
    """

    name: str
    uri: str
    format: str
    size_bytes: int | None
    options: tuple[tuple[str, Any], ...]
    origin: Origin
    on_bad_record: str = "fail"

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


def source(
    name: str,
    uri: str,
    format: str | None = None,
    size: str | int | None = None,
    on_bad_record: str = "fail",
    **options: Any,
) -> Any:
    """Declare an input dataset.

    Args:
        name: a short identifier (letters, digits, '_').
        uri: a local path, ``s3://bucket/prefix/`` or ``gs://bucket/prefix/``.
        format: ``text``, ``csv``, ``json`` or ``parquet``; guessed from the file extension when omitted (under a
            compression's: ``app.csv.gz`` is CSV; see :mod:`sparkflow.compression` for the compressions read).
        size: how big the input may get, e.g. ``"40GB"``: the compiler plans splitting and placement with it.
        on_bad_record: what a CSV or JSON-lines record that does not parse (a CSV row with the wrong number of
            fields or a value that does not fit the schema, a line that is not a JSON object) does:

            * ``"fail"`` (default): the stage fails with an ``InputError`` naming the file, the line (or, inside a
              chunk of a split stage, the byte offset) and the record;
            * ``"skip"``: the stage runs without such records and counts them (result, log line, run summary);
            * ``"quarantine"``: like ``skip``, and the records are written, with their file and line, as JSON
              lines under the run's ``_rejects/<stage>/``.

            Text and Parquet sources take only ``"fail"``: every line of a text file is a record, and a corrupt
            Parquet file is unreadable as a whole (an ``InputError`` naming the file), not record by record.
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
    if format is None:  # from the extension under a compression's: logs/app.txt.gz is text
        named = compression.stem(uri.rstrip("/")).lower()
        format = next((fmt for ext, fmt in _EXTENSIONS.items() if named.endswith(ext)), None)
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
            nearest = difflib.get_close_matches(key, [*allowed, "format", "size", "on_bad_record"], n=1, cutoff=0.5)
            hint = f"did you mean {nearest[0]}=? " if nearest else ""
            raise DefinitionError(
                f"source {name!r}: unknown option {key}= for format {format!r}: {hint}(options of {format}: {known})",
                origin,
            )
        if not isinstance(value, allowed[key]):
            raise DefinitionError(f"source {name!r}: option {key}={value!r} must be a {allowed[key].__name__}", origin)
    _check_bad_record_policy(name, format, on_bad_record, origin)
    if format == "csv":
        options.setdefault("header", True)
    size_bytes = None if size is None else parse_size(size, field="size", origin=origin)
    return Source(name, uri, format, size_bytes, tuple(sorted(options.items())), origin, on_bad_record)


def _check_bad_record_policy(name: str, format: str, policy: object, origin: Origin) -> None:
    allowed = ", ".join(repr(value) for value in BAD_RECORD_POLICIES)
    if policy not in BAD_RECORD_POLICIES:
        raise DefinitionError(
            f"source {name!r}: on_bad_record={policy!r} is not a policy: use one of {allowed}", origin
        )
    if policy != "fail" and format not in _RECORD_FORMATS:
        why = "every line is a record" if format == "text" else "a corrupt file is unreadable as a whole"
        raise DefinitionError(
            f"source {name!r}: on_bad_record={policy!r} applies to csv and json sources only; a {format} source "
            f"has no bad records one by one ({why}): leave on_bad_record out",
            origin,
        )
