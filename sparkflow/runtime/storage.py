"""Storage for the runtime: locations, confinement, and the attempt/commit protocol, all through fsspec.

Locations are URIs (``s3://bucket/key/``, ``gs://bucket/key/``) or local paths. Every location the runtime
touches is normalised first (``..`` collapsed, local symlinks resolved) and then checked against what it may
touch: writes only under the run's storage root (or a declared sink), reads only there or under a declared
source location.

**Published outputs.** A stage's output folder (``<run>/<node>/``) holds exactly its committed Parquet files,
``_SUCCESS`` and ``_COMMITTED.json``, so any Parquet reader (pyarrow, pandas, Spark, DuckDB, Athena) pointed at
it reads exactly the committed rows without knowing about sparkflow. Everything else a task writes lives in the
node's work folder (``<root>/_work/<pipeline>/<run>/<node>/``: :func:`sparkflow.layout.work_location`): attempts,
split manifests, shuffle buckets, chunk parts. A run deletes its work folders once it has published (a failed run
keeps them, for resuming).

**Publishing** (:func:`publish`), so that a retried, killed or duplicated task never leaves partial or
duplicated rows where a reader looks:

1. an attempt uploads its files to ``<work>/attempts/<attempt>/`` (private to it);
2. it *claims* the output: one exclusive create of ``<work>/claim.json`` (S3 ``If-None-Match: *``, GCS
   ``ifGenerationMatch=0``, a hard link on local disks) naming its files. The first claim wins for good; an
   attempt that loses publishes the winner's files instead of its own, so only one attempt's rows ever reach
   the output folder;
3. it copies the claimed files into the output folder under fixed names (``part-00000.parquet``, ...; a
   server-side copy on object stores, a hard link on local disks: each appears whole or not at all);
4. it writes ``_SUCCESS`` (Hadoop's marker), then ``_COMMITTED.json`` (the claim), the commit point: readers of
   the runtime, and tools that look for a marker, treat the output as complete only once it exists.

Every step is idempotent, so any attempt (or a retry of a killed one, which finds the claim) can finish a
publish another started. The work folder's parts (chunk and bucket outputs of split stages, which only the
runtime reads) are committed with :func:`commit` alone: the last manifest written wins, and it lists only its
own attempt's files.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import uuid
from dataclasses import dataclass
from typing import Any

from sparkflow.errors import ConfinementError, InputError, StorageError

MANIFEST = "_COMMITTED.json"
SUCCESS = "_SUCCESS"
ATTEMPTS = "attempts"
CLAIM = "claim.json"
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
    """What one task may touch: write under ``root`` or any of ``writable`` (the declared sinks); read under
    ``root``, any of ``readable`` or any of ``writable``."""

    root: str
    readable: tuple[str, ...] = ()
    writable: tuple[str, ...] = ()

    def check_write(self, uri: str, what: str) -> str:
        if not any(is_within(uri, allowed) for allowed in (self.root, *self.writable)):
            raise ConfinementError(
                f"{what}: {uri!r} is outside the pipeline's storage root {self.root!r} and its declared sinks; "
                "nothing was written"
            )
        return normalize(uri)

    def check_read(self, uri: str, what: str) -> str:
        if not any(is_within(uri, allowed) for allowed in (self.root, *self.readable, *self.writable)):
            raise ConfinementError(
                f"{what}: {uri!r} is outside the storage root {self.root!r} and the declared source locations; "
                "declare the location with sf.source(...) or allow it where the function is deployed "
                "(SPARKFLOW_ALLOWED_INPUTS)"
            )
        return normalize(uri)


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``uri`` and the path within it.

    S3 honours ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (LocalStack, moto) explicitly, since not every
    s3fs / aiobotocore combination reads them itself. GCS honours ``STORAGE_EMULATOR_HOST`` (gcsfs reads it) with
    anonymous credentials, as Google's own clients do: an emulator has no accounts, and looking for credentials
    would ask a metadata server.
    """
    import fsspec

    options: dict[str, Any] = {}
    if uri.startswith("s3://"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["client_kwargs"] = {"endpoint_url": endpoint}
    elif uri.startswith("gs://") and os.environ.get("STORAGE_EMULATOR_HOST"):
        # An emulator serves GCS's JSON API only: gcsfs's default filesystem would first ask the gRPC control
        # plane for the bucket's layout (and wait a minute for an answer).
        from gcsfs.core import GCSFileSystem

        emulated = GCSFileSystem(token="anon")
        return emulated, emulated._strip_protocol(uri)
    fs, path = fsspec.core.url_to_fs(uri, **options)
    return fs, path


def is_local_fs(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in _LOCAL_PROTOCOLS


def new_attempt_id() -> str:
    return uuid.uuid4().hex[:16]


def read_manifest(location: str) -> dict[str, Any] | None:
    """The commit manifest of a node's output, or None when nothing is committed there."""
    manifest: dict[str, Any] | None = read_json(join(location, MANIFEST))
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
    """Copy the data files of ``local_dir`` into ``location``'s attempt folder; return (name relative to
    ``location``, bytes) of each, sorted by name."""
    files = sorted(
        name for name in os.listdir(local_dir) if not name.startswith(("_", ".")) and not name.endswith(".crc")
    )
    uploaded: list[tuple[str, int]] = []
    for name in files:
        relative = posixpath.join(ATTEMPTS, attempt, name)
        put_file(os.path.join(local_dir, name), join(location, relative))
        uploaded.append((relative, os.path.getsize(os.path.join(local_dir, name))))
    return uploaded


def put_file(local: str, uri: str) -> None:
    """Upload the local file ``local`` to ``uri`` (parent folders made as needed)."""
    fs, path = filesystem(uri)
    fs.makedirs(posixpath.dirname(path) if not is_local_fs(fs) else os.path.dirname(path), exist_ok=True)
    fs.put_file(local, path)


def read_range(uri: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of the file ``uri``: one ranged GET on object stores (S3, GCS), a seek locally."""
    fs, path = filesystem(uri)
    data: bytes = fs.cat_file(path, start=start, end=end)
    if len(data) != end - start:  # a committed object is never shorter: storage misbehaves, a retry may help
        raise StorageError(f"read {len(data)} bytes of {uri!r} where {end - start} were committed")
    return data


def published_name(index: int, part: int | None = None) -> str:
    """The name of a published file: ``part-00000.parquet`` (a whole stage's ``index``-th file), or
    ``part-00003-00000.parquet`` (the ``index``-th file of part 3 of a split stage)."""
    return f"part-{index:05d}.parquet" if part is None else f"part-{part:05d}-{index:05d}.parquet"


def write_file(uri: str, data: bytes) -> None:
    """Write the whole file ``uri`` at once: one PUT on object stores, write-then-rename on local disks, so a
    reader (or a retried writer) never sees it half written."""
    fs, path = filesystem(uri)
    try:
        if is_local_fs(fs):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temporary = _temporary(path)
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        else:
            fs.pipe_file(path, data)
    except OSError as error:
        raise StorageError(f"cannot write {uri!r}: {error}") from error


def create_file(uri: str, data: bytes) -> bool:
    """Write the whole file ``uri`` only if it does not exist yet, atomically; True if this call created it.

    S3 ``If-None-Match: *`` and GCS ``ifGenerationMatch=0`` (fsspec's ``mode="create"``); on a local disk, a
    complete temporary file hard-linked to the name, which fails if the name exists. Of several concurrent
    callers exactly one gets True.
    """
    fs, path = filesystem(uri)
    try:
        if not is_local_fs(fs):
            fs.pipe_file(path, data, mode="create")
            return True
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = _temporary(path)
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        finally:
            os.unlink(temporary)
        return True
    except FileExistsError:
        return False
    except OSError as error:
        raise StorageError(f"cannot create {uri!r}: {error}") from error


def read_json(uri: str) -> Any:
    """The JSON document at ``uri``, or None when there is none."""
    fs, path = filesystem(uri)
    fs.invalidate_cache(path)  # s3fs answers from a listing cache: another attempt may have written it since
    try:
        with fs.open(path, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return None


def commit(location: str, manifest: dict[str, Any]) -> None:
    """Write ``location``'s ``_COMMITTED.json`` atomically (one PUT on object stores, write-then-rename on local
    disks). On its own, for the work folder's parts; :func:`publish` ends with it for a stage's output."""
    try:
        write_file(join(location, MANIFEST), json.dumps(manifest, indent=2, sort_keys=True).encode())
    except StorageError as error:
        raise StorageError(f"cannot commit {location!r}: {error}") from error


def claim(work: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Claim the output of the node whose work folder is ``work`` for ``manifest``'s files; return the manifest
    that holds the claim: ``manifest`` if this call made it, else the one an earlier attempt made."""
    uri = join(work, CLAIM)
    if create_file(uri, json.dumps(manifest, indent=2, sort_keys=True).encode()):
        return manifest
    claimed: dict[str, Any] | None = read_json(uri)
    if claimed is None:  # created, then gone: only a published run's cleanup deletes claims; a retry may help
        raise StorageError(f"the claim {uri!r} exists but cannot be read")
    return claimed


def read_claim(work: str) -> dict[str, Any] | None:
    """The manifest that claimed the output of the node whose work folder is ``work``, if any."""
    claimed: dict[str, Any] | None = read_json(join(work, CLAIM))
    return claimed


def publish(location: str, work: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Publish an output (see the module docs): claim it for ``manifest``, copy the claimed files into
    ``location`` under their published names, write ``_SUCCESS``, then commit. Returns the published manifest,
    which may be an earlier attempt's.

    ``manifest["files"]`` are the published names (relative to ``location``); ``manifest["from"]`` maps each to
    the attempt's file, relative to ``work``.
    """
    published = claim(work, manifest)
    copy_files([join(work, published["from"][name]) for name in published["files"]], location, published["files"])
    write_file(join(location, SUCCESS), b"")
    commit(location, published)
    return published


def remove_folder(location: str) -> None:
    """Delete everything under ``location`` (S3: batched DeleteObjects); nothing there is fine, so that a retried
    caller finishes what an earlier attempt started."""
    fs, path = filesystem(location)
    fs.invalidate_cache()
    try:
        fs.rm(path.rstrip("/"), recursive=True)
    except FileNotFoundError:
        return
    except OSError as error:
        raise StorageError(f"cannot delete {location!r}: {error}") from error


def copy_files(uris: list[str], location: str, names: list[str]) -> None:
    """Copy each of ``uris`` to ``location/<name>`` (same store), each appearing whole or not at all: server-side
    copies on object stores, hard links on local disks. Copying again gives the same files."""
    if not uris:
        return
    fs, root = filesystem(location)
    if not is_local_fs(fs):
        targets = [posixpath.join(root, name) for name in names]
        try:
            fs.copy([filesystem(uri)[1] for uri in uris], targets)
        except FileNotFoundError as error:
            raise InputError(f"cannot publish into {location!r}: an attempt file is gone ({error})") from error
        except OSError as error:
            raise StorageError(f"cannot publish into {location!r}: {error}") from error
        return
    for uri, name in zip(uris, names, strict=True):
        target = os.path.join(root, name)
        source = filesystem(uri)[1]
        if os.path.exists(target) and os.path.samefile(source, target):
            continue  # published before (rename() of two links to one file would leave the temporary name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temporary = _temporary(target)
        try:
            os.link(source, temporary)
        except OSError:  # another device, or links not allowed: a copy, renamed into place
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)


def _temporary(path: str) -> str:
    """A temporary name beside ``path`` that no reader takes for data: it starts with a dot."""
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
