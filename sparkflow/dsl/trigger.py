"""``sf.on_new_objects(source)``: start a run of the deployed pipeline for each new object under a source's folder."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from sparkflow.dsl.source import Source
from sparkflow.errors import DefinitionError, Origin
from sparkflow.triggers import TriggerError, watched_folder


@dataclass(frozen=True)
class OnNewObjects:
    """A trigger: each new object under ``source``'s folder starts a run that reads that object as ``source``.

    Attributes:
        source: the name of a source of the pipeline; its location (or the one ``deploy --input`` gives it) is the
            watched folder. Checked against the pipeline's sources when it is compiled.
        origin: where ``sf.on_new_objects`` was called.
    """

    source: str
    origin: Origin


def on_new_objects(source: str | Source) -> OnNewObjects:
    """Declare a trigger for ``@sf.pipeline(trigger=...)``: every object created under the folder of ``source``
    (``s3://bucket/prefix/`` or ``gs://bucket/prefix/``) starts a run of the deployed pipeline that reads exactly
    that object as ``source``.

    Args:
        source: a source of the pipeline, or its name.

    Example:
        >>> books = source("books", "s3://my-bucket/incoming/books/", format="text")  # doctest: +SKIP
        >>> @pipeline(trigger=on_new_objects(books))  # doctest: +SKIP
        ... def wordcount(): ...
    """
    caller = sys._getframe(1)
    origin = Origin(caller.f_code.co_filename, caller.f_lineno)
    if isinstance(source, Source):
        try:
            watched_folder(source.uri)
        except TriggerError as problem:
            raise DefinitionError(f"on_new_objects({source.name!r}): source {problem}", origin) from None
        return OnNewObjects(source.name, origin)
    if not isinstance(source, str) or not source:
        raise DefinitionError(
            f"on_new_objects({source!r}): pass a source of the pipeline or its name, e.g. on_new_objects(books) "
            "or on_new_objects('books')",
            origin,
        )
    return OnNewObjects(source, origin)
