"""``vecstore serve``: Pinecone's REST API on one port.

The control plane (``/indexes``) and the data plane of every index
(``/idx/<name>/...``, the index's ``host``) are served by one Starlette app
on uvicorn, so the official Pinecone SDKs work unchanged. API keys with
projects and roles are off until the first project is created
(:mod:`vecstore.server.auth`).

Needs the ``server`` extra (starlette, uvicorn, orjson); ``import
vecstore`` never imports this package.
"""

from __future__ import annotations

from vecstore.server.run import DEFAULT_HOST, DEFAULT_PORT, make_app, run

serve = run

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "make_app", "run", "serve"]
