"""The one place that maps a URL to a backend class. Adding a backend: a
module with a :class:`Store` subclass, and its line in :data:`BACKENDS`."""

from __future__ import annotations

from typing import Any

from vecstore.storage.azure import AzureStore
from vecstore.storage.base import Store
from vecstore.storage.gcs import GCSStore
from vecstore.storage.generic import FsspecStore
from vecstore.storage.local import LocalStore
from vecstore.storage.memory import MemoryStore
from vecstore.storage.s3 import S3Store

BACKENDS: tuple[type[Store], ...] = (LocalStore, MemoryStore, S3Store, GCSStore, AzureStore)
"""Asked in order; a URL none of them claims goes to :class:`FsspecStore`."""
BACKEND_KINDS = frozenset(cls.name for cls in BACKENDS)
"""The kinds of the registered backends (``local``, ``memory``, ``s3``...)."""


def backend_for(uri: str) -> type[Store]:
    """The Store class serving ``uri``."""
    for cls in BACKENDS:
        if cls.claims(uri):
            return cls
    return FsspecStore


def backend_named(kind: str) -> type[Store]:
    """The Store class of a backend kind (``s3``, ``gcs``...); FsspecStore if unknown."""
    for cls in BACKENDS:
        if cls.name == kind:
            return cls
    return FsspecStore


def translate_uri(
    uri: str, storage_options: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The fsspec URL and options of ``uri``: Pinecone's Azure https form
    becomes adlfs's ``az://`` (``account_name`` added unless given); other
    http(s) URLs are refused. The caller's options are kept (copied)."""
    return backend_for(uri).translate(uri, dict(storage_options or {}))


def scheme_of(uri: str) -> str:
    """The storage kind of a URI: ``local``, ``memory``, ``s3``, ``gcs`` or
    ``azure`` (another fsspec backend: its URL scheme)."""
    return backend_for(uri).kind_of(uri)
