"""What object stores share: ``put_if_absent`` as a conditional write tagged
with a unique put id (kept in the object's metadata), so that a retry after a
lost response recognises its own earlier write instead of reporting a
conflict; and, for a server at a custom endpoint (an emulator, an
S3-compatible store), a once-per-process probe of whether it honours
conditional writes at all. Where it does not (gcp-storage-emulator),
``put_if_absent`` falls back to check-then-write under a process-wide lock
and logs a warning: atomic between threads of one process only.

A backend says how one conditional write is sent (:meth:`_create`) and, if
it differs, how an object's metadata is read (:meth:`_metadata`)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from typing import Any

from vecstore.errors import AlreadyExistsError
from vecstore.storage.base import Store, logger
from vecstore.storage.classify import is_exists
from vecstore.storage.scrub import scrub

# Serialises put_if_absent on servers that ignore conditional writes.
_FALLBACK_LOCK = threading.Lock()
_PROBE_LOCK = threading.Lock()
_CONDITIONAL_SUPPORT: dict[tuple[str, str], bool] = {}

PUT_ID = "vecstoreputid"
"""Object metadata key carrying a put_if_absent call's unique id."""


class ObjectStore(Store):
    """A Store on an object store (conditional writes, no directories)."""

    def put_if_absent(self, key: str, data: bytes) -> None:
        """Write ``key`` only if no object exists there; else AlreadyExistsError.

        A conditional write tagged with a unique put id (see the module
        docstring, also for servers that ignore conditional writes).
        """
        path = self.path(key)
        put_id = uuid.uuid4().hex
        atomic = self._self_conditional(key)

        def remote() -> None:
            with contextlib.nullcontext() if atomic else _FALLBACK_LOCK:
                try:
                    if not atomic and self.fs.exists(path):
                        raise FileExistsError(path)
                    self._create(path, data, put_id)
                except Exception as exc:
                    if not is_exists(exc):
                        raise
                    # Our own earlier attempt may have landed (lost response).
                    if self._put_id(path) == put_id:
                        return
                    raise self._exists_error(key) from None

        self._call("create", key, remote)

    def _create(self, path: str, data: bytes, put_id: str) -> None:
        """One conditional write, tagged with ``put_id`` (a generic fsspec
        backend: its own "create" mode, untagged)."""
        self.fs.pipe_file(path, data, mode="create")

    def _put_id(self, path: str) -> str | None:
        """The put id stored with the object at ``path``, if any."""
        try:
            meta = self._metadata(path)
        except FileNotFoundError:
            return None
        value = meta.get(PUT_ID)
        return str(value) if value is not None else None

    def _metadata(self, path: str) -> dict[str, Any]:
        """The user metadata of the object at ``path``, fresh from the server."""
        self.fs.invalidate_cache(path)
        meta: dict[str, Any] = self.fs.info(path).get("metadata") or {}
        return meta

    def _self_conditional(self, key: str) -> bool:
        """Whether this Store's server honours conditional writes (probed once)."""
        if self._endpoint is None:
            return True
        cache_key = (self.kind, self._endpoint)
        with _PROBE_LOCK:
            known = _CONDITIONAL_SUPPORT.get(cache_key)
        if known is not None:
            return known
        parent = key.strip("/").rpartition("/")[0]
        probe = f"{parent}/.vecstore-probe-{uuid.uuid4().hex}".lstrip("/")
        path = self.path(probe)

        def go() -> bool:
            try:
                self._create(path, b"", "probe")
                try:
                    self._create(path, b"", "probe")
                except Exception as exc:
                    if is_exists(exc):
                        return True
                    raise
                return False
            finally:
                # retried like any delete: a fault here must not leave the
                # probe beside the manifests (best effort after the retries)
                with contextlib.suppress(Exception):
                    self.delete(probe)

        try:
            supported = self._call("probe conditional writes at", probe, go)
        except AlreadyExistsError:  # a lost response on the first write: it landed
            supported = True
        with _PROBE_LOCK:
            _CONDITIONAL_SUPPORT[cache_key] = supported
        if not supported:
            logger.warning(
                "The %s server at %s ignores conditional writes: put_if_absent falls back to "
                "check-then-write under a lock, atomic only between threads of this process",
                self.kind,
                scrub(self._endpoint, self._secrets),
            )
        return supported
