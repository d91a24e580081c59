"""S3 locations of a deployed pipeline: its storage root, the sources its functions read, the sinks they publish to."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sparkflow.errors import PackageError
from sparkflow.layout import with_slash
from sparkflow.plan import Plan

_S3 = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^$]*)$")


@dataclass(frozen=True)
class S3Location:
    """An S3 location: a folder when ``key`` is empty or ends with ``/``, else one object."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3(uri: str, what: str) -> S3Location:
    """``s3://bucket/key`` as a location; ``what`` names it in the error."""
    match = _S3.match(uri)
    if not match:
        raise PackageError(
            f"{what} {uri!r} is not an S3 location: write s3://bucket/prefix/ (a lowercase bucket name, no '$')"
        )
    return S3Location(match["bucket"], match["key"])


def storage_location(root: str) -> S3Location:
    """The storage root as bucket + prefix; the prefix may not be empty (the functions' grant is that prefix)."""
    location = parse_s3(with_slash(root), "storage root")
    if not location.key.strip("/"):
        raise PackageError(
            f"storage root {root!r} has no prefix: use a folder of the bucket, e.g. s3://{location.bucket}/sparkflow/"
        )
    return S3Location(location.bucket, location.key.strip("/"))


def read_locations(plan: Plan, inputs: Mapping[str, str] | None = None) -> list[S3Location]:
    """Where the functions may read sources: every S3 source location, ``inputs`` (name -> URI) replacing the
    declared ones. Local sources (e.g. ``data/books/``) give no grant: pass their S3 location in ``inputs``, or
    upload them under the storage prefix, which the functions may always read."""
    inputs = dict(inputs or {})
    unknown = sorted(set(inputs) - {source.name for source in plan.sources})
    if unknown:
        known = ", ".join(source.name for source in plan.sources)
        raise PackageError(f"no source named {', '.join(unknown)} in pipeline {plan.pipeline!r} (sources: {known})")
    locations: list[S3Location] = []
    for source in plan.sources:
        uri = inputs.get(source.name, source.uri)
        if source.name in inputs or uri.startswith("s3://"):
            location = parse_s3(uri, f"source {source.name!r}")
            if location not in locations:
                locations.append(location)
    return locations


def sink_locations(plan: Plan, storage: S3Location) -> list[S3Location]:
    """Where the functions publish: every sink's S3 folder (a relative one lies under the storage prefix).

    Raises:
        PackageError: a sink at a local path, or on another store: a deployed pipeline publishes to S3.
    """
    locations: list[S3Location] = []
    for sink in plan.sinks:
        if sink.uri.startswith("s3://"):
            location = parse_s3(with_slash(sink.uri), f"sink {sink.name!r}")
        elif "://" not in sink.uri and not sink.uri.startswith("/"):
            location = S3Location(storage.bucket, f"{storage.key}/{sink.uri.strip('/')}/")
        else:
            raise PackageError(
                f"sink {sink.name!r} ({sink.origin}) is at {sink.uri!r}: a pipeline deployed to AWS publishes to S3; "
                "declare an s3:// location, or a path relative to the storage root"
            )
        if location not in locations:
            locations.append(location)
    return locations
