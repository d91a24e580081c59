"""Storage for the runtime: locations, confinement, and the attempt/commit protocol, all through fsspec.

Locations are URIs (``s3://bucket/key/``, ``gs://bucket/key/``) or local paths. Every location the runtime
touches is normalised first (``..`` collapsed, local symlinks resolved) and then checked against what it may
touch: writes only under the run's storage root, reads only there or under a declared source location.

Commit protocol: an attempt writes its files under ``<node>/_attempts/<attempt>/`` and then writes
``<node>/_COMMITTED.json`` listing exactly those files, in one atomic put. Readers read only the files that
manifest lists, so a killed, failed or duplicated attempt never shows partial or duplicated data; the last
attempt to commit wins, and every attempt of a deterministic stage writes the same rows.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any

from sparkflow.errors import ConfinementError, InputError, StorageError

MANIFEST = "_COMMITTED.json"
ATTEMPTS = "_attempts"
_LOCAL_PROTOCOLS = ("file", "local")


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def normalize(uri: str) -> str:
    """A canonical form of ``uri`` without a trailing slash: ``..`` collapsed, local symlinks resolved."""
    if "\0" in uri:
        raise ConfinementError(f"location {uri!r} contains a NUL character")
    if is_remote(uri):
        scheme, _, rest = uri.partition("://")
        bucket, _, key = rest.partition("/")
        if not bucket or bucket in (".", ".."):
            raise ConfinementError(f"location {uri!r} has no bucket")
        parts: list[str] = []
        for part in key.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise ConfinementError(f"location {uri!r} climbs above its bucket with '..'")
                parts.pop()
            else:
                parts.append(part)
        return f"{scheme}://{bucket}" + ("/" + "/".join(parts) if parts else "")
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    return os.path.realpath(os.path.abspath(path))


def is_within(uri: str, root: str) -> bool:
    """True when normalised ``uri`` is ``root`` or lies under it."""
    child, parent = normalize(uri), normalize(root)
    separator = "/" if is_remote(parent) else os.sep
    return child == parent or child.startswith(parent.rstrip(separator) + separator)


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


@dataclass(frozen=True)
class Confinement:
    """What one task may touch: write under ``root``; read under ``root`` or any of ``readable``."""

    root: str
    readable: tuple[str, ...] = ()

    def check_write(self, uri: str, what: str) -> str:
        if not is_within(uri, self.root):
            raise ConfinementError(
                f"{what}: {uri!r} is outside the pipeline's storage root {self.root!r}; nothing was written"
            )
        return normalize(uri)

    def check_read(self, uri: str, what: str) -> str:
        if not any(is_within(uri, allowed) for allowed in (self.root, *self.readable)):
            raise ConfinementError(
                f"{what}: {uri!r} is outside the storage root {self.root!r} and the declared source locations; "
                "declare the location with sf.source(...) or allow it where the function is deployed "
                "(SPARKFLOW_ALLOWED_INPUTS)"
            )
        return normalize(uri)


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``uri`` and the path within it.

    S3 honours ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (LocalStack, moto) explicitly, since not every
    s3fs / aiobotocore combination reads them itself.
    """
    import fsspec

    options: dict[str, Any] = {}
    if uri.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
    fs, path = fsspec.core.url_to_fs(uri, **options)
    return fs, path


def is_local_fs(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in _LOCAL_PROTOCOLS


def new_attempt_id() -> str:
    return uuid.uuid4().hex[:16]


def read_manifest(location: str) -> dict[str, Any] | None:
    """The commit manifest of a node's output, or None when nothing is committed there."""
    fs, path = filesystem(join(location, MANIFEST))
    fs.invalidate_cache(path)  # s3fs answers from a listing cache: another attempt may have committed since
    try:
        with fs.open(path, "rb") as handle:
            manifest: dict[str, Any] = json.loads(handle.read())
    except FileNotFoundError:
        return None
    return manifest


def committed_files(location: str, what: str) -> list[str]:
    """The files of a committed output (absolute URIs); a clear error if it was never committed."""
    manifest = read_manifest(location)
    if manifest is None:
        raise InputError(
            f"{what}: no committed output at {location!r}: the stage that writes it has not finished in this run"
        )
    return [join(location, name) for name in manifest["files"]]


def upload_attempt(local_dir: str, location: str, attempt: str) -> list[tuple[str, int]]:
    """Copy the data files of ``local_dir`` to the attempt folder; return (name relative to location, bytes)."""
    files = sorted(
        name for name in os.listdir(local_dir) if not name.startswith(("_", ".")) and not name.endswith(".crc")
    )
    uploaded: list[tuple[str, int]] = []
    for name in files:
        relative = posixpath.join(ATTEMPTS, attempt, name)
        target = join(location, relative)
        fs, path = filesystem(target)
        fs.makedirs(posixpath.dirname(path) if not is_local_fs(fs) else os.path.dirname(path), exist_ok=True)
        fs.put_file(os.path.join(local_dir, name), path)
        uploaded.append((relative, os.path.getsize(os.path.join(local_dir, name))))
    return uploaded


def write_file(uri: str, data: bytes) -> None:
    """Write the whole file ``uri`` at once: one PUT on object stores, write-then-rename on local disks, so a
    reader (or a retried writer) never sees it half written."""
    fs, path = filesystem(uri)
    try:
        if is_local_fs(fs):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temporary = f"{path}.{uuid.uuid4().hex}.tmp"
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        else:
            fs.pipe_file(path, data)
    except OSError as error:
        raise StorageError(f"cannot write {uri!r}: {error}") from error


def commit(location: str, manifest: dict[str, Any]) -> None:
    """Publish ``manifest`` atomically: one PUT on object stores, write-then-rename on local disks."""
    data = json.dumps(manifest, indent=2, sort_keys=True).encode()
    target = join(location, MANIFEST)
    fs, path = filesystem(target)
    if is_local_fs(fs):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        return
    try:
        fs.pipe_file(path, data)
    except OSError as error:
        raise StorageError(f"cannot commit {target!r}: {error}") from error
