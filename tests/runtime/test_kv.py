"""The KV store: every backend round-trips the same values, refuses the same values, and fails clearly.

SQLite runs for real; DynamoDB runs on moto in-process; Firestore runs on a fake client injected into the
backend (a faithful stand-in that enforces Firestore's document id rules) and, when the Firestore emulator
from the Google Cloud CLI is on this machine, on the emulator through the real google-cloud-firestore client.
"""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparkflow.errors import DefinitionError, EnvironmentProblem, InputError, SparkflowError, StorageError
from sparkflow.layout import value_key
from sparkflow.runtime.kv import (
    MAX_VALUE_BYTES,
    DynamoDBKV,
    FirestoreKV,
    JSONValue,
    KVStore,
    KVValueError,
    SQLiteKV,
    firestore_document_id,
    open_kv,
)

KEY = value_key("wordcount", "run-1", "total")

VALUES: list[JSONValue] = [
    0,
    -1,
    2**70,
    3.14,
    1.0,
    1e-300,
    0.1 + 0.2,
    True,
    False,
    None,
    "",
    "héllo ✓ 日本語 🚀",
    [],
    {},
    [1, [2, {"a": None}], "x"],
    {"nested": {"f": 1.5, "l": [True, "x", None]}, "ü": -0.0, "count": 42},
]


def _same(left: JSONValue, right: JSONValue) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True would hide a lossy backend)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, float) and isinstance(right, float):
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    return left == right


# --- a fake Firestore client -------------------------------------------------------------------------------


class FakeSnapshot:
    def __init__(self, data: dict[str, Any] | None) -> None:
        self.exists = data is not None
        self._data = data

    def to_dict(self) -> dict[str, Any] | None:
        return dict(self._data) if self._data is not None else None


class FakeDocument:
    def __init__(self, store: dict[tuple[str, str], dict[str, Any]], collection: str, document_id: str) -> None:
        # Firestore's document id rules (https://cloud.google.com/firestore/quotas): the real client would
        # silently nest a '/' into a sub-path, so the fake refuses it outright.
        assert "/" not in document_id, f"document id {document_id!r} contains '/'"
        assert document_id not in (".", ".."), f"document id {document_id!r} is reserved"
        assert not (document_id.startswith("__") and document_id.endswith("__")), f"{document_id!r} is reserved"
        assert len(document_id.encode()) <= 1500, "document id longer than 1500 bytes"
        self._store, self._where = store, (collection, document_id)

    def set(self, document_data: dict[str, Any], merge: bool = False) -> None:
        assert not merge, "a value must replace the document, not merge into it"
        self._store[self._where] = dict(document_data)

    def get(self) -> FakeSnapshot:
        return FakeSnapshot(self._store.get(self._where))


class FakeCollection:
    def __init__(self, store: dict[tuple[str, str], dict[str, Any]], name: str) -> None:
        self._store, self._name = store, name

    def document(self, document_id: str) -> FakeDocument:
        return FakeDocument(self._store, self._name, document_id)


class FakeFirestore:
    """The slice of ``google.cloud.firestore.Client`` the backend uses, keeping documents in a dict."""

    def __init__(self) -> None:
        self.documents: dict[tuple[str, str], dict[str, Any]] = {}
        self.closed = False

    def collection(self, name: str) -> FakeCollection:
        return FakeCollection(self.documents, name)

    def close(self) -> None:
        self.closed = True


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's in-process AWS with a KV table; yields a DynamoDB client."""
    from moto import mock_aws

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        import boto3

        client = boto3.client("dynamodb")
        client.create_table(
            TableName="sparkflow-values",
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client
        client.close()


@pytest.fixture(params=["sqlite", "dynamodb", "firestore-fake"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    """Each backend in turn, so the shared behaviour is proved on all of them."""
    opened: KVStore
    if request.param == "sqlite":
        opened = open_kv(f"sqlite://{tmp_path}/kv.db")
    elif request.param == "dynamodb":
        request.getfixturevalue("aws")
        opened = open_kv("dynamodb://sparkflow-values")
    else:
        opened = FirestoreKV("values", client=FakeFirestore())
    yield opened
    opened.close()


# --- behaviour shared by every backend ---------------------------------------------------------------------


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_values_round_trip_exactly(store: KVStore, value: JSONValue) -> None:
    store.put(KEY, value)
    assert _same(store.get(KEY), value)


def test_put_again_is_idempotent_and_a_new_value_overwrites(store: KVStore) -> None:
    store.put(KEY, {"words": 41})
    store.put(KEY, {"words": 41})
    assert store.get(KEY) == {"words": 41}
    store.put(KEY, [1, 2])
    assert store.get(KEY) == [1, 2]
    other = value_key("wordcount", "run-2", "total")
    store.put(other, "elsewhere")
    assert store.get(KEY) == [1, 2], "keys that share a prefix must not collide"


def test_a_missing_key_names_the_stage_that_should_have_produced_it(store: KVStore) -> None:
    store.put(value_key("wordcount", "run-1", "other"), 1)
    with pytest.raises(InputError, match=r"no value under key 'wordcount/run-1/total'.*stage 'total'.*run 'run-1'"):
        store.get(KEY)
    with pytest.raises(InputError, match="the run may be incomplete"):
        store.get(KEY)


def test_a_value_at_the_limit_fits_every_backend_and_one_byte_more_is_refused(store: KVStore) -> None:
    at_limit = "x" * (MAX_VALUE_BYTES - 2)  # the two quotes make it exactly MAX_VALUE_BYTES of JSON
    store.put(KEY, at_limit)
    assert store.get(KEY) == at_limit
    with pytest.raises(SparkflowError, match=r"stage 'total'.*358,401 bytes.*limit of 358,400.*return a DataFrame"):
        store.put(KEY, at_limit + "x")
    assert store.get(KEY) == at_limit, "a refused value must leave the stored one alone"


def test_the_limit_counts_utf8_bytes_not_characters(store: KVStore) -> None:
    with pytest.raises(KVValueError, match="return a DataFrame"):
        store.put(KEY, "é" * (MAX_VALUE_BYTES // 2))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal("1.5"), r"stage 'total'.*value is a decimal\.Decimal.*return a number, string, bool, list or dict"),
        (date(2024, 1, 1), r"value is a datetime\.date.*or a DataFrame"),
        ((1, 2), r"value is a builtins\.tuple"),
        ({1, 2}, r"value is a builtins\.set"),
        ({"a": [1, Decimal(2)]}, r"value\['a'\]\[1\] is a decimal\.Decimal"),
        ({1: "one"}, r"value has a key 1 of type int: JSON object keys are strings"),
        (float("nan"), r"value is nan, which JSON cannot represent"),
        ([float("inf")], r"value\[0\] is inf, which JSON cannot represent"),
    ],
    ids=["decimal", "date", "tuple", "set", "nested", "int-key", "nan", "inf"],
)
def test_values_that_are_not_plain_json_are_refused(store: KVStore, value: Any, message: str) -> None:
    with pytest.raises(SparkflowError, match=message):
        store.put(KEY, value)
    with pytest.raises(InputError):
        store.get(KEY)


# --- SQLite ------------------------------------------------------------------------------------------------


def test_sqlite_creates_missing_folders_and_keeps_values_across_opens(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "kv.db"
    first = open_kv(f"sqlite://{path}")
    first.put(KEY, {"x": 1})
    first.close()
    assert path.is_file()
    second = open_kv(f"sqlite://{path}")
    assert second.get(KEY) == {"x": 1}


def test_sqlite_uses_wal_mode(tmp_path: Path) -> None:
    import sqlite3

    SQLiteKV(tmp_path / "kv.db").put(KEY, 1)
    connection = sqlite3.connect(tmp_path / "kv.db")
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        connection.close()


def test_sqlite_concurrent_writers_in_threads_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "kv.db"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(worker: int) -> None:
        try:
            start.wait()
            kv = SQLiteKV(path)  # every thread creates the file and table at once, too
            for index in range(25):
                kv.put(value_key("p", "r", f"w{worker}-{index}"), {"worker": worker, "index": index})
                kv.put(value_key("p", "r", "shared"), worker)  # same key from everyone: last write wins
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    kv = SQLiteKV(path)
    for worker in range(8):
        for index in range(25):
            assert kv.get(value_key("p", "r", f"w{worker}-{index}")) == {"worker": worker, "index": index}
    assert kv.get(value_key("p", "r", "shared")) in range(8)


def test_sqlite_file_that_cannot_be_created_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match=r"cannot create the KV store file .*file/kv\.db"):
        open_kv(f"sqlite://{blocker}/kv.db")


def test_sqlite_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "kv.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match=r"KV store file .*kv\.db.* cannot be used"):
        SQLiteKV(path)


# --- open_kv -----------------------------------------------------------------------------------------------


def test_sqlite_uri_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = tmp_path / "abs.db"
    open_kv(f"sqlite://{absolute}").put(KEY, "three slashes")  # f"sqlite://{/abs}" == "sqlite:///abs"
    assert open_kv(f"sqlite:///{absolute}").get(KEY) == "three slashes", "sqlite:////abs is the same file"
    monkeypatch.chdir(tmp_path)
    open_kv("sqlite://rel/kv.db").put(KEY, "relative")
    assert (tmp_path / "rel" / "kv.db").is_file()
    default = tmp_path / "run" / "_kv.sqlite"
    open_kv(None, default_sqlite_path=str(default)).put(KEY, "default")
    assert open_kv("sqlite://", default_sqlite_path=str(default)).get(KEY) == "default"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("mysql://db", r"'mysql://db' is not a KV store URI: use sqlite:///abs/path\.db .*dynamodb://table-name"),
        ("kv.db", r"not a KV store URI: .*firestore://collection"),
        ("dynamodb://", r"does not name a DynamoDB table: write dynamodb://table-name"),
        ("dynamodb://ab", "3 to 255 letters"),
        ("dynamodb://my table", "does not name a DynamoDB table"),
        ("firestore://", "does not name a Firestore collection"),
        ("firestore://collection/document", "does not name a Firestore collection"),
        ("sqlite://", "names no SQLite file and there is no default here"),
        (None, "names no SQLite file"),
    ],
)
def test_open_kv_refuses_bad_uris(uri: str | None, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        open_kv(uri)


def test_importing_the_kv_module_imports_no_backend() -> None:
    code = (
        "import sys, sparkflow.runtime.kv\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'sqlite3', 'google.cloud.firestore') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- DynamoDB ----------------------------------------------------------------------------------------------


def test_dynamodb_stores_json_text_under_the_documented_attributes(aws: Any) -> None:
    open_kv("dynamodb://sparkflow-values").put(KEY, {"b": 1, "a": "é"})
    item = aws.get_item(TableName="sparkflow-values", Key={"key": {"S": KEY}})["Item"]
    assert item == {"key": {"S": KEY}, "value": {"S": '{"a":"é","b":1}'}}


def test_dynamodb_reads_are_consistent(aws: Any) -> None:
    calls: list[dict[str, Any]] = []

    class Recording:
        def put_item(self, **arguments: Any) -> Any:
            return aws.put_item(**arguments)

        def get_item(self, **arguments: Any) -> Any:
            calls.append(arguments)
            return aws.get_item(**arguments)

    kv = DynamoDBKV("sparkflow-values", client=Recording())
    kv.put(KEY, 7)
    assert kv.get(KEY) == 7
    assert calls == [{"TableName": "sparkflow-values", "Key": {"key": {"S": KEY}}, "ConsistentRead": True}]
    kv.close()  # an injected client belongs to its owner: Recording has no close() and must not be asked


def test_dynamodb_missing_table_says_how_to_create_it(aws: Any) -> None:
    kv = open_kv("dynamodb://no-such-table")
    with pytest.raises(StorageError, match=r"table 'no-such-table' .*does not exist.*string partition key 'key'"):
        kv.put(KEY, 1)
    with pytest.raises(StorageError, match="does not exist"):
        kv.get(KEY)


def test_dynamodb_item_not_written_by_sparkflow(aws: Any) -> None:
    aws.put_item(TableName="sparkflow-values", Item={"key": {"S": KEY}, "value": {"N": "1"}})
    with pytest.raises(InputError, match="has no string attribute 'value'"):
        open_kv("dynamodb://sparkflow-values").get(KEY)


def test_dynamodb_honours_the_endpoint_variable(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on port 9 (discard): the error proves the client went where the variable says.
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    kv = open_kv("dynamodb://sparkflow-values")
    with pytest.raises(StorageError, match=r"DynamoDB GetItem .*127\.0\.0\.1:9"):
        kv.get(KEY)
    kv.close()


def test_dynamodb_without_a_region_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with pytest.raises(EnvironmentProblem, match="needs an AWS region: set AWS_REGION"):
        open_kv("dynamodb://sparkflow-values")


# --- Firestore ---------------------------------------------------------------------------------------------


def test_firestore_stores_json_text_in_one_document_per_key() -> None:
    client = FakeFirestore()
    kv = FirestoreKV("values", client=client)
    kv.put(KEY, {"b": 1, "a": "é"})
    assert client.documents == {("values", "wordcount%2Frun-1%2Ftotal"): {"value": '{"a":"é","b":1}'}}
    kv.close()
    assert not client.closed, "an injected client belongs to its owner"


def test_firestore_document_not_written_by_sparkflow() -> None:
    client = FakeFirestore()
    client.documents[("values", firestore_document_id(KEY))] = {"count": 1}
    with pytest.raises(InputError, match="has no string field 'value'"):
        FirestoreKV("values", client=client).get(KEY)


@pytest.mark.parametrize("key", [".", "..", "__name__", "a/b", "100%/x", "é/日本"])
def test_firestore_document_ids_follow_firestores_rules(key: str) -> None:
    kv = FirestoreKV("values", client=FakeFirestore())  # the fake asserts the id rules
    kv.put(key, key)
    assert kv.get(key) == key


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=80))
def test_firestore_document_ids_are_reversible_so_keys_never_collide(key: str) -> None:
    document_id = firestore_document_id(key)
    assert unquote(document_id) == key
    assert "/" not in document_id
    assert document_id not in (".", "..")
    assert not (document_id.startswith("__") and document_id.endswith("__"))


def test_firestore_without_the_client_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.cloud.firestore", None)  # makes the import fail
    with pytest.raises(EnvironmentProblem, match=r"needs google-cloud-firestore: pip install 'sparkflow\[gcp\]'"):
        open_kv("firestore://values")


def _firestore_emulator_jar() -> Path | None:
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        return None
    jar = (
        Path(gcloud).resolve().parent.parent / "platform" / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
    )
    return jar if jar.is_file() else None


@pytest.fixture(scope="module")
def firestore_emulator() -> Iterator[str]:
    """The Firestore emulator of the Google Cloud CLI on a free port; skips where it is not installed."""
    jar = _firestore_emulator_jar()
    if jar is None:
        pytest.fail("the Firestore emulator (Debian package google-cloud-cli-firestore-emulator) and java are needed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host = f"127.0.0.1:{port}"
    main = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
    command = ["java", "-Xmx256m", "-Duser.language=en", "-cp", str(jar), main, "start", "--host", "127.0.0.1"]
    process = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://{host}/", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Firestore emulator did not start (exit code {process.poll()})")
                time.sleep(0.5)
        yield host
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_firestore_against_the_emulator(firestore_emulator: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "sparkflow-test")
    kv = open_kv("firestore://values")
    try:
        for value in VALUES:
            kv.put(KEY, value)
            assert _same(kv.get(KEY), value)
        kv.put(value_key("p", "r", "__n__"), {"ok": True})
        assert kv.get(value_key("p", "r", "__n__")) == {"ok": True}
        with pytest.raises(InputError, match=r"no value under key 'wordcount/run-1/missing'.*stage 'missing'"):
            kv.get(value_key("wordcount", "run-1", "missing"))
        with pytest.raises(KVValueError, match="return a DataFrame"):
            kv.put(KEY, "x" * MAX_VALUE_BYTES)
        at_limit = "x" * (MAX_VALUE_BYTES - 2)
        kv.put(KEY, at_limit)
        assert kv.get(KEY) == at_limit
    finally:
        kv.close()
