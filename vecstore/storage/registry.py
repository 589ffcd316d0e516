"""The one place that maps a URL to a backend class. Adding a backend: a
module with a :class:`Store` subclass, and its line in :data:`BACKENDS`."""

from __future__ import annotations

import threading
from typing import Any

from vecstore.storage.azure import AzureStore
from vecstore.storage.base import Store
from vecstore.storage.gcs import GCSStore
from vecstore.storage.generic import FsspecStore
from vecstore.storage.local import LocalStore
from vecstore.storage.memory import MemoryStore
from vecstore.storage.objectstore import ObjectStore
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


_ON_BACKEND: dict[tuple[type[Store], type[Store]], type[Store]] = {}
_ON_BACKEND_LOCK = threading.Lock()


def concrete_class(cls: type[Store], uri: str) -> type[Store]:
    """The class ``cls(uri, ...)`` instantiates. ``Store``: the URI's backend.
    A backend class: itself. Another subclass of the interface (a wrapper,
    e.g. one counting reads): that subclass on top of the URI's backend, so
    its overrides reach the backend through ``super()``."""
    if issubclass(cls, (*BACKENDS, ObjectStore)):
        return cls
    backend = backend_for(uri)
    if cls is Store:
        return backend
    with _ON_BACKEND_LOCK:
        combined = _ON_BACKEND.get((cls, backend))
        if combined is None:
            attrs = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
            combined = _ON_BACKEND[(cls, backend)] = type(cls.__name__, (cls, backend), attrs)
    return combined


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
