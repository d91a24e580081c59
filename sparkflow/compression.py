"""The compressions of text, CSV and JSON-lines inputs, as one table: which ones sparkflow reads, and why the others
are refused.

A file's compression is told by its extension, case aside (``logs/app.log.gz``), as Spark tells it. sparkflow reads
exactly the compressions Spark decompresses by extension, and every engine reads them as Spark does; a file with
another compression's extension is refused with an error naming it, before anything runs where that can be known,
instead of being read as the bytes Spark would read. Measured with pyspark 4.2.0 (Hadoop's codecs plus Spark's own
zstd reader, SPARK-52482, which also reads ``.gzip`` and ``.zstd``):

* read: gzip (``.gz``, ``.gzip``), bzip2 (``.bz2``), zstd (``.zst``, ``.zstd``) and zlib (``.deflate``, Hadoop's
  DefaultCodec: a zlib stream);
* refused: xz (``.xz``, ``.lzma``), brotli (``.br``) and lzo (``.lzo``): Spark has no codec for them and reads their
  compressed bytes as text; lz4 (``.lz4``) and snappy (``.snappy``): Spark's codecs for them read Hadoop's own block
  framing, not the files the ``lz4`` tool or a snappy framing library writes (a small ``.lz4`` file ran Spark's
  reader out of memory); zip (``.zip``): an archive of files, not a compressed stream, which Spark reads as bytes.

Readers of this table: the DSL (a source's format is told from the extension under the compression's), the compiler
(a declared location naming a refused file), ``sparkflow run`` (local sources, before the first stage), the split
task (a compressed file is one whole piece: it cannot be entered in the middle), the reading tasks, the engines
(what each reads itself, and what is decompressed for it) and ``sparkflow plan`` (compressed files are read whole).
A Parquet file compresses its pages inside (snappy, gzip, zstd): an outer compression is refused for it too.

Nothing here imports more than the standard library at module import: the runtime reads it in every function.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from sparkflow.errors import InputError, Origin


@dataclass(frozen=True)
class Compression:
    """One compression, told by a file's extension.

    Attributes:
        name: what messages call it (``gzip``).
        extensions: its extensions, lower case; the first is the one every reader knows it by (``.gz``).
        read: whether sparkflow reads it (Spark decompresses it); else it is refused.
        arrow: the pyarrow codec that decompresses it (read compressions only).
        why: why it is refused (refused compressions only).
    """

    name: str
    extensions: tuple[str, ...]
    read: bool
    arrow: str | None = None
    why: str = ""

    @property
    def extension(self) -> str:
        return self.extensions[0]

    def shown(self) -> str:
        """``gzip (.gz, .gzip)``."""
        return f"{self.name} ({', '.join(self.extensions)})"


_NO_CODEC = "Spark has no codec for it and reads its compressed bytes as text"
_HADOOP_FRAMING = (
    "Spark's {name} codec reads Hadoop's own block framing, not the {name} files other tools write: such a file ran "
    "Spark's reader out of memory"
)

#: Every compression sparkflow knows, read or refused.
COMPRESSIONS = (
    Compression("gzip", (".gz", ".gzip"), True, arrow="gzip"),
    Compression("bzip2", (".bz2",), True, arrow="bz2"),
    Compression("zstd", (".zst", ".zstd"), True, arrow="zstd"),
    # Hadoop's DefaultCodec writes a zlib stream under .deflate; Arrow's gzip decompressor reads zlib headers too.
    Compression("zlib", (".deflate",), True, arrow="gzip"),
    Compression("xz", (".xz", ".lzma"), False, why=_NO_CODEC),
    Compression("brotli", (".br",), False, why=_NO_CODEC),
    Compression("lzo", (".lzo",), False, why=_NO_CODEC),
    Compression("lz4", (".lz4",), False, why=_HADOOP_FRAMING.format(name="lz4")),
    Compression("snappy", (".snappy",), False, why=_HADOOP_FRAMING.format(name="snappy")),
    Compression("zip", (".zip",), False, why="a zip file is an archive of files, which Spark reads as bytes"),
)
_BY_EXTENSION = {extension: item for item in COMPRESSIONS for extension in item.extensions}
#: The extensions of every compression, read or refused: a file with one cannot be read from the middle.
EXTENSIONS = tuple(_BY_EXTENSION)
#: The compressions sparkflow reads, as messages list them.
READ = ", ".join(item.shown() for item in COMPRESSIONS if item.read)
_BLOCK = 8 * 1024 * 1024  # bytes decompressed at a time


def of(path: str) -> Compression | None:
    """The compression of the file ``path`` (a path or URI) by its extension, or None for a plain file."""
    return _BY_EXTENSION.get(_extension(path))


def stem(name: str) -> str:
    """``name`` without its compression's extension (``app.log.gz`` -> ``app.log``); a plain name as it is."""
    extension = _extension(name)
    return name[: -len(extension)] if extension in _BY_EXTENSION else name


def refusal(path: str, format: str) -> str | None:
    """Why a file of a ``format`` source cannot be read, by its name alone, or None when it can: a compression
    Spark does not decompress, or any outer compression of a Parquet file."""
    found = of(path)
    if found is None:
        return None
    if format == "parquet":
        return (
            f"{path!r} is compressed with {found.name}, and a Parquet file is read as it is (its pages are compressed "
            "inside it: snappy, gzip, zstd): decompress it"
        )
    if found.read:
        return None
    return (
        f"{path!r} is compressed with {found.name}, which sparkflow does not read ({found.why}). sparkflow reads the "
        f"compressions Spark decompresses: {READ}: decompress the file or compress it with one of those"
    )


def refuse(paths: Iterable[str], format: str, what: str, origin: Origin | None = None) -> None:
    """Raise an :class:`InputError` naming the first of ``paths`` that cannot be read (see :func:`refusal`).

    Args:
        paths: the files, as the user knows them.
        format: the source's format.
        what: whose files they are, e.g. ``source 'logs'``.
        origin: where the source was declared.
    """
    refused = [(path, reason) for path in paths if (reason := refusal(path, format)) is not None]
    if refused:
        others = f" (and {len(refused) - 1} more such files)" if len(refused) > 1 else ""
        raise InputError(f"{what}: {refused[0][1]}{others}", origin)


def open_decompressed(path: str) -> IO[bytes]:
    """The local file ``path`` opened for reading its decompressed bytes (a plain file as it is), line by line or in
    blocks. Concatenated gzip members, bzip2 streams and zstd frames are read one after another, as Spark reads them.

    Raises:
        InputError: a compression sparkflow does not read.
    """
    import io

    found = of(path)
    if found is None:
        return open(path, "rb")
    if not found.read or found.arrow is None:
        raise InputError(refusal(path, "text") or f"cannot decompress {path!r}")
    import pyarrow as pa  # lazy: the runtime must import fast; every engine ships pyarrow

    return io.BufferedReader(pa.CompressedInputStream(pa.OSFile(path), found.arrow), _BLOCK)


def decompress(path: str, target: str) -> str:
    """Write the decompressed bytes of the local file ``path`` to ``target``; return ``target``.

    Raises:
        InputError: the file is not a valid stream of its compression (e.g. truncated), as Spark's read fails.
    """
    try:
        with open_decompressed(path) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out, _BLOCK)
    except OSError as error:  # pyarrow's decompressors raise OSError on a corrupt stream
        raise InputError(f"cannot decompress {path!r}: {error}; is it a whole {_name(path)} file?") from error
    return target


def readable(paths: Sequence[str], folder: str, reads: Collection[str]) -> list[str]:
    """``paths`` (local files) as an engine that decompresses only the compressions named ``reads`` itself, by
    their first extension, reads them: one path for each, in order.

    A plain file, or one it reads under that extension, is returned as it is; one it reads under another spelling
    (``.gzip``, ``.GZ``) is linked under that extension; any other is decompressed. Links and copies go to a new
    folder under ``folder`` whose name starts with ``_`` (so that a listing of ``folder`` skips it).
    """
    found: list[str] = []
    scratch: str | None = None
    for index, path in enumerate(paths):
        kind = of(path)
        if kind is None or (kind.name in reads and path.endswith(kind.extension)):
            found.append(path)
            continue
        if scratch is None:
            os.makedirs(folder, exist_ok=True)
            scratch = tempfile.mkdtemp(prefix="_decompressed-", dir=folder)
        name = f"{index:05d}-{stem(os.path.basename(path))}"
        if kind.name in reads:
            target = os.path.join(scratch, name + kind.extension)
            try:
                os.symlink(os.path.abspath(path), target)
            except OSError:
                shutil.copyfile(path, target)
            found.append(target)
        else:
            found.append(decompress(path, os.path.join(scratch, name)))
    return found


def _name(path: str) -> str:
    found = of(path)
    return found.name if found else "plain"


def _extension(path: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return os.path.splitext(name)[1].lower()
