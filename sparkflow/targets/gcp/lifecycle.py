"""The storage bucket's lifecycle configuration that expires what failed runs leave in ``<storage root>/_work/``.

A run that publishes deletes its own working files (the publish task); a run that fails keeps them, so that
``sparkflow start --resume`` can finish it. This rule bounds how long: GCS deletes every object under the storage
root's work prefix (:func:`sparkflow.layout.work_root`) some days after it was written.

``sparkflow package --target gcp`` writes it as ``lifecycle.json``, as it writes the Cloud Run resources, for
``gcloud storage buckets update gs://BUCKET --lifecycle-file=lifecycle.json``. That command replaces the bucket's
whole lifecycle configuration: a bucket with rules of its own needs this rule added to them.

Why a prefix: GCS lifecycle conditions match a name's beginning or end (``matchesPrefix``, ``matchesSuffix``), never
its middle; the layout keeps every run's working files under one prefix, so one condition covers them and never
touches outputs, logs or quarantined records. Quarantined records (``<run>/_rejects/``) get no rule: no rule can
tell a failed run's from a successful one's, and a successful run's are the user's data.
"""

from __future__ import annotations

import json
from typing import Any

from sparkflow.layout import WORK

LIFECYCLE_FILE = "lifecycle.json"


def work_lifecycle(storage_root: str, days: int) -> dict[str, Any]:
    """The lifecycle configuration (the JSON ``gcloud storage buckets update --lifecycle-file`` reads) deleting the
    objects under ``storage_root``'s work prefix ``days`` days after they were written."""
    prefix = _object_prefix(storage_root)
    return {"rule": [{"action": {"type": "Delete"}, "condition": {"age": days, "matchesPrefix": [prefix]}}]}


def lifecycle_text(storage_root: str, days: int) -> str:
    return json.dumps(work_lifecycle(storage_root, days), indent=2) + "\n"


def bucket_of(storage_root: str) -> str:
    return storage_root.removeprefix("gs://").split("/", 1)[0]


def _object_prefix(storage_root: str) -> str:
    """``gs://bucket/a/b/`` -> ``a/b/_work/`` (object names in the bucket; ``_work/`` for a bucket's root)."""
    folder = storage_root.removeprefix("gs://").partition("/")[2].strip("/")
    return f"{folder}/{WORK}/" if folder else f"{WORK}/"
