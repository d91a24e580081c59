"""Triggers: a deployed pipeline starts a run by itself when a new object arrives under a source's folder
(``@sf.pipeline(trigger=sf.on_new_objects("books"))``).

The new object becomes the run's location of that source, exactly as ``sparkflow start --input books=URI`` would
give it; the pipeline's other sources are read where a started run reads them. AWS: an EventBridge rule on S3's
``Object Created`` events of the bucket and key prefix starts the state machine
(:mod:`sparkflow.targets.aws.trigger`); GCP: an Eventarc trigger on ``google.cloud.storage.object.v1.finalized``
of the bucket executes the workflow, whose ``run-start`` keeps only objects under the prefix
(:mod:`sparkflow.targets.gcp.eventarc`).

This module is light (no cloud client, no compiler): the DSL and the compiler check a trigger with it, the targets
read the parsed folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from sparkflow.errors import PackageError
from sparkflow.plan import Plan, StartTrigger

#: The object stores a trigger can watch, by URI scheme.
STORES = {"s3": "S3", "gs": "Cloud Storage"}
_URI = re.compile(r"^(?P<scheme>[a-z0-9]+)://(?P<bucket>[^/]*)/?(?P<prefix>.*)$")
# Bucket names of S3 and Cloud Storage: lower case letters, digits, '.', '-' (and '_' on GCS), 3-63 characters.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


class TriggerError(ValueError):
    """A location a trigger cannot watch; the message says why and how to fix it."""


@dataclass(frozen=True)
class WatchedFolder:
    """The folder of object storage a trigger watches.

    Attributes:
        scheme: ``s3`` or ``gs``.
        bucket: the bucket.
        prefix: the key prefix, ending with ``/`` (empty for the whole bucket).
    """

    scheme: str
    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}"

    def holds(self, uri: str) -> bool:
        """True when ``uri`` (an object or a folder) lies under this folder."""
        return uri.startswith(self.uri) or uri.rstrip("/") + "/" == self.uri

    def overlaps(self, uri: str) -> bool:
        """True when this folder and the folder ``uri`` hold objects in common (one is inside the other)."""
        folder = uri.rstrip("/") + "/"
        return folder.startswith(self.uri) or self.uri.startswith(folder)


def watched_folder(uri: str) -> WatchedFolder:
    """The folder ``uri`` names (``s3://bucket/prefix/`` or ``gs://bucket/prefix/``).

    Raises:
        TriggerError: ``uri`` is a local path, one object (no trailing ``/``) or on another store.
    """
    matched = _URI.match(uri)
    if matched is None or matched["scheme"] not in STORES:
        raise TriggerError(
            f"{uri!r} is not in object storage: a trigger watches a folder of S3 or Cloud Storage, e.g. "
            "'s3://my-bucket/books/' or 'gs://my-bucket/books/' (a local source can be read by `sparkflow run`, "
            "not watched)"
        )
    if not _BUCKET.match(matched["bucket"]):
        raise TriggerError(f"{uri!r} has no valid bucket name: write {matched['scheme']}://bucket/folder/")
    prefix = matched["prefix"]
    if prefix and not prefix.endswith("/"):
        raise TriggerError(
            f"{uri!r} is one object, not a folder: a trigger runs the pipeline on each new object under a folder; "
            f"declare the folder with a trailing '/', e.g. {matched['scheme']}://{matched['bucket']}/"
            f"{prefix.rsplit('/', 1)[0] + '/' if '/' in prefix else 'incoming/'}"
        )
    return WatchedFolder(matched["scheme"], matched["bucket"], prefix)


def deployed_folder(
    plan: Plan, trigger: StartTrigger, inputs: Mapping[str, str], scheme: str, storage_root: str | None
) -> WatchedFolder:
    """The folder a deployment of ``plan`` watches: the trigger's source where the deployed functions read it
    (``deploy --input``, else as declared), on the target's store (``scheme``), apart from the storage root.

    Raises:
        PackageError: at the trigger's line, when that folder cannot be watched by this target.
    """
    name = trigger.source
    uri = inputs.get(name, plan.source(name).uri)
    where = f"trigger=sf.on_new_objects({name!r}): source {name!r} at {uri!r}"
    try:
        folder = watched_folder(uri)
    except TriggerError as problem:
        raise PackageError(
            f"{where}: {problem}; or pass --input {name}={scheme}://bucket/folder/", trigger.origin
        ) from None
    if folder.scheme != scheme:
        raise PackageError(
            f"{where} is in {STORES[folder.scheme]}, but this target is triggered by {STORES[scheme]} events: pass "
            f"--input {name}={scheme}://bucket/folder/",
            trigger.origin,
        )
    if storage_root and folder.overlaps(storage_root):
        raise PackageError(
            f"{where}: the watched folder and the storage root {storage_root} overlap, so every run's own writes "
            "would start more runs: pass another --storage-root or --input",
            trigger.origin,
        )
    return folder
