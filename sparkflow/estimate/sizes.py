"""How big each source of a pipeline is, for the estimate: ``--input NAME=SIZE``, else the declared ``size=``,
else what a local source holds on disk. A source of unknown size is an error that says how to give one."""

from __future__ import annotations

import os
from collections.abc import Mapping

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
