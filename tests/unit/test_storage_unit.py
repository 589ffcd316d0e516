"""Store internals without servers: error classification (with the exception
types the real clients raise), retries, scrubbing, URI translation and the
retrying reader."""

from __future__ import annotations

import errno
import io
import pickle
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from gcsfs.retry import HttpError
from s3fs.errors import translate_boto_error

from vecstore.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
)
from vecstore.storage import Store, backend_named, classify, retry, scheme_of, translate_uri
from vecstore.storage import scrub as scrubbing


def _boto(code: str, status: int, op: str = "GetObject") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        op,
    )


def _s3fs(code: str, status: int) -> BaseException:
    """What s3fs raises: the ClientError translated, with the original as cause."""
    err = _boto(code, status)
    try:
        raise translate_boto_error(err) from err
    except BaseException as exc:  # noqa: BLE001 - building a chained exception
        return exc


def _azure(status: int, cls: type[HttpResponseError] = HttpResponseError) -> BaseException:
    exc = cls(message=f"status {status}")
    exc.status_code = status
    return exc


TRANSIENT = [
    _s3fs("ServiceUnavailable", 503),
    _s3fs("SlowDown", 503),
    _s3fs("InternalError", 500),
    _s3fs("ConditionalRequestConflict", 409),
    ConnectionClosedError(endpoint_url="http://x"),
    EndpointConnectionError(endpoint_url="http://x"),
    _azure(503),
    _azure(500),
    ServiceRequestError("Server disconnected"),
    ServiceResponseError("Connection reset"),
    HttpError({"code": 503, "message": "unavailable"}),
    HttpError({"code": 429, "message": "rate"}),
    aiohttp.ServerDisconnectedError(),
    aiohttp.ClientPayloadError("truncated"),
    ConnectionResetError(errno.ECONNRESET, "reset"),
    TimeoutError("timed out"),
]
PERMANENT = [
    FileNotFoundError("k"),
    FileExistsError("k"),
    _s3fs("InvalidRange", 416),
    _azure(400),
    HttpError({"code": 400, "message": "bad"}),
    ValueError("bad argument"),
]
DENIED = [
    _s3fs("AccessDenied", 403),
    _s3fs("InvalidAccessKeyId", 403),
    _azure(403, ClientAuthenticationError),
    _azure(403),
    HttpError({"code": 401, "message": "Unauthorized"}),
    OSError("Forbidden: https://storage.googleapis.com/b/o\nnope"),  # gcsfs 403
    PermissionError("denied"),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors_are_retried(exc: BaseException) -> None:
    assert classify.is_transient(exc)


@pytest.mark.parametrize("exc", PERMANENT + DENIED, ids=lambda e: type(e).__name__)
def test_permanent_errors_are_not_retried(exc: BaseException) -> None:
    assert not classify.is_transient(exc)


@pytest.mark.parametrize("exc", DENIED, ids=lambda e: type(e).__name__)
def test_denied_errors(exc: BaseException) -> None:
    assert classify.is_denied(exc)


@pytest.mark.parametrize(
    "exc",
    [FileExistsError("k"), _s3fs("PreconditionFailed", 412), ResourceExistsError("exists")],
    ids=lambda e: type(e).__name__,
)
def test_lost_conditional_writes(exc: BaseException) -> None:
    assert classify.is_exists(exc)


def test_conditional_request_conflict_is_not_a_lost_write() -> None:
    # S3 answers 409 to a conditional write racing another: retry, then 412 or success.
    assert not classify.is_exists(_s3fs("ConditionalRequestConflict", 409))


# ----------------------------------------------------------------- retries
class Flaky:
    def __init__(self, failures: list[BaseException], result: Any = "ok") -> None:
        self.failures = list(failures)
        self.result = result
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.result


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "RETRY_BASE_DELAY", 0.001)


def test_call_retries_transient_then_succeeds(fast_retries: None) -> None:
    store = Store("memory://unit-retry")
    fn = Flaky([_s3fs("SlowDown", 503), ServiceRequestError("x")])
    assert store._call("read", "k", fn) == "ok"
    assert fn.calls == 3


def test_call_gives_up_after_the_attempts(fast_retries: None) -> None:
    store = Store("memory://unit-retry")
    fn = Flaky([_azure(503)] * 50)
    with pytest.raises(StorageError) as info:
        store._call("read", "k", fn)
    assert fn.calls == retry.RETRY_ATTEMPTS
    assert f"after {retry.RETRY_ATTEMPTS} attempts" in str(info.value)
    assert info.value.context["transient"] is True


def test_call_stops_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "RETRY_DEADLINE", 0.0)
    store = Store("memory://unit-retry")
    fn = Flaky([_azure(503)] * 5)
    with pytest.raises(StorageError):
        store._call("read", "k", fn)
    assert fn.calls == 1


def test_call_maps_errors() -> None:
    store = Store("memory://unit-map")
    with pytest.raises(NotFoundError):
        store._call("read", "k", Flaky([FileNotFoundError("k")]))
    with pytest.raises(AlreadyExistsError):
        store._call("create", "k", Flaky([FileExistsError("k")]))
    with pytest.raises(AccessDeniedError) as info:
        store._call("read", "k", Flaky([_s3fs("AccessDenied", 403)]))
    assert "(AccessDenied)" in str(info.value)
    fn = Flaky([ValueError("bad")])
    with pytest.raises(StorageError):
        store._call("read", "k", fn)
    assert fn.calls == 1


# ----------------------------------------------------------------- secrets
def test_scrub_removes_option_values_and_credential_patterns() -> None:
    opts = {
        "key": "AKIAEXAMPLE",
        "secret": "s3cr3t-value",
        "client_kwargs": {"aws_session_token": "sess-token-value"},
        "connection_string": "AccountName=a;AccountKey=a2V5a2V5a2V5;BlobEndpoint=http://h/a;",
        "token": "anon",
    }
    secrets = tuple(scrubbing.secret_values(opts))
    assert "a2V5a2V5a2V5" in secrets and "anon" not in secrets
    text = (
        "failed with AKIAEXAMPLE s3cr3t-value sess-token-value a2V5a2V5a2V5 "
        "https://a.blob.core.windows.net/c?sv=1&sig=abcdef AccountKey=zzzz;"
    )
    out = scrubbing.scrub(text, secrets)
    for value in (
        "AKIAEXAMPLE",
        "s3cr3t-value",
        "sess-token-value",
        "a2V5a2V5a2V5",
        "abcdef",
        "zzzz",
    ):
        assert value not in out


def test_repr_and_errors_hold_no_options() -> None:
    store = Store("memory://unit-secret/root", {"secret": "hunter2-secret"})
    assert "hunter2" not in repr(store)
    with pytest.raises(StorageError) as info:
        store._call("read", "k", Flaky([ValueError("boom hunter2-secret")]))
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in str(pickle.loads(pickle.dumps(info.value)))


# -------------------------------------------------------------------- URIs
def test_translate_azure_https_keeps_the_callers_options() -> None:
    opts = {"connection_string": "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"}
    uri, out = translate_uri("https://devstoreaccount1.blob.core.windows.net/c/dir/sub", opts)
    assert uri == "az://c/dir/sub"
    assert out == {**opts, "account_name": "devstoreaccount1"}
    assert opts == {"connection_string": "BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;"}
    _, mine = translate_uri("https://acct1.blob.core.windows.net/c", {"account_name": "other"})
    assert mine["account_name"] == "other"
    assert scheme_of("https://acct1.blob.core.windows.net/c") == "azure"


def test_translate_rejects_other_urls_without_quoting_signatures() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        translate_uri("https://acct1.blob.core.windows.net/")
    assert "names no container" in str(info.value)
    with pytest.raises(InvalidArgumentError) as info:
        translate_uri("https://example.com/x?sig=topsecret")
    assert "topsecret" not in str(info.value)


@pytest.mark.parametrize(
    ("kind", "options", "expected"),
    [
        ("s3", {}, None),
        ("s3", {"endpoint_url": "http://127.0.0.1:9000"}, "http://127.0.0.1:9000"),
        ("s3", {"client_kwargs": {"endpoint_url": "http://m:1"}}, "http://m:1"),
        ("gcs", {}, None),
        ("gcs", {"endpoint_url": "https://storage.googleapis.com"}, None),
        ("gcs", {"endpoint_url": "http://127.0.0.1:1"}, "http://127.0.0.1:1"),
        ("azure", {"account_name": "a"}, None),
        (
            "azure",
            {"connection_string": "AccountName=a;BlobEndpoint=http://h:1/a;"},
            "http://h:1/a",
        ),
        (
            "azure",
            {"connection_string": "BlobEndpoint=https://a.blob.core.windows.net/;"},
            None,
        ),
    ],
)
def test_custom_endpoints(
    kind: str, options: dict[str, Any], expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    assert backend_named(kind).endpoint(options) == expected


def test_backend_options_add_defaults_without_overriding() -> None:
    out = backend_named("s3").backend_options({"config_kwargs": {"retries": {"max_attempts": 9}}})
    assert out["config_kwargs"]["retries"] == {"max_attempts": 9}
    assert out["use_listings_cache"] is False
    assert backend_named("s3").backend_options({})["config_kwargs"]["retries"]["total_max_attempts"] == 1
    assert backend_named("memory").backend_options({}) == {}


# ---------------------------------------------------------- retrying reader
class _FlakyFile(io.BytesIO):
    fail_next = 2

    def read(self, n: int | None = -1) -> bytes:
        if _FlakyFile.fail_next:
            _FlakyFile.fail_next -= 1
            raise ConnectionResetError(errno.ECONNRESET, "reset by peer")
        return super().read(n)


def test_open_input_retries_reads(fast_retries: None, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store("memory://unit-reader/root")
    data = bytes(range(200))
    store.write_bytes("f", data)
    opened: list[int] = []

    def flaky_open(path: str, mode: str = "rb", **_: Any) -> _FlakyFile:
        opened.append(1)
        f = _FlakyFile(data)
        f.size = len(data)  # type: ignore[attr-defined]
        return f

    monkeypatch.setattr(store.fs, "open", flaky_open)
    _FlakyFile.fail_next = 2
    with store.open_input("f") as f:
        f.seek(50)
        assert f.read(10) == data[50:60]
        assert f.tell() == 60
        assert f.read() == data[60:]
        assert f.read() == b""
    assert len(opened) == 3  # the first open, then one reopen per failed read


# ---------------------------------------------------------------- registry
def test_one_registry_picks_each_backend() -> None:
    from vecstore.storage import BACKENDS, backend_for

    assert [cls.name for cls in BACKENDS] == ["local", "memory", "s3", "gcs", "azure"]
    for uri, name in [
        ("/tmp/x", "LocalStore"),
        ("file:///tmp/x", "LocalStore"),
        ("memory://b/x", "MemoryStore"),
        ("s3://b/x", "S3Store"),
        ("s3a://b/x", "S3Store"),
        ("gs://b/x", "GCSStore"),
        ("gcs://b/x", "GCSStore"),
        ("az://c/x", "AzureStore"),
        ("abfs://c/x", "AzureStore"),
        ("abfss://c/x", "AzureStore"),
        ("https://acct1.blob.core.windows.net/c/x", "AzureStore"),
        ("hdfs://host/x", "FsspecStore"),
    ]:
        assert backend_for(uri).__name__ == name, uri
    assert [scheme_of(u) for u in ("/x", "memory://b", "gs://b", "hdfs://h/x")] == [
        "local",
        "memory",
        "gcs",
        "hdfs",
    ]
    assert type(Store("memory://unit-registry/x")).__name__ == "MemoryStore"


def test_anonymous_options_per_backend() -> None:
    from vecstore.integrations import anonymous_options

    assert anonymous_options("s3", {"endpoint_url": "e"}) == {"endpoint_url": "e", "anon": True}
    assert anonymous_options("gcs") == {"token": "anon"}
    assert anonymous_options("azure") == {"anon": True}
    assert anonymous_options("local", {"x": 1}) == {"x": 1}
    assert anonymous_options("s3", {"anon": False}) == {"anon": False}


def test_no_module_outside_storage_branches_on_the_backend_kind() -> None:
    """Callers ask a capability (is_remote, has_directories, has_buckets,
    local_path); only vecstore/storage/ knows the backends by kind."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    kind_of_store = re.compile(r"\b(store|source|src)\.kind\b")
    kind_literal = re.compile(r"""kind\s*(==|!=|in|not in)\s*\(?["'](local|memory)["']""")
    offenders = []
    for folder in ("vecstore", "schemas", "pipelines"):
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith(("vecstore/storage/", "vecstore/schemas/", "vecstore/pipelines/")):
                continue  # the storage package itself; the symlinked folders are scanned once
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if kind_of_store.search(line) or kind_literal.search(line):
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


class _Counting(Store):
    """A wrapper subclass of the interface (as tests and tools write them)."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        super().__init__(uri, storage_options)
        self.reads = 0

    def read_bytes(self, key: str) -> bytes:
        self.reads += 1
        return super().read_bytes(key)


def test_a_subclass_of_the_interface_runs_on_the_uris_backend(tmp_path: Any) -> None:
    from vecstore.storage.local import LocalStore
    from vecstore.storage.memory import MemoryStore

    for uri, backend in [("memory://unit-wrap/x", MemoryStore), (str(tmp_path), LocalStore)]:
        store = _Counting(uri)
        assert isinstance(store, _Counting) and isinstance(store, backend)
        store.put_if_absent("k", b"v")  # the backend's atomic way
        with pytest.raises(AlreadyExistsError):
            store.put_if_absent("k", b"w")
        assert store.read_bytes("k") == b"v" and store.reads == 1
        assert type(_Counting(uri)) is type(store)  # one combined class per backend
    assert _Counting(str(tmp_path)).local_path("k") == str(tmp_path / "k")


def test_local_walk_lists_what_fsspec_lists(tmp_path: Path) -> None:
    """LocalStore.walk_file_infos (os.scandir) gives the keys, sizes and
    mtimes of fsspec's walk (Store.walk_file_infos), links included: the
    mtime makes a file's listed version, which the load history keeps."""
    import os

    from vecstore.storage.base import Store as Base

    for rel in ("a/1.parquet", "a/b/2.parquet", "a/b/c/3", ".hidden/4", "top"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x" * len(rel))
    (tmp_path / "empty" / "x").mkdir(parents=True)
    os.utime(tmp_path / "a" / "1.parquet", (1_000_000, 1_000_000))  # links get other times
    os.symlink(tmp_path / "a" / "1.parquet", tmp_path / "link.parquet")
    os.symlink(tmp_path / "a" / "b", tmp_path / "dirlink")
    os.symlink(tmp_path / "missing", tmp_path / "broken.parquet")

    def walk(s: Store, prefix: str, base: bool) -> list[tuple[str, int, float]]:
        got = Base.walk_file_infos(s, prefix) if base else s.walk_file_infos(prefix)
        return [(k, int(i["size"]), float(i["mtime"])) for k, i in got]

    store = Store(str(tmp_path))
    for prefix in ("", "a", "a/b", "dirlink", "link.parquet", "top", "nothing"):
        assert walk(store, prefix, False) == walk(store, prefix, True), prefix
    keys = [k for k, _, _ in walk(store, "", False)]
    assert keys == sorted(keys) and "a/b/c/3" in keys and ".hidden/4" in keys
    assert ("link.parquet", 11) in [(k, s) for k, s, _ in walk(store, "", False)]
    single = Store(str(tmp_path / "top"))
    assert [k for k, _, _ in walk(single, "", False)] == [""]
    assert walk(Store(str(tmp_path / "nothing")), "", False) == []


@pytest.mark.parametrize("noreplace", [True, False], ids=["renameat2", "hard-link"])
def test_local_writes_create_folders_on_demand_and_leave_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noreplace: bool
) -> None:
    """The local store creates a folder only when a write finds it missing;
    ``write_new`` creates a fresh data file in place and refuses an existing
    one; ``put_if_absent`` (by a rename that refuses to replace, or a hard
    link where that is missing) writes once, refuses the second writer and
    leaves no temporary file either way."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from vecstore.storage import local

    if not noreplace:
        monkeypatch.setattr(local, "_renameat2", None)
    elif local._renameat2 is None:
        pytest.skip("no renameat2 here")
    store = Store(str(tmp_path))

    store.write_new("ns/data/a.parquet", b"segment")
    assert (tmp_path / "ns/data/a.parquet").read_bytes() == b"segment"
    with pytest.raises(AlreadyExistsError):
        store.write_new("ns/data/a.parquet", b"other")
    assert store.read_bytes("ns/data/a.parquet") == b"segment"

    store.write_bytes("ns/x/y/z.json", b"1")
    store.write_bytes("ns/x/y/z.json", b"2")  # overwrite: last writer wins
    assert store.read_bytes("ns/x/y/z.json") == b"2"

    # concurrent creators of one key: exactly one wins, the others conflict
    def put(i: int) -> bool:
        try:
            store.put_if_absent("ns/_manifests/1.json", str(i).encode())
        except AlreadyExistsError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(put, range(8)))
    won = [i for i, ok in enumerate(outcomes) if ok]
    lost = [i for i, ok in enumerate(outcomes) if not ok]
    assert len(won) == 1 and len(lost) == 7
    assert store.read_bytes("ns/_manifests/1.json") == str(won[0]).encode()
    left = [f for _, _, files in os.walk(tmp_path) for f in files if f.endswith(".tmp")]
    assert left == []

    # a failed write leaves no partial file behind
    class Boom(Exception):
        pass

    real_open = open

    class _Failing:
        def __init__(self, f: Any) -> None:
            self.f = f

        def __enter__(self) -> _Failing:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def write(self, data: bytes) -> int:
            self.f.write(data[:3])
            raise Boom

    monkeypatch.setattr(local, "open", lambda p, m: _Failing(real_open(p, m)), raising=False)
    with pytest.raises(StorageError, match="b.parquet"):
        store.write_new("ns/data/b.parquet", b"segment")
    assert not (tmp_path / "ns/data/b.parquet").exists()


def test_local_read_bytes_whole_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LocalStore.read_bytes reads through the file descriptor: empty, small
    and large files whole, short reads continued, errors as before."""
    import os

    store = Store(str(tmp_path))
    data = os.urandom(3 * 2**20 + 7)
    for name, body in (("empty", b""), ("small", b"x" * 10), ("large", data)):
        (tmp_path / name).write_bytes(body)
        assert store.read_bytes(name) == body
    real = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: real(fd, min(n, 1000)))  # short reads
    assert store.read_bytes("large") == data
    monkeypatch.undo()
    with pytest.raises(NotFoundError):
        store.read_bytes("missing")
    (tmp_path / "folder").mkdir()
    with pytest.raises(Exception, match="folder"):
        store.read_bytes("folder")
