"""API keys and projects: off by default; once a project exists every
request needs a valid ``Api-Key`` (401), a read-only key cannot write (403),
each project sees only its own indexes, keys are stored as salted hashes and
never appear in a log, an error body or a stored record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pinecone import ForbiddenError, NotFoundError, ServerlessSpec, UnauthorizedError
from serverutil import Served, create_key, run_cli, serve

from vecstore.server.auth import AuthStore
from vecstore.storage import Store

SPEC = ServerlessSpec(cloud="aws", region="us-east-1")


def test_keys_off_by_default(tmp_path: Path) -> None:
    with serve(tmp_path / "store") as s:
        for key in ("pclocal", "anything", ""):
            r = httpx.get(f"{s.url}/indexes", headers={"Api-Key": key} if key else {})
            assert r.status_code == 200


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    store = tmp_path_factory.mktemp("auth") / "store"
    for project in ("apparel", "electronics"):
        res = run_cli(store, "projects", "create", project, "--description", f"{project} team")
        assert res.returncode == 0, res.stderr
    keys = {
        "apparel-rw": create_key(store, "apparel", "ReadWrite"),
        "apparel-ro": create_key(store, "apparel", "ReadOnly"),
        "electronics-rw": create_key(store, "electronics"),
    }
    with serve(store) as s:
        yield {"server": s, "keys": keys, "store": store}


def test_unauthenticated(keyed: dict[str, Any]) -> None:
    s: Served = keyed["server"]
    r = httpx.get(f"{s.url}/indexes")
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"
    good = keyed["keys"]["apparel-rw"]
    for bad in ("pclocal", good[:-1] + ("A" if good[-1] != "A" else "B"), "vsk_0000000000000000_" + "x" * 40):
        r = httpx.get(f"{s.url}/indexes", headers={"Api-Key": bad})
        assert r.status_code == 401, bad
    with pytest.raises(UnauthorizedError):
        s.client("wrong-key").list_indexes()
    r = httpx.post(f"{s.url}/idx/docs/query", json={"topK": 1, "vector": [1.0]})
    assert r.status_code == 401


def test_projects_are_isolated(keyed: dict[str, Any]) -> None:
    s: Served = keyed["server"]
    apparel = s.client(keyed["keys"]["apparel-rw"])
    electronics = s.client(keyed["keys"]["electronics-rw"])
    a = apparel.create_index(name="docs", dimension=3, metric="cosine", spec=SPEC)
    e = electronics.create_index(name="docs", dimension=5, metric="euclidean", spec=SPEC)
    assert apparel.describe_index("docs").dimension == 3
    assert electronics.describe_index("docs").dimension == 5
    electronics.create_index(name="only-e", dimension=2, metric="cosine", spec=SPEC)
    assert [i.name for i in apparel.list_indexes()] == ["docs"]
    assert sorted(i.name for i in electronics.list_indexes()) == ["docs", "only-e"]
    with pytest.raises(NotFoundError):
        apparel.describe_index("only-e")
    # the data plane: same host path, the key decides the project
    assert a.host == e.host
    assert apparel.Index(host=a.host).describe_index_stats().dimension == 3
    assert electronics.Index(host=e.host).describe_index_stats().dimension == 5
    store: Path = keyed["store"]
    assert (store / "projects" / "apparel" / "indexes" / "docs" / "index.json").exists()
    assert (store / "projects" / "electronics" / "indexes" / "only-e" / "index.json").exists()
    assert not (store / "indexes").exists()


def test_read_only_key(keyed: dict[str, Any]) -> None:
    s: Served = keyed["server"]
    rw = s.client(keyed["keys"]["apparel-rw"])
    ro = s.client(keyed["keys"]["apparel-ro"])
    rw.create_index(name="ro-test", dimension=2, metric="cosine", spec=SPEC)
    assert ro.describe_index("ro-test").dimension == 2
    assert "ro-test" in [i.name for i in ro.list_indexes()]
    idx = ro.Index(host=ro.describe_index("ro-test").host)
    assert idx.query(vector=[0.1, 0.2], top_k=1).matches == []
    assert idx.describe_index_stats().total_vector_count == 0
    with pytest.raises(ForbiddenError):
        ro.create_index(name="nope", dimension=2, metric="cosine", spec=SPEC)
    with pytest.raises(ForbiddenError):
        ro.delete_index("ro-test")
    with pytest.raises(ForbiddenError):
        ro.configure_index("ro-test", deletion_protection="enabled")
    with pytest.raises(ForbiddenError):
        idx.start_import(uri="/tmp/x")
    with pytest.raises(ForbiddenError):
        idx.delete_namespace(namespace="x")
    key = keyed["keys"]["apparel-ro"]
    for path in ("/vectors/upsert", "/vectors/update", "/vectors/delete"):
        r = httpx.post(f"{s.url}/idx/ro-test{path}", json={}, headers={"Api-Key": key})
        assert r.status_code == 403, path
    assert rw.has_index("ro-test")


def test_keys_stored_hashed_and_never_shown(keyed: dict[str, Any]) -> None:
    s: Served = keyed["server"]
    store: Path = keyed["store"]
    keys = list(keyed["keys"].values())
    # some requests with good and bad keys, errors included
    for k in keys:
        httpx.get(f"{s.url}/indexes/missing", headers={"Api-Key": k})
        httpx.get(f"{s.url}/indexes", headers={"Api-Key": k + "x"})
    texts = [s.log_text()]
    texts += [p.read_text(errors="replace") for p in store.rglob("*") if p.is_file()]
    r = httpx.post(f"{s.url}/indexes", headers={"Api-Key": keys[1]}, json={"name": "x"})
    texts.append(r.text)
    listing = run_cli(store, "api-keys", "list")
    texts.append(listing.stdout + listing.stderr)
    for k in keys:
        secret = k.split("_", 2)[2]
        assert all(secret not in t for t in texts)
    rows = json.loads(listing.stdout)
    assert len(rows) == 3 and all(set(r) == {"id", "project", "role", "name", "created_at"} for r in rows)
    rec = json.loads(next((store / "_auth" / "keys").glob("*.json")).read_text())
    assert len(bytes.fromhex(rec["salt"])) == 16 and len(bytes.fromhex(rec["hash"])) == 32


def test_delete_key_and_projects(tmp_path: Path) -> None:
    store = tmp_path / "store"
    auth = AuthStore(Store(str(store)))
    assert not auth.enabled()
    auth.create_project("p1")
    assert auth.enabled()
    rec, key = auth.create_key("p1", "ReadOnly")
    assert auth.verify(key) == rec
    assert auth.verify(key.replace(key[-3:], "zzz")) is None
    assert auth.verify("garbage") is None and auth.verify("") is None
    assert [k.id for k in auth.list_keys("p1")] == [rec.id]
    auth.delete_key(rec.id)
    assert auth.verify(key) is None
    with pytest.raises(Exception, match="not found"):
        auth.delete_key(rec.id)
    with pytest.raises(ValueError, match="role"):
        auth.create_key("p1", "Owner")
    with pytest.raises(KeyError):
        auth.create_key("p2")
    with pytest.raises(ValueError):
        auth.create_project("Bad Name")
    with pytest.raises(Exception, match="already exists"):
        auth.create_project("p1")
    auth.project_store("p1").write_bytes("indexes/x/index.json", b"{}")
    with pytest.raises(ValueError, match="still has indexes"):
        auth.delete_project("p1")
    auth.delete_project("p1", force=True)
    assert auth.list_projects() == [] and not (store / "projects" / "p1").exists()
    res = run_cli(store, "api-keys", "create", "--project", "nope")
    assert res.returncode == 64 and "not found" in res.stderr


def test_deleted_key_stops_working(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert run_cli(store, "projects", "create", "solo").returncode == 0
    key = create_key(store, "solo")
    with serve(store) as s:
        h = {"Api-Key": key}
        assert httpx.get(f"{s.url}/indexes", headers=h).status_code == 200
        key_id = key.split("_")[1]
        assert run_cli(store, "api-keys", "delete", key_id).returncode == 0
        import time

        deadline = time.monotonic() + 15
        while httpx.get(f"{s.url}/indexes", headers=h).status_code != 401:
            assert time.monotonic() < deadline, "a deleted key still works"
            time.sleep(0.5)
