"""Where every dataset of a run lives. Shared by the compiler (to write locations into definitions) and the
runtime (to read and write them), so the two can never disagree. Light: no imports beyond the stdlib."""

from __future__ import annotations

RUN_ID_PLACEHOLDER = "{run_id}"


def location_template(pipeline: str, node: str) -> str:
    """The output location of ``node`` relative to the storage root, with ``{run_id}`` left open."""
    return f"{pipeline}/{RUN_ID_PLACEHOLDER}/{node}/"


def with_slash(root: str) -> str:
    """A storage root always ends with one ``/``, so templates append without doubling or missing one."""
    return root.rstrip("/") + "/"


def node_location(root: str, pipeline: str, run_id: str, node: str) -> str:
    """Absolute location of ``node``'s output in run ``run_id``."""
    return with_slash(root) + location_template(pipeline, node).replace(RUN_ID_PLACEHOLDER, run_id)


def run_location(root: str, pipeline: str, run_id: str) -> str:
    return f"{with_slash(root)}{pipeline}/{run_id}/"


WORK = "_work"
#: Days after which the storage's lifecycle rule deletes working files (``--work-expiry-days`` where deployed). A run
#: that publishes deletes its own at once; this bounds what a failed run leaves behind, so resume a failed run
#: (or debug it) within these days, and keep them above the longest run: the rule counts from each file's creation.
WORK_EXPIRY_DAYS = 7


def work_root(root: str) -> str:
    """The one folder holding every run's working files: ``<root>/_work/``.

    At the top of the storage root, not inside each run's folder, because object stores' lifecycle rules match a
    key's beginning only (S3 ``Prefix``, GCS ``matchesPrefix``): one rule on this prefix expires what failed runs
    left behind, and never touches outputs, ``_rejects/`` or logs.
    """
    return f"{with_slash(root)}{WORK}/"


def run_work_location(root: str, pipeline: str, run_id: str) -> str:
    """Every working file of run ``run_id``: what the run deletes once it has published."""
    return f"{work_root(root)}{pipeline}/{run_id}/"


def work_location(root: str, pipeline: str, run_id: str, node: str) -> str:
    """Where ``node``'s working files of run ``run_id`` go (``<root>/_work/<pipeline>/<run>/<node>/``): attempts,
    claims, split manifests, shuffle buckets and chunk parts. Never inside its output folder, which holds only what
    readers may read (see :mod:`sparkflow.runtime.storage`)."""
    return f"{run_work_location(root, pipeline, run_id)}{node}/"


REJECTS = "_rejects"


def rejects_location(root: str, pipeline: str, run_id: str, node: str) -> str:
    """Where ``node``'s quarantined input records go in run ``run_id`` (``on_bad_record="quarantine"``)."""
    return f"{run_location(root, pipeline, run_id)}{REJECTS}/{node}/"


def value_key(pipeline: str, run_id: str, node: str) -> str:
    """The KV-store key under which a value stage's result is kept."""
    return f"{pipeline}/{run_id}/{node}"
