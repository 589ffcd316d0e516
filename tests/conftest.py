"""Shared fixtures: real storage emulators and per-test stores.

Servers (session scope, started on first use, stopped at the end):

    s3_server, gcs_server, azure_server -> servers.Emulator
        .endpoint, .options() (fresh dict with credentials + endpoint),
        .anon_options(), .uri(bucket, path), .create_bucket(name, public=...)

Per test (function scope, a fresh uniquely named bucket / container):

    s3_bucket, gcs_bucket, azure_container -> servers.Bucket
        .name, .server, .uri(path), .options(**extra), .store(path="root", **extra)
    s3_store, gcs_store, azure_store, memory_store, local_store -> vecstore Store
    any_store -> a Store, parametrized over memory, local, s3, gcs, azure

    fault_proxy -> factory: fault_proxy(server, fail_rate=..., drop_rate=..., seed=...)
        returns a started faultproxy.FaultProxy in front of that server.

Helpers live in ``tests/servers.py`` and ``tests/faultproxy.py`` (import them
as ``servers`` / ``faultproxy``; tests/ is on sys.path once this conftest is
loaded); do not import from ``conftest``.

Tests that use an S3, GCS or Azure fixture get the ``s3``, ``gcs`` or
``azure`` marker, so ``pytest -m "not azure"`` deselects them. Every fsspec
filesystem here is created with ``skip_instance_cache=True``.
"""

from __future__ import annotations

import os

# Before anything imports gcsfs (and inherited by Dask workers started later):
# otherwise each gcsfs call against the emulator hangs 60 s on a gRPC probe.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

import contextlib  # noqa: E402
import logging  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
from servers import (  # noqa: E402
    Bucket,
    Emulator,
    ServerError,
    run_azurite,
    run_gcs_emulator,
    run_moto,
    unique_name,
)

from vecstore.storage import Store  # noqa: E402

logging.getLogger("werkzeug").setLevel(logging.ERROR)

_KIND_MARKERS = {
    "s3_server": "s3",
    "gcs_server": "gcs",
    "azure_server": "azure",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that (directly or not) uses an emulator by its kind."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, marker in _KIND_MARKERS.items():
            if fixture in names and marker not in {m.name for m in item.iter_markers()}:
                item.add_marker(getattr(pytest.mark, marker))


# ------------------------------------------------------------------ servers
@contextlib.contextmanager
def _starting(name: str) -> Iterator[None]:
    try:
        yield
    except ServerError as exc:
        pytest.fail(f"could not start {name}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Emulator]:
    """moto's S3 server (in this process)."""
    with _starting("moto"), run_moto() as server:
        yield server


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[Emulator]:
    """gcp-storage-emulator (a subprocess)."""
    with _starting("gcp-storage-emulator"), run_gcs_emulator() as server:
        yield server


@pytest.fixture(scope="session")
def azure_server() -> Iterator[Emulator]:
    """Azurite's blob service (a subprocess); fails with a hint if not installed."""
    with _starting("Azurite"), run_azurite() as server:
        yield server


# ------------------------------------------------------------------ buckets
@pytest.fixture
def s3_bucket(s3_server: Emulator) -> Bucket:
    name = unique_name("s3")
    s3_server.create_bucket(name)
    return Bucket(s3_server, name)


@pytest.fixture
def gcs_bucket(gcs_server: Emulator) -> Bucket:
    name = unique_name("gcs")
    gcs_server.create_bucket(name)
    return Bucket(gcs_server, name)


@pytest.fixture
def azure_container(azure_server: Emulator) -> Bucket:
    """A private container (no anonymous access)."""
    name = unique_name("az")
    azure_server.create_bucket(name)
    return Bucket(azure_server, name)


# ------------------------------------------------------------------- stores
@pytest.fixture
def s3_store(s3_bucket: Bucket) -> Store:
    return s3_bucket.store()


@pytest.fixture
def gcs_store(gcs_bucket: Bucket) -> Store:
    return gcs_bucket.store()


@pytest.fixture
def azure_store(azure_container: Bucket) -> Store:
    return azure_container.store()


@pytest.fixture
def memory_store() -> Iterator[Store]:
    store = Store(f"memory://{unique_name('mem')}/root")
    try:
        yield store
    finally:
        with contextlib.suppress(Exception):
            store.fs.rm(store.root.rsplit("/", 1)[0], recursive=True)


@pytest.fixture
def local_store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "store"))


STORE_KINDS = ("memory", "local", "s3", "gcs", "azure")


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("local"),
        pytest.param("s3", marks=pytest.mark.s3),
        pytest.param("gcs", marks=pytest.mark.gcs),
        pytest.param("azure", marks=pytest.mark.azure),
    ]
)
def any_store(request: pytest.FixtureRequest) -> Store:
    """A fresh Store on each of the five backends."""
    store: Store = request.getfixturevalue(f"{request.param}_store")
    return store


# -------------------------------------------------------------------- faults
@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """Factory: a started FaultProxy in front of an emulator, stopped after the test."""
    started: list[FaultProxy] = []

    def make(server: Emulator, **kwargs: Any) -> FaultProxy:
        upstream = f"http://{server.host}:{server.port}"
        proxy = FaultProxy(upstream, **kwargs).start()
        started.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in started:
            proxy.stop()
