"""The KV store: where a stage's small value (a count, a threshold, a dict) waits for the stages that use it.

A stage may return a small value instead of a DataFrame. The runtime stores it under
:func:`sparkflow.layout.value_key` and downstream stages read it back as a parameter. One small interface,
:class:`KVStore`, has three backends picked by the pipeline's ``kv=`` URI (see :func:`open_kv`):

* ``sqlite:///abs/path.db`` or ``sqlite://relative/path.db`` — a local file (the local run's default);
* ``dynamodb://table`` — a DynamoDB table with a string partition key ``key`` and an attribute ``value``;
* ``firestore://collection`` — one Firestore document per key, with a field ``value``.

Every backend stores the value as the same canonical JSON text, so a value reads back identically whichever
backend kept it (floats, nested dicts, unicode), and the same checks (JSON types only, size limit) apply
everywhere: a pipeline that works locally does not fail on DynamoDB for a reason SQLite never checked.

Writes are plain overwrites with no condition: a retried task recomputes the same value and simply puts
it again, so ``put`` is idempotent by construction.

Importing this module is cheap: sqlite3, boto3 and google-cloud-firestore are imported only by the backend
that needs them, when it is opened (the runtime is imported inside every function, on every cold start).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from urllib.parse import quote

from sparkflow.errors import DefinitionError, EnvironmentProblem, InputError, SparkflowError, StorageError

if TYPE_CHECKING:
    import sqlite3

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
"""What a stage may return instead of a DataFrame (and what :meth:`KVStore.get` gives back)."""

# DynamoDB caps an item (key, attribute names and values) at 400 KB, where 1 KB = 1024 bytes:
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html#limits-items
# Firestore caps a document at 1 MiB: https://cloud.google.com/firestore/quotas#collections_documents_and_fields
# One limit for every backend, below the smaller of the two with room for the key and attribute names, so a
# value that works locally works in the cloud too. Values this big belong in a DataFrame anyway.
MAX_VALUE_BYTES = 350 * 1024

# DynamoDB allows partition keys of up to 2048 bytes (same DynamoDB page, "Partition keys and sort keys");
# Firestore allows document ids of up to 1500 bytes, and the id encoding below may grow a key, so keys are
# held to 1024 bytes everywhere. Keys from value_key() are far shorter.
MAX_KEY_BYTES = 1024

SCHEMES = ("sqlite", "dynamodb", "firestore")
_FORMS = "sqlite:///abs/path.db (or sqlite://relative/path.db), dynamodb://table-name or firestore://collection"

# DynamoDB table names: 3 to 255 characters of a-z, A-Z, 0-9, '_', '-', '.' (Constraints page, "Naming rules").
_DYNAMODB_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")


class KVValueError(SparkflowError, ValueError):
    """A stage's value cannot go into the KV store: it is not plain JSON, or it is too large."""


class KVStore(Protocol):
    """Where small values live between stages, keyed by :func:`sparkflow.layout.value_key`.

    Implementations must round-trip every :data:`JSONValue` exactly, overwrite on a second ``put`` of the
    same key (retried tasks put again), and read their own writes (a downstream stage starts right after
    the upstream one finished).
    """

    def put(self, key: str, value: JSONValue) -> None:
        """Store ``value`` under ``key``, replacing whatever was there."""
        ...

    def get(self, key: str) -> JSONValue:
        """The value under ``key``; raises :class:`~sparkflow.errors.InputError` when there is none."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


def open_kv(uri: str | None, *, default_sqlite_path: str | None = None) -> KVStore:
    """Open the KV store that ``uri`` names.

    Args:
        uri: ``sqlite:///abs/path.db`` (three slashes: an absolute path, as in ``file:///``),
            ``sqlite://relative/path.db`` (relative to the working directory), ``dynamodb://table-name``
            or ``firestore://collection``. ``None`` or a bare ``sqlite://`` means ``default_sqlite_path``.
        default_sqlite_path: the SQLite file to use when the pipeline declared no ``kv=``; the local run
            passes a file under the run's folder.

    Raises:
        DefinitionError: the URI has an unknown scheme or lacks a table/collection name.
        EnvironmentProblem: the backend's client library is not installed or not configured.

    Example:
        >>> store = open_kv("sqlite:///tmp/sparkflow-doc/kv.db")
        >>> store.put("wordcount/run-1/total", {"words": 42})
        >>> store.get("wordcount/run-1/total")
        {'words': 42}
    """
    if uri is None:
        return SQLiteKV(_default_path(default_sqlite_path, uri))
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in SCHEMES:
        raise DefinitionError(f"kv={uri!r} is not a KV store URI: use {_FORMS}")
    if scheme == "sqlite":
        if not rest:
            return SQLiteKV(_default_path(default_sqlite_path, uri))
        # sqlite:////abs/path.db (SQLAlchemy's absolute form) means the same as sqlite:///abs/path.db.
        return SQLiteKV("/" + rest.lstrip("/") if rest.startswith("/") else rest)
    name = rest.strip("/")
    if scheme == "dynamodb":
        if not _DYNAMODB_TABLE.fullmatch(name):
            raise DefinitionError(
                f"kv={uri!r} does not name a DynamoDB table: write dynamodb://table-name, where the name has "
                "3 to 255 letters, digits, '_', '-' or '.'"
            )
        return DynamoDBKV(name)
    if not name or name.count("/") % 2:
        raise DefinitionError(
            f"kv={uri!r} does not name a Firestore collection: write firestore://collection "
            "(or firestore://collection/document/subcollection)"
        )
    return FirestoreKV(name)


def _default_path(default_sqlite_path: str | None, uri: str | None) -> str:
    if default_sqlite_path is None:
        raise DefinitionError(f"kv={uri!r} names no SQLite file and there is no default here: use {_FORMS}")
    return default_sqlite_path


def encode_value(key: str, value: object) -> str:
    """``value`` as the canonical JSON text every backend stores, after checking it is plain and small.

    Canonical (sorted keys, no spaces) so that putting the same value twice writes the same bytes.
    Only exact JSON types pass: a tuple would come back as a list and an int dict key as a string, so
    they are refused rather than silently changed; NaN and infinities are not JSON at all.
    """
    _check_plain(key, value, "value")
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    size = len(text.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise KVValueError(
            f"{_whose(key)} value is {size:,} bytes as JSON, more than the KV store's limit of "
            f"{MAX_VALUE_BYTES:,} bytes (DynamoDB keeps at most 400 KB per item): return a DataFrame instead, "
            "which travels through storage and has no size limit"
        )
    return text


def decode_value(key: str, text: str) -> JSONValue:
    """The value stored as ``text`` under ``key``; a corrupt entry is an :class:`InputError` naming the key."""
    try:
        value: JSONValue = json.loads(text)
    except (TypeError, ValueError) as err:
        raise InputError(f"the KV store entry {key!r} is not valid JSON ({err}): rerun {_whose(key)} stage") from err
    return value


def _check_plain(key: str, value: object, path: str) -> None:
    """Refuse anything but exact JSON types, naming where inside the value the offender sits."""
    if value is None or type(value) in (bool, int, str):
        return
    if type(value) is float:
        if not math.isfinite(value):
            raise KVValueError(
                f"{_whose(key)} {path} is {value!r}, which JSON cannot represent: return None or a string instead"
            )
        return
    if type(value) is list:
        for index, item in enumerate(value):
            _check_plain(key, item, f"{path}[{index}]")
        return
    if type(value) is dict:
        for name, item in value.items():
            if type(name) is not str:
                raise KVValueError(
                    f"{_whose(key)} {path} has a key {name!r} of type {type(name).__name__}: JSON object keys are "
                    "strings, so use str keys"
                )
            _check_plain(key, item, f"{path}[{name!r}]")
        return
    raise KVValueError(
        f"{_whose(key)} {path} is a {type(value).__module__}.{type(value).__qualname__}, which the KV store cannot "
        "keep: return a number, string, bool, list or dict (convert it, e.g. float(x) or str(x)) — or a DataFrame"
    )


def _whose(key: str) -> str:
    """``stage 'node' of run 'id'`` for keys made by value_key(), else the key itself; for messages."""
    parts = key.split("/")
    if len(parts) == 3 and all(parts):
        return f"stage {parts[2]!r} (pipeline {parts[0]!r}, run {parts[1]!r})"
    return f"the key {key!r}"


def _missing(key: str, where: str) -> InputError:
    return InputError(
        f"no value under key {key!r} in {where}: {_whose(key)} should have stored it; it has not finished, or "
        "it failed, so the run may be incomplete (rerun it, or resume the run)"
    )


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not key:
        raise KVValueError(f"a KV store key must be a non-empty string, got {key!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise KVValueError(f"the KV store key {key[:60]!r}... is longer than {MAX_KEY_BYTES} bytes: use shorter names")


class SQLiteKV:
    """A KV store in one local SQLite file: the local run's default, and what tests use.

    Several threads and processes may write different keys at once (the local executor runs independent
    stages concurrently), so every call opens its own connection (sqlite3 connections must not be shared
    across threads) in WAL mode (readers do not block the writer) and waits up to ``timeout`` seconds for a
    lock instead of failing with "database is locked".

    Args:
        path: the database file; its folder is created if missing.
        timeout: seconds to wait for another writer's lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:
                self._use_wal(connection)
                connection.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        except OSError as err:
            raise StorageError(f"cannot create the KV store file {str(self.path)!r}: {err}") from err

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        """Put the file in WAL mode (a property of the file: set once, it holds for every later connection).

        Processes and threads that create the store at once race for the lock the switch needs, and SQLite answers
        the loser "database is locked" at once, without waiting as it does for writes: so try again until timeout.
        """
        import sqlite3

        deadline = time.monotonic() + self.timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def put(self, key: str, value: JSONValue) -> None:
        _check_key(key)
        text = encode_value(key, value)
        with self._connect() as connection:
            connection.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, text),
            )

    def get(self, key: str) -> JSONValue:
        _check_key(key)
        with self._connect() as connection:
            row = connection.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise _missing(key, f"the SQLite KV store {str(self.path)!r}")
        return decode_value(key, row[0])

    def close(self) -> None:
        """Nothing to release: connections live for one call."""

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One connection for one call: commits (or rolls back) and closes; SQLite errors name the file.

        (``sqlite3.Connection`` as a context manager only commits, it never closes: one leaked handle per call.)
        """
        import sqlite3

        try:
            connection = sqlite3.connect(self.path, timeout=self.timeout)
            try:
                with connection:
                    yield connection
            finally:
                connection.close()
        except sqlite3.Error as err:
            raise StorageError(f"the KV store file {str(self.path)!r} cannot be used: {err}") from err


class DynamoDBKV:
    """A KV store in a DynamoDB table with a string partition key ``key`` and an attribute ``value``.

    The table is created by the deployment, not here (a function's role should not be allowed to create
    tables). ``PutItem`` has no condition, so a retried task overwrites its own value; ``GetItem`` reads
    with ``ConsistentRead`` so a stage sees a value its upstream stage wrote a moment ago. boto3 honours
    ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_DYNAMODB`` by itself, which is how LocalStack or moto are used.

    Args:
        table: the table name.
        client: a boto3 DynamoDB client to use instead of creating one (its owner closes it).
    """

    def __init__(self, table: str, *, client: Any = None) -> None:
        self.table = table
        self._owns_client = client is None
        self._client = client if client is not None else _dynamodb_client()

    def put(self, key: str, value: JSONValue) -> None:
        _check_key(key)
        text = encode_value(key, value)
        self._call(self._client.put_item, "PutItem", key, Item={"key": {"S": key}, "value": {"S": text}})

    def get(self, key: str) -> JSONValue:
        _check_key(key)
        answer = self._call(self._client.get_item, "GetItem", key, Key={"key": {"S": key}}, ConsistentRead=True)
        item = answer.get("Item")
        if item is None:
            raise _missing(key, f"the DynamoDB table {self.table!r}")
        stored = item.get("value", {}).get("S")
        if stored is None:
            raise InputError(
                f"the DynamoDB item {key!r} in table {self.table!r} has no string attribute 'value': "
                "was it written by sparkflow?"
            )
        return decode_value(key, stored)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _call(self, method: Callable[..., Any], operation: str, key: str, **arguments: Any) -> Mapping[str, Any]:
        """Run one DynamoDB operation; its errors become :class:`StorageError` that say what to fix."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer: Mapping[str, Any] = method(TableName=self.table, **arguments)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                raise StorageError(
                    f"the DynamoDB table {self.table!r} of the KV store does not exist (in this account and "
                    "region): create it with a string partition key 'key', or fix the pipeline's kv="
                ) from err
            raise StorageError(f"DynamoDB {operation} of {key!r} in table {self.table!r} failed: {err}") from err
        except BotoCoreError as err:
            raise StorageError(f"DynamoDB {operation} of {key!r} in table {self.table!r} failed: {err}") from err
        return answer


def _dynamodb_client() -> Any:
    try:
        import boto3
        from botocore.exceptions import NoRegionError
    except ImportError as err:
        raise EnvironmentProblem("kv=dynamodb://... needs boto3: pip install boto3") from err
    try:
        return boto3.client("dynamodb")
    except NoRegionError as err:
        raise EnvironmentProblem(
            "kv=dynamodb://... needs an AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)"
        ) from err


class FirestoreKV:
    """A KV store in a Firestore collection: one document per key, holding the JSON text in field ``value``.

    Firestore document ids cannot contain ``/`` (and cannot be ``.``, ``..`` or look like ``__x__``), while
    keys look like ``pipeline/run/node``; :func:`firestore_document_id` percent-encodes them reversibly.
    ``set`` without merge replaces the document, so a retried task overwrites its own value, and Firestore
    reads are strongly consistent. The project and credentials come from the environment, as for every
    Google client (``GOOGLE_CLOUD_PROJECT``, Application Default Credentials, ``FIRESTORE_EMULATOR_HOST``).

    Args:
        collection: the collection path.
        client: a ``google.cloud.firestore.Client`` (or anything with its ``collection(...)`` API) to use
            instead of creating one (its owner closes it); tests pass a fake.
    """

    def __init__(self, collection: str, *, client: Any = None) -> None:
        self.collection = collection
        self._owns_client = client is None
        self._client = client if client is not None else _firestore_client()

    def put(self, key: str, value: JSONValue) -> None:
        _check_key(key)
        text = encode_value(key, value)
        document = self._client.collection(self.collection).document(firestore_document_id(key))
        with self._errors("write", key):
            document.set({"value": text})

    def get(self, key: str) -> JSONValue:
        _check_key(key)
        document = self._client.collection(self.collection).document(firestore_document_id(key))
        with self._errors("read", key):
            snapshot = document.get()
        if not snapshot.exists:
            raise _missing(key, f"the Firestore collection {self.collection!r}")
        stored = (snapshot.to_dict() or {}).get("value")
        if not isinstance(stored, str):
            raise InputError(
                f"the Firestore document for {key!r} in collection {self.collection!r} has no string field "
                "'value': was it written by sparkflow?"
            )
        return decode_value(key, stored)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _errors(self, action: str, key: str) -> _FirestoreErrors:
        return _FirestoreErrors(f"Firestore could not {action} {key!r} in collection {self.collection!r}")


class _FirestoreErrors:
    """Turns Google API errors into :class:`StorageError`; other exceptions pass through untouched."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: object) -> None:
        if error is None:
            return
        try:
            from google.api_core.exceptions import GoogleAPIError
        except ImportError:  # an injected client without google-api-core installed
            return
        if isinstance(error, GoogleAPIError):
            raise StorageError(f"{self.what}: {error}") from error


def firestore_document_id(key: str) -> str:
    """A valid Firestore document id for ``key``, distinct for distinct keys.

    Percent-encoding (of everything but letters, digits and ``_.-~``) removes ``/`` and is reversible, so
    two keys never share a document; ``.``, ``..`` and a leading ``__`` (ids matching ``__.*__`` are
    reserved) are encoded too. Rules: https://cloud.google.com/firestore/quotas#collections_documents_and_fields
    """
    encoded = quote(key, safe="")
    if encoded in (".", ".."):
        return encoded.replace(".", "%2E")
    if encoded.startswith("__"):
        return "%5F" + encoded[1:]
    return encoded


def _firestore_client() -> Any:
    try:
        from google.auth.exceptions import GoogleAuthError
        from google.cloud import firestore
    except ImportError as err:
        raise EnvironmentProblem(
            "kv=firestore://... needs google-cloud-firestore: pip install 'sparkflow[gcp]'"
        ) from err
    try:
        return firestore.Client()
    except (GoogleAuthError, OSError) as err:  # OSError: "Project was not passed and could not be determined"
        raise EnvironmentProblem(
            "kv=firestore://... found no Google Cloud project or credentials: set GOOGLE_CLOUD_PROJECT and use "
            f"Application Default Credentials (or FIRESTORE_EMULATOR_HOST for the emulator): {err}"
        ) from err
