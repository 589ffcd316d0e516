"""Storage integrations: named credential sets for import sources.

An ``integration_id`` names a dict of fsspec storage options (``key``/``secret``
for S3, ``token`` for GCS, ``connection_string`` or ``account_key`` for Azure,
plus non-secret settings such as ``endpoint_url``). Sources:

1. ``VecStore(integrations={"my-s3": {...}})``
2. a JSON file ``{"integrations": {"my-s3": {...}}}`` named by ``--config`` on
   the CLI or by the environment variable ``VECSTORE_CONFIG``
3. the environment variable ``VECSTORE_INTEGRATIONS`` holding that JSON inline

Later sources do not override earlier ones. Without an integration a source is
read anonymously (``anon=True`` / ``token="anon"``), with only the non-secret
``source_options`` (e.g. an emulator's ``endpoint_url``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from vecstore.errors import InvalidArgumentError
from vecstore.settings import settings

CONFIG_ENV = "VECSTORE_CONFIG"
INLINE_ENV = "VECSTORE_INTEGRATIONS"

Options = dict[str, Any]


class Integrations:
    """A read-only registry; its repr never shows the options."""

    def __init__(self, mapping: Mapping[str, Options] | None = None) -> None:
        self._by_id: dict[str, Options] = {k: dict(v) for k, v in (mapping or {}).items()}

    def __repr__(self) -> str:
        return f"Integrations(ids={sorted(self._by_id)})"

    def __contains__(self, integration_id: object) -> bool:
        return integration_id in self._by_id

    def ids(self) -> list[str]:
        return sorted(self._by_id)

    def options(self, integration_id: str) -> Options:
        try:
            return dict(self._by_id[integration_id])
        except KeyError:
            known = ", ".join(self.ids()) or "none configured"
            raise InvalidArgumentError(
                f'Unknown integration_id "{integration_id}" (known: {known})',
                integration_id=integration_id,
            ) from None

    def merged(self, other: Mapping[str, Options]) -> Integrations:
        out = dict(other)
        out.update(self._by_id)
        return Integrations(out)


def load_config_file(path: str) -> dict[str, Any]:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise InvalidArgumentError(f'Cannot read config file "{path}": {exc.strerror}') from None
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(
            f'Config file "{path}" is not JSON: {exc.msg} (line {exc.lineno})'
        ) from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f'Config file "{path}" must hold a JSON object')
    return data


def from_environment(config_path: str | None = None) -> Integrations:
    """Integrations from a config file (argument or VECSTORE_CONFIG) and VECSTORE_INTEGRATIONS."""
    found: dict[str, Options] = {}
    inline = settings().integrations
    if inline:
        try:
            data = json.loads(inline)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"{INLINE_ENV} is not JSON: {exc.msg}") from None
        found.update(_section(data, INLINE_ENV))
    path = config_path or settings().config
    if path:
        found.update(_section(load_config_file(path), path))
    return Integrations(found)


def _section(data: Any, where: str) -> dict[str, Options]:
    if isinstance(data, dict) and "integrations" in data:
        data = data["integrations"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InvalidArgumentError(
            f'{where}: expected {{"integrations": {{"<id>": {{...options}}}}}}'
        )
    return {str(k): dict(v) for k, v in data.items()}


def anonymous_options(kind: str, base: Options | None = None) -> Options:
    """Storage options for anonymous access to a source of ``kind`` (its
    backend knows the spelling: ``anon=True``, ``token="anon"``...)."""
    from vecstore.storage import backend_named

    return backend_named(kind).anonymous_options(base)
