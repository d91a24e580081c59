"""Bad input records: what a CSV or JSON-lines source's ``on_bad_record=`` does at run time.

A *bad record* is a line of a CSV or JSON-lines file that does not parse into the source's schema: a CSV row with
the wrong number of fields or a value that does not convert to its column's type; a JSON line that is not valid
JSON, not an object, or holds a value that does not convert. Each engine finds them with its own parser
(:meth:`~sparkflow.runtime.engines.Engine.bad_records`), so the records it drops are exactly those it cannot read.
This module finds each one's line in the local file, names its place in the original file, and applies the policy:

* ``fail`` (default): sources are read as before (the engines fail on a bad record, Spark only when the stage's
  code runs). Only when a read fails on one is it looked for, so that the :class:`~sparkflow.errors.InputError`
  names the file, the line (or byte offset) and the record: inputs without bad records cost nothing more.
* ``skip``: before the read, the bad records are found and the engine reads copies of the files without them
  (its ordinary strict reader then finds nothing wrong). Their number goes into the task's manifest and result
  (``output.rejected``), its log lines and ``sparkflow run``'s summary: never a silent drop.
* ``quarantine``: as ``skip``, and the records (source, file, line or offset, raw text) are written as JSON lines to
  ``<run>/_rejects/<node>/<part>.jsonl``: one file per task under a fixed name, written whole when the task
  commits, so a retried or duplicated task rewrites the same file instead of adding records.

Places: a whole stage reads whole files, so lines are the file's own. A chunk of a split stage that starts inside
a file (see :mod:`sparkflow.runtime.split`) knows where its records begin in the file but not their line numbers,
so its records are named by byte offset in the original file. Compressed files are read decompressed; offsets then
count decompressed bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sparkflow import compression
from sparkflow.errors import InputError, SparkflowError
from sparkflow.runtime import datasets, logs, split, storage

if TYPE_CHECKING:
    from sparkflow.plan import PlanSource

#: Formats whose records can be bad one by one.
LINE_FORMATS = ("csv", "json")
_SHOWN = 120  # characters of a record an error message shows


class _Engine(Protocol):
    name: str

    def read_source(self, source: PlanSource, uri: str, folder: str) -> Any: ...

    def bad_records(self, source: PlanSource, paths: list[str]) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class FileOrigin:
    """Where a local file an engine reads comes from.

    Attributes:
        uri: the original file, as the user knows it.
        piece: the part of it a chunk holds (see :func:`sparkflow.runtime.split.read_chunk`), or None for the
            whole file.
    """

    uri: str
    piece: split.Piece | None = None

    def shift(self) -> int | None:
        """What to add to a byte offset in the local file for the offset in the original; None when the local file
        begins where the original does (its lines and offsets are the original's)."""
        piece = self.piece
        if piece is None or piece.start == 0 or piece.whole:
            return None
        # read_chunk wrote the file's CSV header first, then the owned records from their first byte on.
        copied = len(piece.header.encode("utf-8", "surrogateescape")) if piece.header is not None else 0
        return split.first_record_offset(piece) - copied


@dataclass(frozen=True)
class BadRecord:
    """One bad record and its place: ``line`` (1-based) is None where only the byte ``offset`` is known."""

    source: str
    file: str
    line: int | None
    offset: int
    record: str

    def place(self) -> str:
        if self.line is not None:
            return f"line {self.line} of {self.file!r}"
        return f"byte offset {self.offset} of {self.file!r}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "file": self.file,
            "line": self.line,
            "offset": self.offset,
            "record": self.record,
        }


class SourceReader:
    """Reads one task's sources under their ``on_bad_record`` policies, and keeps what it rejected.

    Args:
        stage: the stage's name, for messages.
        rejects: the folder quarantined records go to (the run's ``_rejects/<node>/``).
        fields: context of the log lines it writes (pipeline, node, run id).
    """

    def __init__(self, stage: str, rejects: str, fields: dict[str, Any] | None = None) -> None:
        self.stage = stage
        self.rejects = rejects
        self.fields = dict(fields or {})
        self.rejected: int | None = None  # None until a source that skips or quarantines is read
        self.quarantined: list[BadRecord] = []
        self._counted = True
        self._watched: list[tuple[PlanSource, str, str, dict[str, FileOrigin]]] = []

    @contextmanager
    def counting(self, counted: bool) -> Iterator[None]:
        """Reads inside count (and quarantine) their bad records only if ``counted``; they drop them either way.
        For an input that every chunk task of a split stage reads whole: the first task counts its records."""
        previous, self._counted = self._counted, counted
        try:
            yield
        finally:
            self._counted = previous

    def read(
        self, engine: _Engine, source: PlanSource, uri: str, folder: str, origins: dict[str, FileOrigin] | None = None
    ) -> Any:
        """A DataFrame over ``source`` at ``uri``: its location, or a local folder of chunk files.

        Args:
            engine: the task's engine.
            source: the source, with its format, options and policy.
            uri: where to read (remote files are copied into ``folder`` first).
            folder: local scratch space.
            origins: for files that are not the original files (chunks): their origin, by real local path.
        """
        origins = origins or {}
        if source.format not in LINE_FORMATS:
            return engine.read_source(source, uri, folder)
        if source.on_bad_record == "fail":
            self._watched.append((source, uri, folder, origins))
            try:
                return engine.read_source(source, uri, folder)
            except InputError as error:  # an eager read (schema inference, DuckDB's sniffer) met a bad record
                located = self._failure(engine, source, uri, folder, origins)
                if located is None:
                    raise
                raise located from error
        files = _local_files(source, uri, folder, origins)
        found = _find(engine, source, files)
        self.rejected = (self.rejected or 0) + (len(found) if self._counted else 0)
        if source.on_bad_record == "quarantine" and self._counted:
            self.quarantined.extend(record for _, _, record in found)
        if found and self._counted:
            logs.log(
                "bad records rejected",
                severity="WARNING",
                source=source.name,
                policy=source.on_bad_record,
                rejected=len(found),
                first=found[0][2].place(),
                **self.fields,
            )
        checked = _without(files, found, os.path.join(folder, f"checked-{uuid.uuid4().hex[:8]}"))
        return engine.read_source(source, checked, checked)

    def explain(self, engine: _Engine, problem: SparkflowError) -> SparkflowError:
        """``problem``, an engine's bad-record error met while the stage ran, or the error naming the record."""
        for source, uri, folder, origins in self._watched:
            located = self._failure(engine, source, uri, folder, origins)
            if located is not None:
                return located
        return problem

    def commit(self, name: str) -> dict[str, Any]:
        """Manifest fields for what this task rejected (none if no source skips or quarantines); first writes the
        quarantined records to ``<rejects>/<name>.jsonl`` (whole, under a fixed name: a retry rewrites it)."""
        if self.rejected is None:
            return {}
        fields: dict[str, Any] = {"rejected": self.rejected}
        if self.quarantined:
            lines = "".join(
                json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True) + "\n" for record in self.quarantined
            )
            storage.write_file(storage.join(self.rejects, f"{name}.jsonl"), lines.encode())
            fields["rejects"] = self.rejects
        return fields

    def _failure(
        self, engine: _Engine, source: PlanSource, uri: str, folder: str, origins: dict[str, FileOrigin]
    ) -> InputError | None:
        """The error naming the first bad record of a read, or None if there is none (or it cannot be told)."""
        try:
            found = _find(engine, source, _local_files(source, uri, folder, origins))
        except InputError:  # e.g. the files are gone: the engine's own error stands
            return None
        except Exception as error:  # looking is best effort: the engine's own error still stands
            logs.log("bad record not located", severity="WARNING", detail=str(error)[:500], **self.fields)
            return None
        if not found:
            return None
        first = found[0][2]
        schema = source.option("schema")
        shape = f"{source.format} with the schema {schema!r}" if schema else source.format
        count = f"the first of {len(found)} bad records" if len(found) > 1 else "the only bad record"
        return InputError(
            f"stage {self.stage!r}: source {source.name!r} has a bad record at {first.place()}: "
            f"{_shown(first.record)} does not parse as {shape} ({count} in what this task read). Fix the record, "
            'or declare on_bad_record="skip" (drop and count bad records) or "quarantine" (also keep them under '
            f"the run's _rejects/) on sf.source({source.name!r}) at {source.origin}"
        )


def _local_files(
    source: PlanSource, uri: str, folder: str, origins: dict[str, FileOrigin]
) -> list[tuple[str, FileOrigin]]:
    """The local files of ``source`` at ``uri`` (remote ones copied into ``folder``), each with its origin."""
    uris = datasets.source_files(source, uri)
    paths = datasets.local_copy(uris, folder)
    return [
        (path, origins.get(os.path.realpath(path)) or FileOrigin(listed))
        for listed, path in zip(uris, paths, strict=True)
    ]


def _find(engine: _Engine, source: PlanSource, files: list[tuple[str, FileOrigin]]) -> list[tuple[str, int, BadRecord]]:
    """Every bad record of ``files`` as (local path, local line number, record), in file and line order.

    The engine says which records it cannot read (by text); their lines are found here, in the files themselves.
    """
    reported: dict[str, set[str]] = {}
    for path, text in engine.bad_records(source, [path for path, _ in files]):
        reported.setdefault(os.path.realpath(path), set()).add(text.rstrip("\r\n"))
    header = source.format == "csv" and bool(source.option("header", True))
    found: list[tuple[str, int, BadRecord]] = []
    for path, origin in files:
        texts = reported.pop(os.path.realpath(path), None)
        if not texts:
            continue
        shift = origin.shift()
        seen: set[str] = set()
        for line, offset, text in _lines(path, header):
            if text in texts:
                seen.add(text)
                where, at = (line, offset) if shift is None else (None, offset + shift)
                found.append((path, line, BadRecord(source.name, origin.uri, where, at, text)))
        if texts - seen:
            raise InputError(
                f"source {source.name!r}: the {engine.name} engine cannot read a record that is not a line of "
                f"{origin.uri!r}: {_shown(min(texts - seen))}"
            )
    if reported:
        raise InputError(f"source {source.name!r}: the {engine.name} engine names a file it was not given to read")
    return found


def _lines(path: str, header: bool) -> Iterator[tuple[int, int, str]]:
    """(1-based line number, byte offset, text without terminator) of every record line of a local file: blank
    lines (which no reader takes for records) and a CSV header are left out."""
    offset = 0
    with compression.open_decompressed(path) as handle:
        for number, raw in enumerate(handle, 1):
            text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            if text.strip() and not (header and number == 1):
                yield number, offset, text
            offset += len(raw)


def _without(files: list[tuple[str, FileOrigin]], found: list[tuple[str, int, BadRecord]], folder: str) -> str:
    """A local folder holding ``files``, those with bad records copied without those lines (and decompressed)."""
    dropped: dict[str, set[int]] = {}
    for path, line, _ in found:
        dropped.setdefault(path, set()).add(line)
    os.makedirs(folder)
    for index, (path, _) in enumerate(files):
        lines = dropped.get(path)
        name = os.path.basename(path)
        if not lines:
            target = os.path.join(folder, f"{index:05d}-{name}")
            try:
                os.symlink(os.path.abspath(path), target)
            except OSError:
                shutil.copyfile(path, target)
            continue
        target = os.path.join(folder, f"{index:05d}-{compression.stem(name)}")
        with compression.open_decompressed(path) as original, open(target, "wb") as out:
            for number, raw in enumerate(original, 1):
                if number not in lines:
                    out.write(raw)
    return folder


def _shown(record: str) -> str:
    return repr(record if len(record) <= _SHOWN else record[: _SHOWN - 3] + "...")
