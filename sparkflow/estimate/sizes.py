"""How big each source of a pipeline is, for the estimate: ``--input NAME=SIZE``, else the declared ``size=``,
else what a local source holds on disk. A source of unknown size is an error that says how to give one. And which of
a source's files are compressed (:func:`compressed_files`): they cannot be split, so each is read whole."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sparkflow import compression
from sparkflow.dsl.pipeline import Pipeline
from sparkflow.errors import DefinitionError, OptionError
from sparkflow.plan import Plan, PlanSource
from sparkflow.units import parse_size


def parse_input_sizes(values: Mapping[str, str], plan: Plan) -> dict[str, int]:
    """``--input NAME=SIZE`` pairs as bytes; an unknown source or a bad size names the option and the fix."""
    known = [source.name for source in plan.sources]
    sizes: dict[str, int] = {}
    for name, text in values.items():
        if name not in known:
            raise OptionError(
                f"--input {name}={text}: pipeline {plan.pipeline!r} has no source {name!r} "
                f"(sources: {', '.join(known) or 'none'})"
            )
        try:
            sizes[name] = parse_size(text, field=f"--input {name}")
        except DefinitionError as error:
            raise OptionError(f"{error.message}; e.g. --input {name}=10GiB") from None
    return sizes


def source_sizes(
    plan: Plan, pipeline: Pipeline, given: Mapping[str, int], *, prefer_local: bool = False
) -> dict[str, int]:
    """Bytes of every source: ``given`` first, then (``prefer_local``: the other way round) the declared size,
    then what a local source holds.

    Raises:
        OptionError: a source with no size given, none declared and no local data to measure.
    """
    sizes: dict[str, int] = {}
    for source in plan.sources:
        local = _local_size(pipeline, source)
        order = (local, source.size_bytes) if prefer_local else (source.size_bytes, local)
        size = given.get(source.name, next((item for item in order if item is not None), None))
        if size is None:
            raise OptionError(
                f"source {source.name!r} ({source.uri}) has no size to estimate with: pass --input "
                f"{source.name}=SIZE (e.g. 10GiB), or declare size= on it ({source.origin})"
            )
        sizes[source.name] = size
    return sizes


def location_size(location: str) -> int | None:
    """Bytes of the data files at a local ``location`` (a file or a folder), None when nothing is there."""
    from sparkflow.runtime import storage
    from sparkflow.runtime.split import list_files

    if storage.is_remote(location):
        return None
    path = location[len("file://") :] if location.startswith("file://") else location
    if not os.path.exists(path):
        return None
    return sum(item.size for item in list_files(path))


def _local_size(pipeline: Pipeline, source: PlanSource) -> int | None:
    from sparkflow.runtime.execute import source_uri

    return location_size(source_uri(pipeline, source))


@dataclass(frozen=True)
class CompressedFiles:
    """A source's compressed files, as far as they can be known before a run: the files of a local location, or a
    remote location naming one file. A compressed file cannot be entered in the middle: each is read whole, in one
    chunk of a split stage (see :mod:`sparkflow.runtime.split`).

    Attributes:
        files: how many there are (of compressions sparkflow reads).
        bytes: their size, compressed (None: a remote file of unknown size).
        compressions: the names of their compressions, sorted.
        largest: the largest, named relative to the source's location (the file's name when it is the location).
        largest_bytes: its size (None when unknown).
        larger_than_a_chunk: the split stages that cut this source into chunks smaller than the largest file, each
            with its chunk size: one task of theirs reads that file whole.
        refused: why a file cannot be read at all, for the first such file (see :func:`compression.refusal`).
    """

    files: int
    bytes: int | None
    compressions: tuple[str, ...]
    largest: str
    largest_bytes: int | None
    larger_than_a_chunk: tuple[tuple[str, int], ...]
    refused: str | None


def compressed_files(plan: Plan, pipeline: Pipeline, sizes: Mapping[str, int]) -> dict[str, CompressedFiles]:
    """The compressed files of every source that has some (``sizes``: each source's bytes, as estimated)."""
    from sparkflow.estimate.model import split_input
    from sparkflow.runtime.execute import source_uri

    found: dict[str, CompressedFiles] = {}
    for source in plan.sources:
        listed = _files(source_uri(pipeline, source), sizes.get(source.name))
        compressed = [(name, size, kind) for name, size in listed if (kind := compression.of(name)) is not None]
        if not compressed:
            continue
        reasons = [compression.refusal(name, source.format) for name, _, _ in compressed]
        files = [item for item, why in zip(compressed, reasons, strict=True) if why is None]
        largest, largest_bytes, _ = max(files, key=lambda item: (item[1] or 0, item[0]), default=("", 0, None))
        chunks = tuple(
            (task.id, task.fanout.chunk_bytes)
            for task in plan.tasks
            if task.fanout is not None
            and any(split_input(task, param).node == source.name for param in task.fanout.split)
            and (largest_bytes or 0) > task.fanout.chunk_bytes
        )
        known = [size for _, size, _ in files if size is not None]
        found[source.name] = CompressedFiles(
            files=len(files),
            bytes=sum(known) if len(known) == len(files) else None,
            compressions=tuple(sorted({kind.name for _, _, kind in files})),
            largest=largest,
            largest_bytes=largest_bytes,
            larger_than_a_chunk=chunks,
            refused=next((why for why in reasons if why is not None), None),
        )
    return found


def _files(location: str, size: int | None) -> list[tuple[str, int | None]]:
    """(name relative to ``location``, bytes) of the files at a local location; a remote location naming one file
    is that file, of the source's estimated size; nothing is known of a remote folder."""
    from sparkflow.runtime import storage
    from sparkflow.runtime.split import list_files

    if storage.is_remote(location):
        return [] if location.endswith("/") else [(location.rsplit("/", 1)[-1], size)]
    path = location[len("file://") :] if location.startswith("file://") else location
    if not os.path.exists(path):
        return []
    if not os.path.isdir(path):
        return [(os.path.basename(path), os.path.getsize(path))]
    return [(os.path.relpath(item.uri, path), item.size) for item in list_files(path)]
