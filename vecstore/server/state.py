"""What the server keeps between requests: the VecStore of each project,
cached ``Index`` objects (their readers hold the segment caches) and the
per-index settings Pinecone has but the index spec does not
(``deletion_protection``, tags changed by ``configure_index``).

Settings live in a sidecar object ``indexes/<name>/settings.json`` next to
``index.json`` (deleted with the index). A cached ``Index`` is checked
against ``index.json`` at most every ``REVALIDATE_SECONDS``, so an index
deleted and created again by another process is noticed.

With ``--workers N`` the workers share a generation table
(:mod:`vecstore.server.fresh`): a write bumps the counters of its index and
namespace once durable, and a read first drops what this worker cached of
a key whose counter moved, so a client reads its writes whichever worker
answers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

from vecstore import layout
from vecstore.api import Index, VecStore
from vecstore.errors import InvalidArgumentError, NotFoundError
from vecstore.schemas import IndexSpec
from vecstore.server import fresh
from vecstore.server.auth import AuthStore
from vecstore.storage import Store

REVALIDATE_SECONDS = 1.0  # another process's create / delete (outside this server)
DELETION_PROTECTION = ("enabled", "disabled")


def settings_key(index: str) -> str:
    return f"{layout.index_prefix(index)}/settings.json"


@dataclass(frozen=True)
class Settings:
    deletion_protection: str = "disabled"
    tags: dict[str, str] | None = None  # None: the tags of index.json


@dataclass
class _Cached:
    index: Index
    checked: float


class ServerState:
    """The stores and caches of one server process."""

    def __init__(
        self,
        store_uri: str,
        *,
        storage_options: dict[str, Any] | None = None,
        config_path: str | None = None,
        scheduler_address: str | None = None,
        generations: str | None = None,
    ) -> None:
        self.store_uri = store_uri
        self.storage_options = dict(storage_options or {})
        self.config_path = config_path
        self.scheduler_address = scheduler_address
        self.root = Store(store_uri, self.storage_options or None)
        self.local = not self.root.is_remote  # reads cannot wait on a network
        self.auth = AuthStore(self.root)
        self._stores: dict[str | None, VecStore] = {}
        self._indexes: dict[tuple[str | None, str], _Cached] = {}
        self._lock = threading.Lock()
        # shared with the other workers (a path), or this process's own
        self.gens = fresh.Generations(generations)

    # ------------------------------------------------------------- stores
    def vecstore(self, project: str | None) -> VecStore:
        """The VecStore of a project (None: the store root, keys off)."""
        vs = self._stores.get(project)
        if vs is not None:
            return vs
        with self._lock:
            vs = self._stores.get(project)
            if vs is None:
                uri = self.root.uri if project is None else self.auth.project_store(project).uri
                vs = VecStore(
                    uri,
                    storage_options=self.storage_options or None,
                    scheduler_address=self.scheduler_address,
                    config_path=self.config_path,
                )
                self._stores[project] = vs
            return vs

    # ------------------------------------------------------------ indexes
    def index(self, project: str | None, name: str) -> Index:
        """The cached Index of ``name`` (NotFoundError if there is none)."""
        key = (project, name)
        token = self.gens.stale("index", project, name)
        if token is not None:  # another worker created or deleted it
            self.forget(project, name)
        now = time.monotonic()
        hit = self._indexes.get(key)
        if hit is not None and now - hit.checked < REVALIDATE_SECONDS:
            return hit.index
        vs = self.vecstore(project)
        spec = vs.describe_index(name)
        if hit is not None and hit.index.spec == spec:
            hit.checked = now
            return hit.index
        index = vs.Index(name) if hit is None else Index(vs, spec)
        with self._lock:
            self._indexes[key] = _Cached(index, now)
        if token is not None:
            self.gens.refreshed(token)
        return index

    def fresh(self, project: str | None, index: Index, namespace: str) -> None:
        """Before reading ``namespace``: drop this worker's cached manifest and
        tail of it if another worker wrote there since (see module doc)."""
        token = self.gens.stale("ns", project, index.name, namespace)
        if token is None:
            return
        from vecstore.tail import tail_reader

        index.reader.tracker.invalidate(namespace)
        tail_reader(index.store, index.spec).get(namespace, force=True)
        self.gens.refreshed(token)

    def fresh_all(self, project: str | None, index: Index) -> None:
        """Before an index-wide read (stats, namespaces): :meth:`fresh` for
        every namespace with a write log, if another worker wrote to any."""
        token = self.gens.stale("all", project, index.name)
        if token is None:
            return
        from vecstore import catalog, wal

        logged = wal.logged_namespaces(index.store, index.name)
        names = logged if logged is not None else set(catalog.namespaces(index.store, index.name))
        for ns in names:
            self.fresh(project, index, ns)
        self.gens.refreshed(token)

    def wrote(self, project: str | None, index: str, namespace: str | None = None) -> None:
        """After a durable write (of ``namespace``; None: the index itself was
        created or deleted): the other workers refresh before their next read."""
        if namespace is None:
            self.gens.bump("index", project, index)
        else:
            self.gens.bump("ns", project, index, namespace)
        self.gens.bump("all", project, index)

    def forget(self, project: str | None, name: str) -> None:
        with self._lock:
            self._indexes.pop((project, name), None)

    # ----------------------------------------------------------- settings
    def settings(self, project: str | None, name: str) -> Settings:
        store = self.vecstore(project).store
        try:
            raw = orjson.loads(store.read_bytes(settings_key(name)))
        except NotFoundError:
            return Settings()
        except orjson.JSONDecodeError:
            return Settings()
        tags = raw.get("tags")
        return Settings(
            deletion_protection=raw.get("deletion_protection", "disabled"),
            tags=dict(tags) if isinstance(tags, dict) else None,
        )

    def save_settings(self, project: str | None, name: str, settings: Settings) -> None:
        store = self.vecstore(project).store
        body: dict[str, Any] = {"deletion_protection": settings.deletion_protection}
        if settings.tags is not None:
            body["tags"] = settings.tags
        store.write_bytes(settings_key(name), orjson.dumps(body))

    def tags_of(self, spec: IndexSpec, settings: Settings) -> dict[str, str]:
        return dict(settings.tags if settings.tags is not None else spec.tags)


def check_deletion_protection(value: Any) -> str:
    if value not in DELETION_PROTECTION:
        raise InvalidArgumentError(
            f"Invalid deletion_protection {value!r}: expected 'enabled' or 'disabled'"
        )
    return str(value)
