"""One object-store abstraction over fsspec.

A :class:`Store` is a root URL plus ``storage_options``. Keys are
``/``-separated paths relative to the root. ``Store(uri, options)`` returns
the backend class registered for the URL's scheme (``registry.py``, the one
place that maps schemes to backends): local paths and ``file://``
(``local.py``), ``memory://`` (``memory.py``), ``s3://`` (``s3.py``),
``gs://`` (``gcs.py``), ``az://`` / ``abfs://`` and Pinecone's Azure form
``https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR`` (``azure.py``), and
any other fsspec filesystem (``generic.py``). ``base.py`` is the interface
and what every backend shares; ``objectstore.py`` the conditional writes of
object stores. Callers never look at the backend's kind: they ask a
capability (:attr:`Store.is_remote`,
:attr:`Store.has_directories`, :attr:`Store.has_buckets`,
:meth:`Store.local_path`). The cloud backends need their extra
(``pip install "vecstore[s3]"``...); without it, opening such a store raises
:class:`~vecstore.errors.MissingExtraError` with the install line.

A Store pickles as ``(uri, storage_options)``, so it reaches a Dask worker as
configuration, never as a live connection. Its ``repr`` and every error
message name only the URL: storage options (credentials) never appear, and
backend messages are scrubbed of the option values before they are quoted
(``scrub.py``).

Errors: a missing object raises :class:`NotFoundError`; refused credentials
:class:`AccessDeniedError`; anything else the backend could not do, after
retries, :class:`StorageError` (``classify.py`` tells which).

Retries: the Store is the retry layer. Transient failures (HTTP 408/429/5xx,
dropped connections, timeouts) are retried with exponential backoff and
jitter, at most :data:`RETRY_ATTEMPTS` attempts and no new attempt after
:data:`RETRY_DEADLINE` seconds (``retry.py``). To keep that bound, the
backends' own retries are turned off unless the caller configured them (see
``s3.py``, ``azure.py``; gcsfs's cannot be, see ``gcs.py``). The filesystem
instances are the Store's own: the options it adds are part of fsspec's
instance-cache key. Files returned by :meth:`Store.open_input` retry their
reads too. Listing caches are off (``use_listings_cache=False``) so every call
sees other processes' writes.

``put_if_absent`` is atomic: a hard link on local disks, a lock in memory, and
conditional writes on S3 (``If-None-Match: *``), GCS (``ifGenerationMatch=0``)
and Azure (``If-None-Match: *``). Each conditional write carries a unique id in
the object's metadata, so a retry after a lost response recognises its own
earlier write instead of reporting a conflict. A server at a custom endpoint
(an emulator, an S3-compatible store) is probed once per process: if it
ignores conditional writes (gcp-storage-emulator does), ``put_if_absent``
falls back to check-then-write under a process-wide lock and logs a warning:
atomic between threads of one process only.
"""

from __future__ import annotations

from vecstore.storage.base import Store
from vecstore.storage.generic import FsspecStore
from vecstore.storage.memory import _MEMORY_LOCK
from vecstore.storage.objectstore import _CONDITIONAL_SUPPORT, PUT_ID, ObjectStore
from vecstore.storage.registry import (
    BACKEND_KINDS,
    BACKENDS,
    backend_for,
    backend_named,
    scheme_of,
    translate_uri,
)
from vecstore.storage.retry import (
    RETRY_ATTEMPTS,
    RETRY_BASE_DELAY,
    RETRY_DEADLINE,
    RETRY_MAX_DELAY,
)

__all__ = [
    "BACKENDS",
    "BACKEND_KINDS",
    "PUT_ID",
    "RETRY_ATTEMPTS",
    "RETRY_BASE_DELAY",
    "RETRY_DEADLINE",
    "RETRY_MAX_DELAY",
    "FsspecStore",
    "ObjectStore",
    "Store",
    "backend_for",
    "backend_named",
    "scheme_of",
    "translate_uri",
]
_ = (_CONDITIONAL_SUPPORT, _MEMORY_LOCK)  # shared state, for tests
