"""The listing's version of a file (``SourceFile.version``, the load history's
key) on every backend: an etag where the store lists one, else the
modification time; rewriting a file with other bytes of the same size changes it."""

from __future__ import annotations

import time

from vecstore.pipelines.discover import discover
from vecstore.storage import Store


def test_version_is_listed_and_changes_on_rewrite(any_store: Store) -> None:
    store = any_store.child("export")
    store.write_bytes("ns/0.parquet", b"A" * 64)
    store.write_bytes("ns/deletes/d.parquet", b"B" * 64)
    first = discover(store, store.uri, set(), mode="upsert")
    (f,) = first.namespaces["ns"]
    (d,) = first.deletes["ns"]
    kind = "mtime:" if store.uri.startswith(("memory://", "/", "file://")) else "etag:"
    assert f.version.startswith(kind) and d.version.startswith(kind), (f, d)
    assert f.size == 64
    time.sleep(0.05)  # past the clock's resolution for modification times
    store.write_bytes("ns/0.parquet", b"C" * 64)
    (again,) = discover(store, store.uri, set(), mode="upsert").namespaces["ns"]
    assert again.size == f.size and again.version != f.version
