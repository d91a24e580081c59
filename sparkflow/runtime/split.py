"""The split task: measure a stage's real input and cut it into chunks that each fit one function.

:func:`plan_chunks` lists the input through fsspec (local disk, ``s3://``, ``gs://``) and returns a
:class:`Manifest`: a list of chunks, each a list of :class:`Piece` s. :func:`read_chunk` later materialises
one chunk's records as local files that Spark or DuckDB read with their normal readers.

Record ownership (text, CSV, JSON lines):
    A record is a line: its bytes up to and including the next ``\\n`` (so ``\\r\\n`` ends a record too, and
    the last record of a file may lack a terminator). A range piece ``[start, end)`` of a file **owns every
    record that starts in that range**: the record at offset 0, and each record whose preceding byte (a
    ``\\n``) lies in ``[start - 1, end - 1)``. Its reader therefore skips the partial record it lands in unless
    ``start == 0``, and reads past ``end`` to finish its last record. Ranges of one file are disjoint and cover
    ``[0, size)``, so every record is read by exactly one chunk. A record longer than a chunk is read whole by
    the chunk holding its first byte; a chunk falling entirely inside it owns nothing and reads an empty file.
    Cutting only after ``\\n`` is also a record boundary for Spark's line reader, which additionally treats a
    lone ``\\r`` as a break: both sides of a cut see the same records either way.

CSV with a header:
    The header is the record at offset 0 of each file, so it is owned by the piece with ``start == 0``, whose
    local file begins with it as read. Every other piece of that file carries the header line (with its line
    terminator) in the manifest, and its reader writes it first: every local CSV file is a complete CSV file.
    Quoted fields spanning lines are not supported (Spark's ``multiLine`` is off for sources anyway).

Why the planner cuts at fixed offsets instead of aligning cuts to line ends:
    Planning then needs only the file sizes, which one listing returns (``fs.find(detail=True)``): splitting
    50 GB into thousands of chunks costs a listing, not thousands of range reads inside one task. Each reader
    aligns its own two ends, which costs it one small extra window it reads anyway to finish its last record.
    The price is that a chunk inside a very long record is empty. Only two things are read at plan time: the
    first line of a CSV file that is split into several pieces (its header) and the footer of a Parquet file
    larger than a chunk.

Parquet:
    Files up to ``chunk_bytes`` are whole pieces; a larger file is split on row groups, consecutive row groups
    packed up to ``chunk_bytes`` (of compressed size), so every row is in exactly one chunk.

Packing and compression:
    Files no larger than ``chunk_bytes`` are packed, in URI order, into chunks of up to ``chunk_bytes``. A
    larger file becomes ``ceil(size / chunk_bytes)`` equal ranges, one chunk each (no sliver at the end).
    Compressed files (decided by extension: ``.gz``, ``.bz2``, ``.zst``, ...; :mod:`sparkflow.compression`) cannot
    be entered in the middle: each is one whole piece, copied as it is (the engines decompress by extension), alone
    in its chunk when it is larger than ``chunk_bytes``. A compression sparkflow does not read is refused here, before
    any chunk task runs.

The manifest is plain JSON (:meth:`Manifest.to_json`), versioned, and identical for identical input.
Nothing here imports pyarrow, boto3 or pyspark at module import: the runtime is imported by every function.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparkflow import compression
from sparkflow.dsl.source import FORMATS
from sparkflow.errors import DefinitionError, InputError, StorageError
from sparkflow.runtime import storage

MANIFEST_VERSION = 1
# A map task reads the group of the manifest holding its chunk, not the whole manifest: the map phase then reads
# O(chunks) manifest bytes in all, not O(chunks²) (2,000 chunks: a 242 KB manifest took 7.2 ms to read, per task).
CHUNKS_PER_GROUP = 256
_BLOCK_BYTES = 8 * 1024 * 1024  # one ranged read while copying a piece
_WINDOW_BYTES = 64 * 1024  # first window read past a piece's end to finish its last record


@dataclass(frozen=True)
class FileInfo:
    """One input file and its size in bytes, as listed."""

    uri: str
    size: int


@dataclass(frozen=True)
class Piece:
    """A part of one file that a chunk reads.

    Attributes:
        uri: the file (a local path or ``s3://`` / ``gs://`` URI).
        start: first byte of the range (text formats: records starting here or later are owned).
        end: end of the range, exclusive (records starting before it are owned, read to their end).
        size: the file's size when planned.
        whole: the file is read as it is (compressed files, small Parquet files).
        row_groups: Parquet row groups to read (``start``/``end`` then span their bytes), or None.
        header: CSV only: the file's header line with its terminator, for pieces with ``start > 0``.
    """

    uri: str
    start: int
    end: int
    size: int
    whole: bool = False
    row_groups: tuple[int, ...] | None = None
    header: str | None = None

    @property
    def nbytes(self) -> int:
        """Bytes this piece plans for (the range; its last record may run a little past it)."""
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"uri": self.uri, "start": self.start, "end": self.end, "size": self.size}
        if self.whole:
            document["whole"] = True
        if self.row_groups is not None:
            document["row_groups"] = list(self.row_groups)
        if self.header is not None:
            document["header"] = self.header
        return document

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> Piece:
        groups = document.get("row_groups")
        return cls(
            uri=str(document["uri"]),
            start=int(document["start"]),
            end=int(document["end"]),
            size=int(document["size"]),
            whole=bool(document.get("whole", False)),
            row_groups=None if groups is None else tuple(int(group) for group in groups),
            header=document.get("header"),
        )


@dataclass(frozen=True)
class Chunk:
    """The pieces one task reads."""

    pieces: tuple[Piece, ...]

    @property
    def nbytes(self) -> int:
        return sum(piece.nbytes for piece in self.pieces)


@dataclass(frozen=True)
class Manifest:
    """The chunks of one input, as planned by :func:`plan_chunks`.

    Attributes:
        format: ``text``, ``csv``, ``json`` or ``parquet``.
        header: CSV files begin with a header line.
        chunk_bytes: the planned bytes per chunk.
        chunks: at least one chunk (with no pieces when the input is empty).
        version: the manifest format's version (:data:`MANIFEST_VERSION`).
    """

    format: str
    header: bool
    chunk_bytes: int
    chunks: tuple[Chunk, ...]
    version: int = field(default=MANIFEST_VERSION)

    @property
    def files(self) -> int:
        return len({piece.uri for chunk in self.chunks for piece in chunk.pieces})

    @property
    def nbytes(self) -> int:
        return sum(chunk.nbytes for chunk in self.chunks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "format": self.format,
            "header": self.header,
            "chunk_bytes": self.chunk_bytes,
            "files": self.files,
            "bytes": self.nbytes,
            "chunks": [{"pieces": [piece.to_dict() for piece in chunk.pieces]} for chunk in self.chunks],
        }

    def to_json(self) -> str:
        """Compact JSON with sorted keys: the same input always gives the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes, what: str = "chunk manifest") -> Manifest:
        """Parse :meth:`to_json`'s output; an unreadable or other-version manifest is an :class:`InputError`."""
        try:
            document = json.loads(text)
            version = document.get("version") if isinstance(document, dict) else None
            if version != MANIFEST_VERSION:
                raise InputError(
                    f"{what}: version {version!r} is not the supported version {MANIFEST_VERSION}: "
                    "split the input again with this sparkflow version"
                )
            chunks = tuple(
                Chunk(tuple(Piece.from_dict(piece) for piece in chunk["pieces"])) for chunk in document["chunks"]
            )
            return cls(
                format=str(document["format"]),
                header=bool(document["header"]),
                chunk_bytes=int(document["chunk_bytes"]),
                chunks=chunks,
                version=MANIFEST_VERSION,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            if isinstance(error, InputError):
                raise
            raise InputError(f"{what}: not a valid chunk manifest ({error}); split the input again") from error


def plan_chunks(
    files: str | Sequence[FileInfo | str], format: str, chunk_bytes: int, *, header: bool = False
) -> Manifest:
    """Measure the input and cut it into chunks of about ``chunk_bytes`` each.

    Args:
        files: a location (one file, or a folder read recursively, skipping names starting with ``_`` or
            ``.``), or a list of files (:class:`FileInfo` as already listed, or URIs to measure).
        format: ``text``, ``csv``, ``json`` (JSON lines) or ``parquet``.
        chunk_bytes: the planned input bytes per chunk (at least 1).
        header: CSV files begin with a header line (CSV only).

    Returns:
        The manifest; a single chunk when the whole input fits one.

    Raises:
        DefinitionError: an unknown format, a chunk size below 1, or ``header`` for a format without one.
        InputError: a file or location that does not exist or cannot be read (e.g. a corrupt Parquet footer), or a
            file of a compression sparkflow does not read (see :mod:`sparkflow.compression`).

    Example:
        >>> manifest = plan_chunks("s3://bucket/books/", "text", 64 * 1024 * 1024)  # doctest: +SKIP
    """
    _check_format(format, header)
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise DefinitionError(
            f"chunk size {chunk_bytes!r} is not a whole number of bytes >= 1: "
            "pass a positive chunk_size= on the stage or --chunk-size to sparkflow run"
        )
    listed = _measure([files] if isinstance(files, str) else files)
    compression.refuse([info.uri for info in listed], format, f"cannot split the {format} input")
    packer = _Packer(chunk_bytes)
    for info in listed:
        compressed = compression.of(info.uri) is not None
        if compressed or info.size <= chunk_bytes:
            packer.add_small(
                Piece(info.uri, 0, info.size, info.size, whole=compressed or format == "parquet"),
            )
        elif format == "parquet":
            for piece in _row_group_pieces(info, chunk_bytes):
                packer.add_own(piece)
        else:
            file_header = _header_line(info) if header else None
            count = math.ceil(info.size / chunk_bytes)
            cuts = [info.size * index // count for index in range(count + 1)]
            for start, end in itertools.pairwise(cuts):
                packer.add_own(Piece(info.uri, start, end, info.size, header=file_header if start else None))
    return Manifest(format, header, chunk_bytes, packer.finish())


def read_chunk(
    chunk: Chunk, format: str, header: bool, local_folder: str, *, block_bytes: int = _BLOCK_BYTES
) -> list[str]:
    """Materialise the records ``chunk`` owns as local files, one per piece; return their paths.

    Range pieces are fetched with ranged reads (``fs.cat_file(path, start, end)``): the range, one byte before
    it, and the tail of the last record, never the whole file. A local file a piece covers entirely, and a
    whole piece of a local file, is returned where it is; remote ones are copied into ``local_folder``. CSV
    files with a header all begin with it. Parquet row groups are written to a local Parquet file.

    Args:
        chunk: one chunk of a :class:`Manifest`.
        format: the manifest's format.
        header: the manifest's ``header``.
        local_folder: where to write (created if needed).
        block_bytes: bytes per ranged read.

    Raises:
        InputError: a file is missing, changed since it was planned, or cannot be read.
    """
    _check_format(format, header)
    if block_bytes < 1:
        raise DefinitionError(f"block_bytes {block_bytes!r} must be >= 1")
    os.makedirs(local_folder, exist_ok=True)
    paths: list[str] = []
    for index, piece in enumerate(chunk.pieces):
        fs, path = storage.filesystem(piece.uri)
        local = os.path.join(local_folder, f"{index:05d}-{posixpath.basename(path.rstrip('/')) or 'part'}")
        try:
            if piece.row_groups is not None:
                _write_row_groups(fs, path, piece.row_groups, local)
            elif piece.whole or (piece.start == 0 and piece.end == piece.size):
                if storage.is_local_fs(fs):
                    if not os.path.isfile(path):
                        raise FileNotFoundError(path)
                    paths.append(path)
                    continue
                fs.get_file(path, local)
            else:
                with open(local, "wb") as out:
                    if format == "csv" and header and piece.start > 0 and piece.header is not None:
                        out.write(piece.header.encode("utf-8", "surrogateescape"))
                    _copy_owned(fs, path, piece, out, block_bytes)
        except FileNotFoundError as error:
            raise InputError(
                f"cannot read chunk input {piece.uri!r}: the file no longer exists; "
                "the input changed after it was split: split it again"
            ) from error
        except PermissionError as error:
            raise InputError(f"cannot read chunk input {piece.uri!r}: {error}") from error
        except OSError as error:
            if isinstance(error, StorageError):
                raise
            raise StorageError(f"cannot read chunk input {piece.uri!r}: {error}") from error
        paths.append(local)
    return paths


def first_record_offset(piece: Piece) -> int:
    """Where the first record a range piece owns begins in its file (see the module docstring): 0 for a piece
    at the start, else the byte after the first ``\\n`` at or after ``start - 1`` (the file's size if none).

    One small ranged read; used only to name a bad record by its offset in the original file.
    """
    if piece.start == 0 or piece.whole:
        return 0
    fs, path = storage.filesystem(piece.uri)
    found = _find_newline(fs, path, piece.start - 1, piece.size, _WINDOW_BYTES)
    return piece.size if found < 0 else found + 1


def write_manifest(manifest: Manifest, location: str) -> None:
    """Write ``manifest`` to the file ``location`` atomically: one PUT on object stores, rename on local disk."""
    storage.write_file(location, manifest.to_json().encode())


def write_chunk_groups(manifest: Manifest, folder: str) -> None:
    """Write ``manifest`` again as consecutive groups of :data:`CHUNKS_PER_GROUP` chunks under ``folder``, each
    a manifest of its own (``group-00000.json``, ...), for :func:`read_planned_chunk`."""
    for start in range(0, len(manifest.chunks), CHUNKS_PER_GROUP):
        group = Manifest(
            manifest.format, manifest.header, manifest.chunk_bytes, manifest.chunks[start : start + CHUNKS_PER_GROUP]
        )
        write_manifest(group, _group_location(folder, start))


def read_planned_chunk(folder: str, index: int) -> tuple[Manifest, Chunk]:
    """Chunk ``index`` of the manifest :func:`write_chunk_groups` wrote under ``folder``, with its group (whose
    format and header are the whole manifest's)."""
    location = _group_location(folder, index)
    group = read_manifest(location)
    position = index % CHUNKS_PER_GROUP
    if index < 0 or position >= len(group.chunks):
        raise InputError(f"chunk {index} is not in the chunk manifest {location!r}: split the input again")
    return group, group.chunks[position]


def _group_location(folder: str, index: int) -> str:
    return storage.join(folder, f"group-{max(index, 0) // CHUNKS_PER_GROUP:05d}.json")


def read_manifest(location: str) -> Manifest:
    """The manifest :func:`write_manifest` wrote at ``location``."""
    fs, path = storage.filesystem(location)
    fs.invalidate_cache(path)  # s3fs may answer from a listing cache made before the manifest was written
    try:
        data = fs.cat_file(path)
    except FileNotFoundError as error:
        raise InputError(f"no chunk manifest at {location!r}: the split task has not finished in this run") from error
    except OSError as error:
        raise StorageError(f"cannot read the chunk manifest {location!r}: {error}") from error
    return Manifest.from_json(data, what=f"chunk manifest {location!r}")


def list_files(location: str) -> list[FileInfo]:
    """The data files under ``location`` (one file, or a folder read recursively) with their sizes, sorted.

    Names with a part starting with ``_`` or ``.`` (``_SUCCESS``, ``.crc``, ``_attempts``) are skipped.
    """
    fs, path = storage.filesystem(location)
    fs.invalidate_cache(path)
    try:
        info = fs.info(path)
        if info.get("type") != "directory":
            return [FileInfo(location if storage.is_remote(location) else path, int(info["size"]))]
        found: dict[str, dict[str, Any]] = fs.find(path, detail=True)
    except FileNotFoundError as error:
        raise InputError(
            f"nothing at {location!r} to split: check the location, or that the stage writing it has finished"
        ) from error
    except PermissionError as error:
        raise InputError(f"cannot list {location!r} to split it: {error}") from error
    except OSError as error:
        raise StorageError(f"cannot list {location!r} to split it: {error}") from error
    root = path.rstrip("/")
    listed: list[FileInfo] = []
    for name, detail in sorted(found.items()):
        relative = name[len(root) :].lstrip("/")
        if detail.get("type") == "directory" or any(part.startswith(("_", ".")) for part in relative.split("/")):
            continue
        uri = fs.unstrip_protocol(name) if storage.is_remote(location) else name
        listed.append(FileInfo(uri, int(detail["size"])))
    if not listed:
        raise InputError(f"the folder {location!r} holds no data files to split: check the location")
    return listed


def _check_format(format: str, header: bool) -> None:
    if format not in FORMATS:
        raise DefinitionError(f"cannot split unknown format {format!r}: use one of {', '.join(FORMATS)}")
    if header and format != "csv":
        raise DefinitionError(f"header=True applies to csv only, not to format {format!r}: pass header=False")


def _measure(entries: Iterable[FileInfo | str]) -> list[FileInfo]:
    """Every file once, sorted by URI: the manifest must not depend on the order files were given in."""
    unique: dict[str, FileInfo] = {}
    for entry in entries:
        for info in [entry] if isinstance(entry, FileInfo) else list_files(entry):
            unique[info.uri] = info
    return [unique[uri] for uri in sorted(unique)]


class _Packer:
    """Builds the chunk list: small pieces packed in order (next fit), large ones in chunks of their own."""

    def __init__(self, chunk_bytes: int) -> None:
        self.chunk_bytes = chunk_bytes
        self.chunks: list[Chunk] = []
        self.open: list[Piece] = []
        self.open_bytes = 0

    def add_small(self, piece: Piece) -> None:
        if self.open and self.open_bytes + piece.nbytes > self.chunk_bytes:
            self._close()
        self.open.append(piece)
        self.open_bytes += piece.nbytes

    def add_own(self, piece: Piece) -> None:
        self.chunks.append(Chunk((piece,)))

    def _close(self) -> None:
        self.chunks.append(Chunk(tuple(self.open)))
        self.open, self.open_bytes = [], 0

    def finish(self) -> tuple[Chunk, ...]:
        if self.open or not self.chunks:
            self._close()
        return tuple(self.chunks)


def _read(fs: Any, path: str, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of a file: one ranged read (the only way this module reads text files)."""
    data: bytes = fs.cat_file(path, start=start, end=end)
    return data


def _header_line(info: FileInfo) -> str:
    """The first line of a CSV file, with its terminator, read in growing windows (never the whole file)."""
    fs, path = storage.filesystem(info.uri)
    try:
        found = _find_newline(fs, path, 0, info.size, _WINDOW_BYTES)
        data = _read(fs, path, 0, info.size if found < 0 else found + 1)
    except FileNotFoundError as error:
        raise InputError(f"cannot read the header of {info.uri!r}: the file no longer exists") from error
    return data.decode("utf-8", "surrogateescape")


def _find_newline(fs: Any, path: str, position: int, limit: int, window: int) -> int:
    """The offset of the first ``\\n`` in ``[position, limit)``, or -1; each read doubles, up to 8 windows."""
    step = window
    while position < limit:
        data = _read(fs, path, position, min(position + step, limit))
        if not data:
            return -1
        found = data.find(b"\n")
        if found >= 0:
            return position + found
        position += len(data)
        step = min(step * 2, window * 8)
    return -1


def _blocks(fs: Any, path: str, start: int, end: int, block: int, piece: Piece) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` blocks covering ``[start, end)``; a file shorter than planned is an error."""
    position = start
    while position < end:
        data = _read(fs, path, position, min(position + block, end))
        if not data:
            raise InputError(
                f"chunk input {piece.uri!r} is shorter than the {piece.size} bytes it had when it was split: "
                "the input changed during the run; split it again"
            )
        yield position, data
        position += len(data)


def _copy_owned(fs: Any, path: str, piece: Piece, out: Any, block: int) -> None:
    """Write the records ``piece`` owns (see the module docstring) to ``out``."""
    start, end, size = piece.start, piece.end, piece.size
    copying = start == 0
    last = b""
    for offset, data in _blocks(fs, path, start - 1 if start else 0, end, block, piece):
        last = data[-1:]
        if not copying:
            found = data.find(b"\n")
            if found < 0:
                continue
            if offset + found + 1 >= end:  # the first record after the cut starts at or after end: not ours
                return
            copying = True
            data = data[found + 1 :]
        out.write(data)
    if not copying or end >= size or last == b"\n":
        return
    # Finish the last owned record: copy up to and including the first "\n" at or after end.
    step = min(_WINDOW_BYTES, block)
    position = end
    while position < size:
        data = _read(fs, path, position, min(position + step, size))
        if not data:
            return
        found = data.find(b"\n")
        if found >= 0:
            out.write(data[: found + 1])
            return
        out.write(data)
        position += len(data)
        step = min(step * 2, block)


def _row_group_pieces(info: FileInfo, chunk_bytes: int) -> list[Piece]:
    """Consecutive row groups of a Parquet file, packed up to ``chunk_bytes`` of compressed size."""
    import pyarrow.parquet as pq  # lazy: the runtime must import fast

    fs, path = storage.filesystem(info.uri)
    try:
        # cache_type="none": pyarrow reads the footer with ranged reads, not a readahead of the whole file.
        handle = fs.open(path, "rb", cache_type="none")
    except FileNotFoundError as error:
        raise InputError(f"cannot split {info.uri!r}: the file no longer exists") from error
    except PermissionError as error:
        raise InputError(f"cannot split {info.uri!r}: {error}") from error
    except OSError as error:  # the store failed for a moment: retrying can help
        raise StorageError(f"cannot open {info.uri!r} to split it: {error}") from error
    try:
        with handle:
            metadata = pq.read_metadata(handle)
    except Exception as error:  # pyarrow raises ArrowInvalid (a ValueError) and OSError subclasses
        raise InputError(
            f"cannot read the Parquet footer of {info.uri!r}: {error}; is it a Parquet file? "
            "Check the source's format= or remove the file"
        ) from error
    groups: list[tuple[int, int, int, int]] = []  # (index, first byte, end byte, compressed bytes)
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        first, last, nbytes = info.size, 0, 0
        for column in range(group.num_columns):
            chunk = group.column(column)
            offset = chunk.data_page_offset
            if chunk.has_dictionary_page and chunk.dictionary_page_offset:
                offset = min(offset, chunk.dictionary_page_offset)
            first = min(first, offset)
            last = max(last, offset + chunk.total_compressed_size)
            nbytes += chunk.total_compressed_size
        groups.append((index, first, max(first, last), nbytes))
    if not groups:
        return [Piece(info.uri, 0, info.size, info.size, whole=True)]
    pieces: list[Piece] = []
    current: list[tuple[int, int, int, int]] = []
    for group_info in [*groups, None]:
        if current and (group_info is None or sum(g[3] for g in current) + group_info[3] > chunk_bytes):
            indexes = tuple(g[0] for g in current)
            pieces.append(Piece(info.uri, current[0][1], current[-1][2], info.size, row_groups=indexes))
            current = []
        if group_info is not None:
            current.append(group_info)
    return pieces


def _write_row_groups(fs: Any, path: str, row_groups: tuple[int, ...], local: str) -> None:
    """Copy some row groups of a Parquet file into a file of their own that reads back with the same types.

    Spark writes its TIMESTAMP columns as INT96. Read back by default that is nanoseconds (out of range
    for dates past 2262) and written back it becomes INT64 nanoseconds, which Spark refuses to read as a
    TIMESTAMP; so INT96 is read in microseconds and written as INT96 again. Where the file also holds
    timestamps of another physical type (Spark's TIMESTAMP_NTZ), writing every timestamp as INT96 would
    break those, so the INT96 columns alone become INT64 instants in UTC, which Spark reads as TIMESTAMP.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    with fs.open(path, "rb", cache_type="none") as handle:
        source = pq.ParquetFile(handle, coerce_int96_timestamp_unit="us")
        table = source.read_row_groups(list(row_groups))
    columns = [source.schema.column(index) for index in range(source.metadata.num_columns)]
    int96 = {index for index, column in enumerate(columns) if column.physical_type == "INT96"}
    if int96 and not any(column.logical_type.type == "TIMESTAMP" for column in columns):
        pq.write_table(table, local, use_deprecated_int96_timestamps=True)
        return
    if int96:
        utc = pa.timestamp("us", tz="UTC")
        table = table.cast(_map_leaves(table.schema, lambda index, kind: utc if index in int96 else kind))
    pq.write_table(table, local)


def _map_leaves(schema: Any, change: Callable[[int, Any], Any]) -> Any:
    """``schema`` with the type of each leaf (Parquet column, numbered depth first) replaced by ``change(number,
    type)``; structs, maps and lists keep their shape."""
    import pyarrow as pa

    counter = itertools.count()

    def convert(kind: Any) -> Any:
        if pa.types.is_struct(kind):
            return pa.struct([kind.field(i).with_type(convert(kind.field(i).type)) for i in range(kind.num_fields)])
        if pa.types.is_map(kind):
            return pa.map_(
                kind.key_field.with_type(convert(kind.key_type)), kind.item_field.with_type(convert(kind.item_type))
            )
        if pa.types.is_list(kind):
            return pa.list_(kind.value_field.with_type(convert(kind.value_type)))
        if pa.types.is_large_list(kind):
            return pa.large_list(kind.value_field.with_type(convert(kind.value_type)))
        return change(next(counter), kind)

    return pa.schema([column.with_type(convert(column.type)) for column in schema], metadata=schema.metadata)
