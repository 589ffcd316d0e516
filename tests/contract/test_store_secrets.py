"""Credentials never leak: not in error messages or their pickles, not in
reprs, not in logs (DEBUG included),
whatever goes wrong (refused key, private container, missing object,
outage)."""

from __future__ import annotations

import base64
import logging
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from faultproxy import FaultProxy
from servers import AZURITE_ACCOUNT, Bucket, Emulator, azurite_connection_string

from vecstore.errors import (
    AccessDeniedError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    VecstoreError,
)
from vecstore.storage import Store, retry

SECRET = "vecstoreFAKEsecret7f3c9a"
AZURE_SECRET = base64.b64encode(f"{SECRET}-azure-account-key".encode()).decode()


def _provoke(call: Callable[[], Any], kind: type[VecstoreError]) -> VecstoreError:
    with pytest.raises(kind) as info:
        call()
    return info.value


def _assert_clean(*objects: Any, text: str = "") -> None:
    for obj in objects:
        # A Store pickles with its options by design (that is how it reaches
        # a Dask worker); an error must not carry them anywhere.
        shows = (
            (str(obj), repr(obj), pickle.dumps(obj))
            if isinstance(obj, Exception)
            else (
                str(obj),
                repr(obj),
            )
        )
        for shown in shows:
            raw = shown if isinstance(shown, bytes) else shown.encode()
            assert SECRET.encode() not in raw, shown
            assert AZURE_SECRET.encode() not in raw, shown
        if isinstance(obj, VecstoreError):
            assert SECRET not in repr(obj.context) and AZURE_SECRET not in repr(obj.context)
    assert SECRET not in text
    assert AZURE_SECRET not in text


def test_secrets_never_appear(
    s3_bucket: Bucket,
    azure_container: Bucket,
    azure_server: Emulator,
    fault_proxy: Callable[..., FaultProxy],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(retry, "RETRY_BASE_DELAY", 0.01)  # the bound is tested elsewhere
    found: list[Any] = []

    # S3 with a secret key: a missing object, then an outage.
    s3 = s3_bucket.store(secret=SECRET)
    s3.write_bytes("k", b"v")
    found.append(s3)
    found.append(_provoke(lambda: s3.read_bytes("missing"), NotFoundError))
    proxy = fault_proxy(s3_bucket.server, fail_rate=0.5, drop_rate=0.5)
    s3_down = Store(
        s3_bucket.uri("root"), s3_bucket.server.options_via(proxy.endpoint, secret=SECRET)
    )
    found.append(s3_down)
    found.append(_provoke(lambda: s3_down.read_bytes("k"), StorageError))

    # Azure with a wrong account key: refused.
    wrong = {
        "account_name": AZURITE_ACCOUNT,
        "connection_string": azurite_connection_string(azure_server.endpoint, key=AZURE_SECRET),
    }
    for uri in (
        azure_container.uri("dir"),
        f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{azure_container.name}/dir",
    ):
        az = Store(uri, wrong)
        found.append(az)
        found.append(_provoke(lambda az=az: az.read_bytes("k"), AccessDeniedError))
        found.append(_provoke(lambda az=az: az.ls(""), AccessDeniedError))
        found.append(_provoke(lambda az=az: az.write_bytes("k", b"v"), AccessDeniedError))
        found.append(_provoke(lambda az=az: az.put_if_absent("k", b"v"), AccessDeniedError))
        found.append(_provoke(lambda az=az: az.open_input("k"), AccessDeniedError))

    # Azure with the right key: a missing object.
    ok = azure_container.store()
    found.append(_provoke(lambda: ok.read_bytes("missing"), NotFoundError))

    # A SAS token in an unsupported URL, and a URL the Store cannot open.
    found.append(
        _provoke(
            lambda: Store(f"https://example.com/c/d?sv=2024&sig={SECRET}"), InvalidArgumentError
        )
    )
    found.append(
        _provoke(
            lambda: Store("az://c/d", {"account_key": AZURE_SECRET}),
            InvalidArgumentError,
        )
    )

    _assert_clean(*found, text=caplog.text)
    assert "vecstore.storage" in caplog.text  # the retries were logged, cleanly
