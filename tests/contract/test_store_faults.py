"""Transient faults between the Store and a real server, injected by
``faultproxy.FaultProxy``: 5xx answers, connections dropped before the server
sees the request, and responses lost after it acted on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faultproxy import FaultProxy
from servers import Emulator, unique_name

from vecstore.errors import AlreadyExistsError, StorageError
from vecstore.storage import Store

ProxyFactory = Callable[..., FaultProxy]
BACKENDS = [
    pytest.param("s3", marks=pytest.mark.s3),
    pytest.param("gcs", marks=pytest.mark.gcs),
    pytest.param("azure", marks=pytest.mark.azure),
]
# gcsfs retries internally on a fixed schedule (1, 2, 4, 8, 16 s): keep its
# fault rate lower so the suite stays fast; S3 and Azure take the full 20 %.
RATES = {
    "s3": {"fail_rate": 0.1, "drop_rate": 0.05, "lose_rate": 0.05},
    "azure": {"fail_rate": 0.1, "drop_rate": 0.05, "lose_rate": 0.05},
    "gcs": {"fail_rate": 0.04, "drop_rate": 0.02, "lose_rate": 0.02},
}


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Emulator:
    emulator: Emulator = request.getfixturevalue(f"{request.param}_server")
    return emulator


def _proxied_store(server: Emulator, proxy: FaultProxy) -> Store:
    name = unique_name("flt")
    server.create_bucket(name)  # directly, not through the proxy
    return Store(server.uri(name, "root"), server.options_via(proxy.endpoint))


def _exercise(store: Store) -> None:
    """The contract operations, end to end."""
    data = bytes(range(256)) * 8
    store.write_bytes("d/a.bin", data)
    assert store.read_bytes("d/a.bin") == data
    assert store.read_range("d/a.bin", 100, 200) == data[100:200]
    assert store.exists("d/a.bin")
    assert not store.exists("d/none.bin")
    assert store.size("d/a.bin") == len(data)
    store.write_bytes("d/sub/b.bin", b"b")
    assert sorted(store.ls("d")) == ["d/a.bin", "d/sub"]
    assert store.walk_files("d") == [("d/a.bin", len(data)), ("d/sub/b.bin", 1)]
    table = pa.table({"v": list(range(500))})
    with store.open_output("p/t.parquet") as f:
        pq.write_table(table, f, row_group_size=50)
    with store.open_input("p/t.parquet") as f:
        assert pq.ParquetFile(f).read().column("v").to_pylist() == list(range(500))
    store.put_if_absent("m/1.json", b"one")
    with pytest.raises(AlreadyExistsError):
        store.put_if_absent("m/1.json", b"uno")
    assert store.read_bytes("m/1.json") == b"one"
    store.delete("d/a.bin")
    assert not store.exists("d/a.bin")
    store.delete_prefix("d")
    assert store.walk_files() == [("m/1.json", 3), ("p/t.parquet", store.size("p/t.parquet"))]


@pytest.mark.parametrize("server", BACKENDS, indirect=True)
def test_contract_operations_survive_transient_faults(
    server: Emulator, fault_proxy: ProxyFactory
) -> None:
    proxy = fault_proxy(server, seed=7, **RATES[server.kind])
    store = _proxied_store(server, proxy)
    _exercise(store)
    assert proxy.faults() > 0, proxy.stats
    assert proxy.stats["forward"] > 0


@pytest.mark.parametrize("server", BACKENDS, indirect=True)
def test_a_lost_put_if_absent_response_is_not_a_conflict(
    server: Emulator, fault_proxy: ProxyFactory
) -> None:
    """The server stores the object but the client never hears back: the
    retry finds the object with its own put id, so the call succeeds."""
    proxy = fault_proxy(server)
    store = _proxied_store(server, proxy)
    store.put_if_absent("m/warmup", b"w")  # probes the server once
    write = "POST" if server.kind == "gcs" else "PUT"
    proxy.should_fault = lambda method, path: method == write
    proxy.add_plan(["lose"])
    store.put_if_absent("m/0001.json", b"mine")
    assert proxy.stats["lose"] == 1
    assert store.read_bytes("m/0001.json") == b"mine"
    proxy.should_fault = None
    with pytest.raises(AlreadyExistsError):
        store.put_if_absent("m/0001.json", b"theirs")


def _outage(server: Emulator, fault_proxy: ProxyFactory) -> tuple[Store, FaultProxy]:
    proxy = fault_proxy(server, seed=3)
    store = _proxied_store(server, proxy)
    store.write_bytes("k", b"v")
    proxy.set_rates(fail_rate=0.5, drop_rate=0.25, lose_rate=0.25)  # every request fails
    return store, proxy


def _assert_bounded_failure(call: Callable[[], Any], store: Store, limit: float) -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        call()
    elapsed = time.monotonic() - started
    assert elapsed < limit, f"took {elapsed:.1f} s"
    message = str(info.value)
    assert store.url() in message
    assert "attempts" in message
    for value in ("testing", "AccountKey", "Eby8vdM02x"):
        assert value not in message
    assert info.value.context.get("transient") is True


@pytest.mark.parametrize(
    "server",
    [pytest.param("s3", marks=pytest.mark.s3), pytest.param("azure", marks=pytest.mark.azure)],
    indirect=True,
)
def test_total_outage_fails_within_bounded_time(
    server: Emulator, fault_proxy: ProxyFactory
) -> None:
    store, proxy = _outage(server, fault_proxy)
    _assert_bounded_failure(lambda: store.read_bytes("k"), store, 30.0)
    assert proxy.stats["forward"] == 0 or proxy.stats["lose"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("server", [pytest.param("gcs", marks=pytest.mark.gcs)], indirect=True)
def test_total_outage_on_gcs_fails_after_gcsfs_retries(
    server: Emulator, fault_proxy: ProxyFactory
) -> None:
    """gcsfs retries for ~30 s on its own (not configurable); the Store adds
    no retries on top once its deadline has passed."""
    store, _ = _outage(server, fault_proxy)
    started = time.monotonic()
    with pytest.raises(StorageError):
        store.read_bytes("k")
    assert time.monotonic() - started < 60.0
