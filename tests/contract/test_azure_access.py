"""Public and private containers on Azurite: anonymous reads work on public
ones and are refused with AccessDeniedError (never quoting a key) on private
ones. Azurite enforces anonymous access like Azure does; moto and the GCS
emulator do not check credentials at all."""

from __future__ import annotations

import base64

import pytest
from servers import AZURITE_ACCOUNT, AZURITE_KEY, Emulator, azurite_connection_string, unique_name

from vecstore.errors import AccessDeniedError, NotFoundError
from vecstore.storage import Store


def _seed(server: Emulator, public: str | None) -> str:
    name = unique_name("acc")
    server.create_bucket(name, public=public)
    keyed = Store(server.uri(name, "dir"), server.options())
    keyed.write_bytes("ns/a.parquet", b"aaaa")
    keyed.write_bytes("ns/b.parquet", b"bb")
    return name


def _anon(server: Emulator, container: str) -> Store:
    # adlfs builds https://{account_host} from account_host, so the emulator
    # (plain http) is reached through a connection string with no key.
    return Store(f"az://{container}/dir", server.anon_options())


def test_anon_options_carry_no_credentials(azure_server: Emulator) -> None:
    opts = azure_server.anon_options()
    assert opts["anon"] is True
    assert opts["account_name"] == AZURITE_ACCOUNT
    assert "AccountKey" not in opts["connection_string"]


def test_public_container_reads_anonymously(azure_server: Emulator) -> None:
    name = _seed(azure_server, public="container")
    anon = _anon(azure_server, name)
    assert anon.read_bytes("ns/a.parquet") == b"aaaa"
    assert anon.read_range("ns/a.parquet", 1, 3) == b"aa"
    assert anon.exists("ns/b.parquet")
    assert sorted(anon.ls("ns")) == ["ns/a.parquet", "ns/b.parquet"]
    assert anon.walk_files() == [("ns/a.parquet", 4), ("ns/b.parquet", 2)]
    with anon.open_input("ns/b.parquet") as f:
        assert f.read() == b"bb"
    with pytest.raises(NotFoundError):
        anon.read_bytes("ns/missing.parquet")


def test_public_container_refuses_anonymous_writes(azure_server: Emulator) -> None:
    name = _seed(azure_server, public="container")
    anon = _anon(azure_server, name)
    with pytest.raises(AccessDeniedError):
        anon.write_bytes("ns/c.parquet", b"c")
    with pytest.raises(AccessDeniedError):
        anon.put_if_absent("ns/d.parquet", b"d")


def test_blob_level_public_reads_blobs_but_not_listings(azure_server: Emulator) -> None:
    name = _seed(azure_server, public="blob")
    anon = _anon(azure_server, name)
    assert anon.read_bytes("ns/a.parquet") == b"aaaa"
    with pytest.raises(AccessDeniedError):
        anon.ls("ns")


def test_private_container_refuses_anonymous_access(azure_server: Emulator) -> None:
    name = _seed(azure_server, public=None)
    anon = _anon(azure_server, name)
    for call in (
        lambda: anon.read_bytes("ns/a.parquet"),
        lambda: anon.exists("ns/a.parquet"),
        lambda: anon.ls("ns"),
        lambda: anon.walk_files(),
        lambda: anon.open_input("ns/a.parquet"),
    ):
        with pytest.raises(AccessDeniedError) as info:
            call()
        message = str(info.value)
        assert f"az://{name}/dir" in message
        assert "anonymous access was refused" in message
        assert AZURITE_KEY not in message
        assert not info.value.context.get("transient", False)


def test_private_container_through_https_form(azure_server: Emulator) -> None:
    name = _seed(azure_server, public=None)
    uri = f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{name}/dir"
    keyed = Store(uri, azure_server.options())
    assert keyed.read_bytes("ns/a.parquet") == b"aaaa"
    anon = Store(uri, azure_server.anon_options())
    with pytest.raises(AccessDeniedError) as info:
        anon.read_bytes("ns/a.parquet")
    assert uri in str(info.value)


def test_wrong_key_is_access_denied_without_the_key(azure_server: Emulator) -> None:
    name = _seed(azure_server, public=None)
    wrong = base64.b64encode(b"vecstore-wrong-key-0123456789abcdef").decode()
    store = Store(
        f"az://{name}/dir",
        {
            "account_name": AZURITE_ACCOUNT,
            "connection_string": azurite_connection_string(azure_server.endpoint, key=wrong),
        },
    )
    with pytest.raises(AccessDeniedError) as info:
        store.read_bytes("ns/a.parquet")
    message = str(info.value)
    assert "AuthenticationFailed" in message or "AuthorizationFailure" in message
    assert wrong not in message and wrong not in repr(store)
    assert "check the storage integration" in message
