"""API keys and projects: off by default; once a project exists every
request needs a valid ``Api-Key`` (401), a read-only key cannot write (403),
each project sees only its own indexes, keys are stored as salted hashes and
never appear in a log, an error body or a stored record."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pinecone import ForbiddenError, NotFoundError, ServerlessSpec, UnauthorizedError
from serverutil import (
    Served,
    create_key,
    run_cli,
    serve,
    server_env,
    wait_import,
    write_dense_import,
)

from vecstore.server.auth import CACHE_SECONDS, AuthStore
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


# ------------------------------------------------- projects through the CLI


def run_cli_text(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI without ``--json`` (what a person reads)."""
    return subprocess.run(
        [sys.executable, "-m", "vecstore.cli", "--store", str(store), *args],
        capture_output=True, text=True, env=server_env(), timeout=120, check=False,
    )


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root``: relative path -> SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def status(s: Served, key: str) -> int:
    return httpx.get(f"{s.url}/indexes", headers={"Api-Key": key}).status_code


def two_projects(store: Path) -> dict[str, str]:
    """Projects "keep" and "gone" (set up in-process: the CLI's create is
    tested above) and their keys, by name."""
    auth = AuthStore(Store(str(store)))
    for name, text in (("keep", "stays"), ("gone", "to delete")):
        auth.create_project(name, text)
    return {
        "gone-rw": auth.create_key("gone")[1],
        "gone-ro": auth.create_key("gone", "ReadOnly")[1],
        "keep-rw": auth.create_key("keep")[1],
    }


def key_id(key: str) -> str:
    return key.split("_")[1]


def test_cli_lists_projects_and_one_projects_keys(tmp_path: Path) -> None:
    store = tmp_path / "store"
    keys = two_projects(store)
    secrets = [k.split("_", 2)[2] for k in keys.values()]
    res = run_cli(store, "projects", "list")
    assert res.returncode == 0, res.stderr
    assert [(p["name"], p["description"]) for p in json.loads(res.stdout)] == [
        ("gone", "to delete"), ("keep", "stays"),
    ]
    assert run_cli_text(store, "projects", "list").stdout.split() == ["gone", "keep"]

    # api-keys list --project: that project's keys only, never a secret
    res = run_cli(store, "api-keys", "list", "--project", "gone")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert sorted(r["id"] for r in rows) == sorted([key_id(keys["gone-rw"]), key_id(keys["gone-ro"])])
    assert {r["project"] for r in rows} == {"gone"}
    assert {r["role"] for r in rows} == {"ReadWrite", "ReadOnly"}
    assert all(set(r) == {"id", "project", "role", "name", "created_at"} for r in rows)
    text = run_cli_text(store, "api-keys", "list", "--project", "gone")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 2 and all(line.split("\t")[1] == "gone" for line in lines)
    assert key_id(keys["keep-rw"]) not in res.stdout + text.stdout
    for out in (res.stdout + res.stderr, text.stdout + text.stderr):
        assert all(secret not in out for secret in secrets)
        assert "salt" not in out and "hash" not in out


def test_cli_project_delete_needs_force_and_removes_its_keys(tmp_path: Path) -> None:
    store = tmp_path / "store"
    keys = two_projects(store)
    with serve(store) as s:
        gone = s.client(keys["gone-rw"])
        gone.create_index(name="docs", dimension=2, metric="cosine", spec=SPEC)
        s.client(keys["keep-rw"]).create_index(name="kept", dimension=2, metric="cosine", spec=SPEC)
        assert status(s, keys["gone-rw"]) == 200

        # without --force a project with indexes is refused, and nothing changes
        before = snapshot(store)
        res = run_cli_text(store, "projects", "delete", "gone")
        assert res.returncode != 0
        assert "still has indexes" in res.stderr and "force" in res.stderr, res.stderr
        assert "Deleted" not in res.stdout
        assert snapshot(store) == before
        assert [i.name for i in gone.list_indexes()] == ["docs"]

        # with --force: the project, its indexes and its keys are gone
        t0 = time.monotonic()  # the server verified gone-rw before this
        res = run_cli_text(store, "projects", "delete", "gone", "--force")
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == 'Deleted project "gone"'
        assert [p["name"] for p in json.loads(run_cli(store, "projects", "list").stdout)] == ["keep"]
        listed = json.loads(run_cli(store, "api-keys", "list").stdout)
        assert [r["id"] for r in listed] == [key_id(keys["keep-rw"])]
        assert not (store / "projects" / "gone").exists()
        assert sorted(p.name for p in (store / "_auth").rglob("*.json")) == sorted(
            ["keep.json", f"{key_id(keys['keep-rw'])}.json"]
        )
        # a verified key is kept CACHE_SECONDS by the server: it must stop
        # working within that (plus scheduling slack), polled, not slept
        deadline = t0 + CACHE_SECONDS + 3.0
        while status(s, keys["gone-rw"]) != 401:
            assert time.monotonic() < deadline, "a key of a deleted project still works"
            time.sleep(0.1)
        assert status(s, keys["gone-ro"]) == 401  # never verified: at once
        # the other project is untouched (keys stay on: a project is left)
        assert [i.name for i in s.client(keys["keep-rw"]).list_indexes()] == ["kept"]


def test_a_deleted_projects_key_cannot_write_into_a_later_project(tmp_path: Path) -> None:
    """A verification is cached (CACHE_SECONDS), but a write re-checks that
    the key's record still exists: a deleted project's key cannot recreate
    ``projects/<name>/`` for a project later created with that name."""
    store = tmp_path / "store"
    keys = two_projects(store)
    auth = AuthStore(Store(str(store)))
    with serve(store) as s:
        assert status(s, keys["gone-rw"]) == 200  # verified: cached by the server
        auth.delete_project("gone", force=True)
        r = httpx.post(
            f"{s.url}/indexes", headers={"Api-Key": keys["gone-rw"]},
            json={"name": "ghost", "dimension": 2, "metric": "cosine",
                  "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}}},
        )
        auth.create_project("gone")
        fresh = auth.create_key("gone")[1]
        listed = httpx.get(f"{s.url}/indexes", headers={"Api-Key": fresh}).json()["indexes"]
        assert (r.status_code, listed) == (401, [])


# ------------------------------------------- cross-project data plane, imports


def test_data_plane_of_another_projects_index_is_404(keyed: dict[str, Any]) -> None:
    s: Served = keyed["server"]
    store: Path = keyed["store"]
    apparel = s.client(keyed["keys"]["apparel-rw"])
    electronics = s.client(keyed["keys"]["electronics-rw"])
    host = electronics.create_index(name="e-data", dimension=2, metric="cosine", spec=SPEC).host
    e_idx = electronics.Index(host=host)
    e_idx.upsert(vectors=[("v1", [0.1, 0.2])], namespace="ns")
    assert set(e_idx.fetch(ids=["v1"], namespace="ns").vectors) == {"v1"}
    # apparel has no index "e-data": the same host with its key is 404
    a_idx = apparel.Index(host=host)
    with pytest.raises(NotFoundError):
        a_idx.query(vector=[0.1, 0.2], top_k=1, namespace="ns")
    with pytest.raises(NotFoundError):
        a_idx.query(id="v1", top_k=1, namespace="ns")
    with pytest.raises(NotFoundError):
        a_idx.fetch(ids=["v1"], namespace="ns")
    with pytest.raises(NotFoundError):
        a_idx.upsert(vectors=[("v2", [0.3, 0.4])], namespace="ns")
    with pytest.raises(NotFoundError):
        a_idx.describe_index_stats()
    ro_idx = s.client(keyed["keys"]["apparel-ro"]).Index(host=host)
    with pytest.raises(NotFoundError):
        ro_idx.fetch(ids=["v1"], namespace="ns")
    # nothing written on either side
    assert not (store / "projects" / "apparel" / "indexes" / "e-data").exists()
    assert set(e_idx.fetch(ids=["v1", "v2"], namespace="ns").vectors) == {"v1"}
    assert e_idx.describe_index_stats().total_vector_count == 1


def test_imports_are_per_project(keyed: dict[str, Any], tmp_path: Path) -> None:
    s: Served = keyed["server"]
    apparel = s.client(keyed["keys"]["apparel-rw"])
    electronics = s.client(keyed["keys"]["electronics-rw"])
    ro = s.client(keyed["keys"]["apparel-ro"])
    host = apparel.create_index(name="imp", dimension=4, metric="cosine", spec=SPEC).host
    assert electronics.create_index(name="imp", dimension=4, metric="cosine", spec=SPEC).host == host
    write_dense_import(tmp_path / "a", {"ns": 20}, 4)
    write_dense_import(tmp_path / "e", {"ns": 10}, 4, seed=1)
    a_idx, e_idx, ro_idx = apparel.Index(host=host), electronics.Index(host=host), ro.Index(host=host)
    a_op = a_idx.start_import(uri=str(tmp_path / "a"))
    e_op = e_idx.start_import(uri=str(tmp_path / "e"))
    # a ReadOnly key can neither cancel nor start an import
    with pytest.raises(ForbiddenError):
        ro_idx.cancel_import(id=a_op.id)
    with pytest.raises(ForbiddenError):
        ro_idx.start_import(uri=str(tmp_path / "a"))
    key = keyed["keys"]["apparel-ro"]
    r = httpx.delete(f"{host}/bulk/imports/{a_op.id}", headers={"Api-Key": key})
    assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
    # another project's job does not exist for electronics, on its own "imp"
    with pytest.raises(NotFoundError):
        e_idx.describe_import(id=a_op.id)
    with pytest.raises(NotFoundError):
        e_idx.cancel_import(id=a_op.id)
    # none of the refused requests touched the job
    assert wait_import(a_idx, a_op.id).status == "Completed"
    assert wait_import(e_idx, e_op.id).status == "Completed"
    assert [j.id for j in a_idx.list_imports()] == [a_op.id]
    assert [j.id for j in ro_idx.list_imports()] == [a_op.id]  # a read: allowed
    assert [j.id for j in e_idx.list_imports()] == [e_op.id]
    assert a_idx.describe_index_stats().total_vector_count == 20
    assert e_idx.describe_index_stats().total_vector_count == 10
