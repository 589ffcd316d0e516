"""The request context every endpoint gets, and the wrapper that turns
errors into Pinecone's bodies.

``endpoint(write=...)`` authenticates the request (when keys are on),
checks the role, runs the handler and maps :class:`ApiError` and the
Python API's :class:`~vecstore.errors.VecstoreError` to their statuses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from vecstore.errors import VecstoreError
from vecstore.server.codec import JSONResponse
from vecstore.server.errors import ApiError, from_vecstore
from vecstore.server.state import ServerState

log = logging.getLogger("vecstore.server")


@dataclass(frozen=True)
class Ctx:
    state: ServerState
    project: str | None
    role: str

    def base_url(self, request: Request) -> str:
        host = request.headers.get("host")
        if not host:
            server = request.scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        return f"http://{host}"


Handler = Callable[[Request, Ctx], Awaitable[Response]]


def error_response(err: ApiError) -> Response:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


async def authenticate(request: Request, state: ServerState, write: bool) -> Ctx:
    enabled = state.auth.enabled_cached()
    if enabled is None:
        enabled = await run_in_threadpool(state.auth.enabled)
    if not enabled:
        return Ctx(state, None, "ReadWrite")
    presented = request.headers.get("api-key")
    if not presented:
        raise ApiError(401, "UNAUTHENTICATED", "Invalid API Key: the Api-Key header is missing")
    record = await run_in_threadpool(state.auth.verify, presented)
    if record is None:
        raise ApiError(401, "UNAUTHENTICATED", "Invalid API Key")
    if write and record.role != "ReadWrite":
        raise ApiError(
            403, "PERMISSION_DENIED",
            f"API key {record.id} is read-only (role {record.role}): this request writes",
        )
    return Ctx(state, record.project, record.role)


def endpoint(*, write: bool) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            state: ServerState = request.app.state.vecstore
            try:
                ctx = await authenticate(request, state, write)
                return await fn(request, ctx)
            except ApiError as err:
                return error_response(err)
            except VecstoreError as exc:
                mapped = from_vecstore(exc)
                if mapped.status >= 500:
                    log.warning("%s %s: %s", request.method, request.url.path, exc.message)
                return error_response(mapped)

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        return run

    return wrap


# requests being served by this process (the event loop's thread updates it)
INFLIGHT = [0]


async def threaded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run blocking work of the Python API off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)
