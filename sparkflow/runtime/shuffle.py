"""Shuffle objects: what one map task of a key stage writes, as Spark's sort shuffle writes it.

A map task assigns every row of its chunk to one of R buckets. The engine writes them locally as one folder per
bucket (``_bucket=N/part-...parquet``); :func:`pack` concatenates those files, in bucket order, into **one**
object per map task, and returns its :class:`Index`: for each bucket, the lengths of the complete Parquet files
it holds, in order (Spark's shuffle writes a data file and an index file of offsets; here the index travels in the
map task's commit manifest). So a map task uploads one object whatever R is — M map tasks make M data PUTs, not
M x R — and a reduce task reads its buckets' bytes from each map object with one ranged GET, skipping the objects
where they are empty.

Why lengths rather than one offset per bucket: an engine may write several files into one bucket's folder, and
each is a complete Parquet file only on its own (concatenated Parquet files are not one Parquet file: each footer
addresses its own file). Keeping each file whole needs no Parquet rewriting, which could change the types Spark
wrote; a bucket's files are still one contiguous byte range, read with one request and cut apart locally.

Per-bucket sizes stay in the index (:meth:`Index.sizes`), so the partition phase (:mod:`sparkflow.runtime.partition`)
chooses the reducer count after the map phase by giving each reducer a run of contiguous buckets: contiguous buckets
are one contiguous byte range (:meth:`Index.span`), still one ranged GET per map object.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import Any

from sparkflow.errors import StorageError
from sparkflow.runtime import storage

BUCKET_COLUMN = "_bucket"  # the column (and local folder name, ``_bucket=N``) a map task buckets rows by
OBJECT = "buckets.data"  # a map task's shuffle object, in its attempt folder


@dataclass(frozen=True)
class Range:
    """A byte range of a shuffle object that holds complete Parquet files, one after another."""

    uri: str
    start: int
    lengths: tuple[int, ...]  # the files' lengths, in order

    @property
    def end(self) -> int:
        return self.start + sum(self.lengths)


@dataclass(frozen=True)
class Index:
    """Where each bucket's bytes lie in one map task's shuffle object.

    Attributes:
        files: per bucket (in bucket order), the lengths of the complete Parquet files it holds; bucket b starts
            where bucket b - 1 ends, the first at byte 0. An empty bucket holds no file.
        schema: the length of a Parquet file without rows after the last bucket (0: none). An empty chunk writes
            one, so that reducers whose bucket is empty in every chunk still learn the input's columns.
    """

    files: tuple[tuple[int, ...], ...]
    schema: int = 0

    def offsets(self) -> list[int]:
        """R + 1 offsets, Spark's index file: bucket b is bytes ``[offsets[b], offsets[b + 1])``."""
        return list(self._offsets)

    @cached_property
    def _offsets(self) -> tuple[int, ...]:
        # Computed once: the partition task takes a span of every map object for every reducer.
        return tuple(accumulate(self.sizes(), initial=0))

    def sizes(self) -> list[int]:
        """Each bucket's bytes, in bucket order."""
        return [sum(lengths) for lengths in self.files]

    def bucket(self, uri: str, bucket: int) -> Range | None:
        """Bucket ``bucket``'s range of the object at ``uri``; None when the bucket is empty (nothing to read)."""
        return self.span(uri, bucket, bucket + 1)

    def span(self, uri: str, low: int, high: int) -> Range | None:
        """Buckets ``low`` to ``high - 1`` of the object at ``uri`` as one range (contiguous buckets are contiguous
        bytes); None when all of them are empty."""
        lengths = tuple(length for files in self.files[low:high] for length in files)
        if not lengths:
            return None
        return Range(uri, self._offsets[low], lengths)

    def sample(self, uri: str) -> Range:
        """The object's first Parquet file (any bucket's, or the schema file): enough to learn its columns."""
        start = 0
        for lengths in self.files:
            if lengths:
                return Range(uri, start, lengths[:1])
        start = self.offsets()[-1]
        if not self.schema:
            raise StorageError(f"the shuffle object {uri!r} holds no Parquet file: its index is broken")
        return Range(uri, start, (self.schema,))

    def to_json(self) -> dict[str, Any]:
        return {"files": [list(lengths) for lengths in self.files], "schema": self.schema}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Index:
        return cls(tuple(tuple(int(n) for n in lengths) for lengths in document["files"]), int(document["schema"]))


def pack(folder: str, buckets: int, target: str, schema: str | None = None) -> Index:
    """Concatenate the bucket folders of ``folder`` (``_bucket=N/``, as the engine wrote them) into the local file
    ``target`` in bucket order, then ``schema`` (a Parquet file without rows) if given; return the index.

    Each bucket file is removed once copied, so the chunk's bytes are on the local disk once, not twice (Lambda's
    /tmp is small).
    """
    files: list[tuple[int, ...]] = []
    with open(target, "wb") as out:
        for bucket in range(buckets):
            lengths: list[int] = []
            for path in data_files(os.path.join(folder, f"{BUCKET_COLUMN}={bucket}")):
                lengths.append(_append(path, out))
                os.remove(path)
            files.append(tuple(lengths))
        length = _append(schema, out) if schema is not None else 0
    left = data_files(folder)
    if left:  # a file outside the bucket folders (an engine that named them otherwise) would lose its rows
        raise StorageError(f"the shuffle left {len(left)} file(s) outside its {buckets} bucket folders: {left[:3]}")
    return Index(tuple(files), length)


def fetch(ranges: list[Range], folder: str) -> list[str]:
    """Read each range with one ranged read and cut it into its Parquet files in ``folder``; their paths."""
    os.makedirs(folder, exist_ok=True)
    paths: list[str] = []
    for number, found in enumerate(ranges):
        data = storage.read_range(found.uri, found.start, found.end)
        offset = 0
        for index, length in enumerate(found.lengths):
            path = os.path.join(folder, f"{number:05d}-{index:05d}.parquet")
            with open(path, "wb") as handle:
                handle.write(data[offset : offset + length])
            offset += length
            paths.append(path)
    return paths


def data_files(folder: str) -> list[str]:
    """The data files under a bucket's folder, in a fixed order (engines' markers and checksums left out)."""
    if not os.path.isdir(folder):
        return []
    return sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if not name.startswith(("_", ".")) and not name.endswith(".crc")
    )


def _append(path: str, out: Any) -> int:
    with open(path, "rb") as handle:
        shutil.copyfileobj(handle, out)
    return os.path.getsize(path)
