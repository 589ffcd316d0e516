"""The Store contract, run against every backend on a real server.

``StoreContract`` holds the tests; each ``Test*`` class below binds its
``store`` fixture to one backend (memory, local, moto S3, the GCS emulator,
Azurite). A new backend gets the whole suite by adding one subclass.
"""

from __future__ import annotations

import io
import pickle
import threading
import uuid
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from servers import AZURITE_ACCOUNT, Bucket

from vecstore.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    NotFoundError,
    VecstoreError,
)
from vecstore.storage import Store

DATA = bytes(range(256)) * 5  # 1280 bytes, every byte value


def _populate(store: Store) -> None:
    store.write_bytes("d/x.bin", b"xx")
    store.write_bytes("d/y.bin", b"yyy")
    store.write_bytes("d/sub/z.bin", b"z")
    store.write_bytes("dd/keep.bin", b"keep")
    store.write_bytes("top.bin", b"top!")


class StoreContract:
    """What every Store backend promises."""

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError

    # ------------------------------------------------------------ bytes
    def test_write_then_read_bytes(self, store: Store) -> None:
        store.write_bytes("a/b/c.bin", DATA)
        assert store.read_bytes("a/b/c.bin") == DATA
        store.write_bytes("a/b/c.bin", b"second")  # overwrite: last writer wins
        assert store.read_bytes("a/b/c.bin") == b"second"
        store.write_bytes("empty.bin", b"")
        assert store.read_bytes("empty.bin") == b""
        assert store.size("empty.bin") == 0

    def test_read_range(self, store: Store) -> None:
        store.write_bytes("r.bin", DATA)
        assert store.read_range("r.bin", 10, 20) == DATA[10:20]
        assert store.read_range("r.bin", 0, len(DATA)) == DATA
        assert store.read_range("r.bin", len(DATA) - 8, len(DATA)) == DATA[-8:]
        assert store.read_range("r.bin", 5, 5) == b""

    def test_exists_size_isdir(self, store: Store) -> None:
        _populate(store)
        assert store.exists("d/x.bin")
        assert not store.exists("d/nope.bin")
        assert not store.exists("nope/nope.bin")
        assert store.size("d/y.bin") == 3
        assert store.isdir("d")
        assert store.isdir("d/sub")
        assert not store.isdir("d/x.bin")
        assert not store.isdir("nope")

    # --------------------------------------------------------- listings
    def test_ls_lists_direct_children_with_directories(self, store: Store) -> None:
        _populate(store)
        assert sorted(store.ls("d")) == ["d/sub", "d/x.bin", "d/y.bin"]
        assert sorted(store.ls("d/")) == ["d/sub", "d/x.bin", "d/y.bin"]
        assert sorted(store.ls("")) == ["d", "dd", "top.bin"]
        assert store.ls("d/sub") == ["d/sub/z.bin"]
        assert store.ls("missing") == []
        detail = {e["key"]: e for e in store.ls("d", detail=True)}
        assert detail["d/sub"]["type"] == "directory"
        assert detail["d/x.bin"]["type"] == "file"
        assert detail["d/x.bin"]["size"] == 2

    def test_ls_sees_writes_and_deletes_at_once(self, store: Store) -> None:
        store.write_bytes("l/a", b"1")
        assert store.ls("l") == ["l/a"]
        store.write_bytes("l/b", b"2")
        assert sorted(store.ls("l")) == ["l/a", "l/b"]
        store.delete("l/a")
        assert store.ls("l") == ["l/b"]

    def test_walk_files_recursive_sorted_with_sizes(self, store: Store) -> None:
        _populate(store)
        assert store.walk_files("d") == [("d/sub/z.bin", 1), ("d/x.bin", 2), ("d/y.bin", 3)]
        assert store.walk_files() == [
            ("d/sub/z.bin", 1),
            ("d/x.bin", 2),
            ("d/y.bin", 3),
            ("dd/keep.bin", 4),
            ("top.bin", 4),
        ]
        assert store.walk_files("missing") == []

    # -------------------------------------------------------- deleting
    def test_delete(self, store: Store) -> None:
        store.write_bytes("del/a", b"1")
        store.delete("del/a")
        assert not store.exists("del/a")
        store.delete("del/a")  # missing is fine
        store.delete("never/was")

    def test_delete_prefix_removes_only_that_prefix(self, store: Store) -> None:
        _populate(store)
        store.delete_prefix("d")
        assert store.walk_files() == [("dd/keep.bin", 4), ("top.bin", 4)]
        assert sorted(store.ls("")) == ["dd", "top.bin"]
        store.delete_prefix("d")  # missing is fine
        with pytest.raises(InvalidArgumentError):
            store.delete_prefix("")
        with pytest.raises(InvalidArgumentError):
            store.delete_prefix("/")

    # ---------------------------------------------------------- streams
    def test_open_output_then_open_input(self, store: Store) -> None:
        with store.open_output("s/out.bin") as f:
            f.write(DATA[:100])
            f.write(DATA[100:])
        assert store.read_bytes("s/out.bin") == DATA
        with store.open_input("s/out.bin") as f:
            assert f.read(10) == DATA[:10]
            assert f.tell() == 10
            f.seek(-6, io.SEEK_END)
            assert f.read() == DATA[-6:]
            f.seek(300)
            assert f.read(5) == DATA[300:305]
            f.seek(0)
            assert f.read() == DATA

    def test_open_output_failure_writes_nothing(self, store: Store) -> None:
        store.write_bytes("s/kept.bin", b"old")
        with pytest.raises(RuntimeError), store.open_output("s/kept.bin") as f:
            f.write(b"partial")
            raise RuntimeError("writer failed")
        with pytest.raises(RuntimeError), store.open_output("s/new.bin") as f:
            f.write(b"partial")
            raise RuntimeError("writer failed")
        assert store.read_bytes("s/kept.bin") == b"old"
        assert not store.exists("s/new.bin")

    def test_parquet_round_trip_through_streams(self, store: Store) -> None:
        table = pa.table({"id": [str(i) for i in range(1000)], "v": list(range(1000))})
        with store.open_output("p/t.parquet") as f:
            pq.write_table(table, f, row_group_size=100)
        with store.open_input("p/t.parquet") as f:
            pf = pq.ParquetFile(f)
            assert pf.metadata.num_row_groups == 10
            assert pf.read(columns=["v"]).column("v").to_pylist() == list(range(1000))

    # ---------------------------------------------------- put_if_absent
    def test_put_if_absent_first_wins(self, store: Store) -> None:
        store.put_if_absent("m/000001.json", b"first")
        with pytest.raises(AlreadyExistsError) as info:
            store.put_if_absent("m/000001.json", b"second")
        assert "m/000001.json" in str(info.value)
        assert store.read_bytes("m/000001.json") == b"first"
        store.put_if_absent("m/000002.json", b"next")  # another key is free
        assert store.read_bytes("m/000002.json") == b"next"

    def test_put_if_absent_same_bytes_twice_still_conflicts(self, store: Store) -> None:
        store.put_if_absent("m/same", b"identical")
        with pytest.raises(AlreadyExistsError):
            store.put_if_absent("m/same", b"identical")

    def test_put_if_absent_over_existing_object(self, store: Store) -> None:
        store.write_bytes("m/plain", b"written")
        with pytest.raises(AlreadyExistsError):
            store.put_if_absent("m/plain", b"other")
        assert store.read_bytes("m/plain") == b"written"

    def test_put_if_absent_threads_race_exactly_one_wins(self, store: Store) -> None:
        n = 8
        barrier = threading.Barrier(n)
        results: list[Any] = [None] * n
        # Half the writers share one Store (one client), half another: a
        # pickled copy, as a Dask worker would get it.
        copy = pickle.loads(pickle.dumps(store))
        stores = [store if i % 2 else copy for i in range(n)]

        def writer(i: int) -> None:
            barrier.wait()
            try:
                stores[i].put_if_absent("race/key", f"writer-{i}".encode())
                results[i] = "won"
            except AlreadyExistsError:
                results[i] = "lost"
            except Exception as exc:  # reported below
                results[i] = exc

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert all(r in ("won", "lost") for r in results), results
        winners = [i for i, r in enumerate(results) if r == "won"]
        assert len(winners) == 1, results
        assert store.read_bytes("race/key") == f"writer-{winners[0]}".encode()

    # ---------------------------------------------------- capabilities
    #: (backend class name, is_remote, has_buckets, has a local path)
    capabilities: tuple[str, bool, bool, bool]

    def test_backend_and_capabilities(self, store: Store) -> None:
        name, remote, buckets, local = self.capabilities
        assert (type(store).__name__, store.is_remote, store.has_buckets) == (name, remote, buckets)
        assert type(pickle.loads(pickle.dumps(store))) is type(store)
        assert type(store.child("sub")) is type(store)
        store.write_bytes("cap/k.bin", b"on disk")
        path = store.local_path("cap/k.bin")
        assert (path is not None) == local
        if path is not None:
            with open(path, "rb") as f:
                assert f.read() == b"on disk"

    # ------------------------------------------------ identity, errors
    def test_pickle_round_trip_reads_the_same_data(self, store: Store) -> None:
        store.write_bytes("p/k", b"pickled")
        copy = pickle.loads(pickle.dumps(store))
        assert copy == store
        assert copy.uri == store.uri
        assert copy.read_bytes("p/k") == b"pickled"
        copy.write_bytes("p/k2", b"from copy")
        assert store.read_bytes("p/k2") == b"from copy"

    def test_repr_and_url_hold_no_option_values(self, store: Store) -> None:
        text = repr(store) + store.url("k") + str(pickle.loads(pickle.dumps(store)))
        for value in _secret_like(store.storage_options):
            assert value not in text

    def test_missing_keys_raise_not_found(self, store: Store) -> None:
        for call in (
            lambda: store.read_bytes("missing/key"),
            lambda: store.read_range("missing/key", 0, 4),
            lambda: store.size("missing/key"),
            lambda: store.open_input("missing/key"),
        ):
            with pytest.raises(NotFoundError) as info:
                call()
            assert isinstance(info.value, VecstoreError)
            assert isinstance(info.value, KeyError)
            assert "missing/key" in str(info.value)

    def test_child_store_shares_the_data(self, store: Store) -> None:
        store.write_bytes("c/inner/k", b"v")
        child = store.child("c")
        assert child.read_bytes("inner/k") == b"v"
        assert child.ls("") == ["inner"]
        assert child.url("inner/k") == store.url("c/inner/k")


def _secret_like(options: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in options.items():
        if isinstance(v, dict):
            out.extend(_secret_like(v))
        elif k in ("key", "secret", "connection_string", "account_key") and isinstance(v, str):
            out.append(v)
    return out


class TestMemoryStore(StoreContract):
    capabilities = ("MemoryStore", False, False, False)
    @pytest.fixture
    def store(self, memory_store: Store) -> Store:
        return memory_store


class TestLocalStore(StoreContract):
    capabilities = ("LocalStore", False, False, True)
    @pytest.fixture
    def store(self, local_store: Store) -> Store:
        return local_store


class TestS3Store(StoreContract):
    capabilities = ("S3Store", True, True, False)
    @pytest.fixture
    def store(self, s3_store: Store) -> Store:
        return s3_store


class TestGCSStore(StoreContract):
    capabilities = ("GCSStore", True, True, False)
    @pytest.fixture
    def store(self, gcs_store: Store) -> Store:
        return gcs_store


class TestAzureStore(StoreContract):
    capabilities = ("AzureStore", True, True, False)
    @pytest.fixture
    def store(self, azure_store: Store) -> Store:
        return azure_store


class TestAzureHttpsStore(StoreContract):
    """Pinecone's form https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR,
    with a connection string that points adlfs at Azurite."""
    capabilities = ("AzureStore", True, True, False)

    @pytest.fixture
    def store(self, azure_container: Bucket) -> Store:
        uri = f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{azure_container.name}/dir"
        return Store(uri, azure_container.options())

    def test_https_form_is_the_az_location(self, store: Store, azure_container: Bucket) -> None:
        assert store.kind == "azure"
        assert store.url("k").startswith("https://devstoreaccount1.blob.core.windows.net/")
        assert store.storage_options == azure_container.options()  # caller's options kept
        store.write_bytes("k", b"via https")
        az = Store(azure_container.uri("dir"), azure_container.options())
        assert az.read_bytes("k") == b"via https"


class _GenericMemoryFS(MemoryFileSystem):
    """fsspec's memory filesystem under a scheme no backend claims, with its
    own state: a stand-in for "any other fsspec filesystem"."""

    protocol = ("vsgeneric",)
    store: dict[str, Any] = {}  # fsspec keeps state on the class
    pseudo_dirs = [""]

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, str) and path.startswith("vsgeneric://"):
            path = "memory://" + path[len("vsgeneric://") :]
        return super()._strip_protocol(path)


class TestFsspecStore(StoreContract):
    """The generic backend (a URL scheme no backend claims)."""

    capabilities = ("FsspecStore", True, False, False)

    @pytest.fixture
    def store(self) -> Store:
        fsspec.register_implementation("vsgeneric", _GenericMemoryFS, clobber=True)
        store = Store(f"vsgeneric://{uuid.uuid4().hex}/root")
        assert store.kind == "vsgeneric"
        return store


def test_any_store_fixture_gives_a_fresh_store_per_backend(any_store: Store) -> None:
    assert any_store.kind in ("memory", "local", "s3", "gcs", "azure")
    assert any_store.walk_files() == []
    any_store.write_bytes("k", b"v")
    assert pickle.loads(pickle.dumps(any_store)).read_bytes("k") == b"v"
