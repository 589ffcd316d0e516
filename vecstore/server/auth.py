"""Projects and API keys, kept in the store next to the data.

Like Pinecone Local, the server needs no key until the first project is
created. From then on every request needs the ``Api-Key`` of a project:
the key decides the project (its own store prefix, ``projects/<name>/``, so
two projects can both have an index called ``docs``) and the role
(``ReadWrite`` or ``ReadOnly``). Layout under the store root::

    _auth/projects/<name>.json      {"name", "description", "created_at"}
    _auth/keys/<key id>.json        {"id", "project", "role", "name", "created_at",
                                     "salt", "hash", "kdf"}

A key reads ``vsk_<key id>_<secret>``. It is shown once, when created; only a
salted scrypt hash of the secret is stored. Verified keys are remembered in
memory by a SHA-256 of the whole key for ``CACHE_SECONDS``, so a request
costs one dictionary lookup, and a deleted key stops working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vecstore.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from vecstore.storage import Store

Role = Literal["ReadWrite", "ReadOnly"]
ROLES: tuple[str, ...] = ("ReadWrite", "ReadOnly")
AUTH_ROOT = "_auth"
PROJECTS_ROOT = "projects"
PROJECT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,43}[a-z0-9])?$")
KEY_PREFIX = "vsk_"
KEY_ID = re.compile(r"^[0-9a-f]{16}$")
CACHE_SECONDS = 5.0
ENABLED_CACHE_SECONDS = 2.0
_CACHE_MAX = 10_000
# scrypt work factors: ~30 ms and 16 MiB per verification (once per key per CACHE_SECONDS)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def _now() -> datetime:
    return datetime.now(UTC)


class Project(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    description: str = ""
    created_at: datetime = Field(default_factory=_now)


class ApiKey(BaseModel):
    """A stored key: everything but the secret (only its salted hash)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    project: str
    role: Role
    name: str = ""
    created_at: datetime = Field(default_factory=_now)
    salt: str = Field(repr=False)
    hash: str = Field(repr=False)
    kdf: str = f"scrypt:n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}"

    def public(self) -> dict[str, str]:
        """What listing shows (no salt, no hash)."""
        return {
            "id": self.id,
            "project": self.project,
            "role": self.role,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
        }


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )


def split_key(key: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or not KEY_ID.fullmatch(key_id) or not 20 <= len(secret) <= 200:
        return None
    return key_id, secret


def check_project_name(name: object) -> str:
    if not isinstance(name, str) or not PROJECT_NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"Invalid project name {name!r}: expected 1-45 lowercase letters, digits or "
            "hyphens, starting and ending with a letter or digit"
        )
    return name


class AuthStore:
    """Projects and API keys of one store root."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._verified: dict[bytes, tuple[float, ApiKey | None]] = {}
        self._enabled: tuple[float, bool] | None = None

    # ------------------------------------------------------------ projects
    def create_project(self, name: str, description: str = "") -> Project:
        check_project_name(name)
        project = Project(name=name, description=str(description or ""))
        try:
            self.store.put_if_absent(_project_key(name), project.model_dump_json().encode())
        except AlreadyExistsError:
            raise AlreadyExistsError(f'Project "{name}" already exists', project=name) from None
        self._enabled = None
        return project

    def get_project(self, name: str) -> Project:
        check_project_name(name)
        try:
            raw = self.store.read_bytes(_project_key(name))
        except NotFoundError:
            raise NotFoundError(f'Project "{name}" not found', project=name) from None
        return Project.model_validate_json(raw)

    def list_projects(self) -> list[Project]:
        out = [
            Project.model_validate_json(self.store.read_bytes(key))
            for key in self.store.ls(f"{AUTH_ROOT}/projects")
            if key.endswith(".json")
        ]
        return sorted(out, key=lambda p: p.name)

    def delete_project(self, name: str, *, force: bool = False) -> None:
        """Delete a project and its keys. Its indexes too with ``force``;
        without it a project that still has indexes is refused."""
        self.get_project(name)
        data = self.project_store(name)
        if not force and data.ls("indexes"):
            raise InvalidArgumentError(
                f'Project "{name}" still has indexes: delete them first or pass force',
                project=name,
            )
        for key in self.list_keys(name):
            self.delete_key(key.id)
        if force:
            self.store.delete_prefix(f"{PROJECTS_ROOT}/{name}")
        self.store.delete(_project_key(name))
        self._enabled = None

    def project_store(self, name: str) -> Store:
        """The store root of a project's indexes."""
        return self.store.child(f"{PROJECTS_ROOT}/{check_project_name(name)}")

    def enabled_cached(self) -> bool | None:
        """:meth:`enabled` if known recently, else None (no storage call)."""
        cached = self._enabled
        if cached is not None and time.monotonic() - cached[0] < ENABLED_CACHE_SECONDS:
            return cached[1]
        return None

    def enabled(self) -> bool:
        """Whether keys are required: once any project exists (cached briefly)."""
        now = time.monotonic()
        cached = self._enabled
        if cached is not None and now - cached[0] < ENABLED_CACHE_SECONDS:
            return cached[1]
        on = any(k.endswith(".json") for k in self.store.ls(f"{AUTH_ROOT}/projects"))
        self._enabled = (now, on)
        return on

    # ---------------------------------------------------------------- keys
    def create_key(self, project: str, role: str = "ReadWrite", name: str = "") -> tuple[ApiKey, str]:
        """A new key of ``project``: ``(record, the key itself)``. The key is
        not stored anywhere; show it to the user once."""
        self.get_project(project)
        if role not in ROLES:
            raise InvalidArgumentError(f"Invalid role {role!r}: expected 'ReadWrite' or 'ReadOnly'")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        record = ApiKey(
            id=key_id,
            project=project,
            role=role,
            name=str(name or ""),
            salt=salt.hex(),
            hash=_hash(secret, salt).hex(),
        )
        self.store.put_if_absent(_key_key(key_id), record.model_dump_json().encode())
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def list_keys(self, project: str | None = None) -> list[ApiKey]:
        out = []
        for key in self.store.ls(f"{AUTH_ROOT}/keys"):
            if key.endswith(".json"):
                rec = ApiKey.model_validate_json(self.store.read_bytes(key))
                if project is None or rec.project == project:
                    out.append(rec)
        return sorted(out, key=lambda k: (k.project, k.created_at, k.id))

    def delete_key(self, key_id: str) -> None:
        if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
            raise NotFoundError(f'API key "{key_id}" not found')
        if not self.store.exists(_key_key(key_id)):
            raise NotFoundError(f'API key "{key_id}" not found')
        self.store.delete(_key_key(key_id))
        with self._lock:
            self._verified.clear()

    def still_stored(self, record: ApiKey) -> bool:
        """Whether a verified key's record still exists (uncached: one
        existence check). Writes call it, so a key deleted (by ``api-keys
        delete`` or with its project) cannot write during the
        ``CACHE_SECONDS`` its verification is remembered; otherwise a write
        of a deleted project recreates ``projects/<name>/`` and a project
        created later with that name inherits it."""
        return self.store.exists(_key_key(record.id))

    def verify(self, presented: str) -> ApiKey | None:
        """The record of a valid key, else None (never raises for bad input)."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        now = time.monotonic()
        hit = self._verified.get(digest)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        record = self._check(presented)
        with self._lock:
            if len(self._verified) >= _CACHE_MAX:
                self._verified.clear()
            self._verified[digest] = (now, record)
        return record

    def _check(self, presented: str) -> ApiKey | None:
        parts = split_key(presented)
        if parts is None:
            return None
        key_id, secret = parts
        try:
            record = ApiKey.model_validate_json(self.store.read_bytes(_key_key(key_id)))
        except NotFoundError:
            return None
        expected = bytes.fromhex(record.hash)
        if not hmac.compare_digest(_hash(secret, bytes.fromhex(record.salt)), expected):
            return None
        return record


def _project_key(name: str) -> str:
    return f"{AUTH_ROOT}/projects/{name}.json"


def _key_key(key_id: str) -> str:
    return f"{AUTH_ROOT}/keys/{key_id}.json"
