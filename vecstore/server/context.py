"""The request context every endpoint gets, and the wrapper that turns
errors into Pinecone's bodies.

``endpoint(write=...)`` authenticates the request (when keys are on),
checks the role, runs the handler and maps :class:`ApiError` and the
Python API's :class:`~vecstore.errors.VecstoreError` to their statuses.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

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
        enabled = await threaded(state.auth.enabled)
    if not enabled:
        return Ctx(state, None, "ReadWrite")
    presented = request.headers.get("api-key")
    if not presented:
        raise ApiError(401, "UNAUTHENTICATED", "Invalid API Key: the Api-Key header is missing")
    record = await threaded(state.auth.verify, presented)
    if record is None:
        raise ApiError(401, "UNAUTHENTICATED", "Invalid API Key")
    if write and record.role != "ReadWrite":
        raise ApiError(
            403, "PERMISSION_DENIED",
            f"API key {record.id} is read-only (role {record.role}): this request writes",
        )
    if write and not await threaded(state.auth.still_stored, record):
        raise ApiError(401, "UNAUTHENTICATED", "Invalid API Key")
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

# Blocking calls of the Python API run on this pool, not on the event loop
# (a query may read segments from object storage). As many threads as
# Starlette's default pool; a plain executor rather than Starlette's
# ``run_in_threadpool`` (anyio's worker threads): the hand-off there and
# back costs less (docs/server.md, Benchmark).
THREADS = 40
_pool: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="vecstore-serve")
    return _pool


def close_pool() -> None:
    """At shutdown: no new work; calls in flight finish on their threads."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


async def threaded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run blocking work of the Python API off the event loop."""
    loop = asyncio.get_running_loop()
    if kwargs:
        return await loop.run_in_executor(pool(), functools.partial(fn, *args, **kwargs))
    return await loop.run_in_executor(pool(), fn, *args)


async def quick(local: bool, fn: Callable[..., Any], *args: Any) -> Any:
    """A short read (query, fetch) of a ``local`` store: run inline when it
    is the only request in flight in this process (a thread hand-off there
    and back, two thread wake-ups, is saved), else on the pool so concurrent
    requests overlap (the kernels release the GIL). Reads of a remote store
    (which may wait on the network) always use the pool."""
    if local and INFLIGHT[0] <= 1:
        return fn(*args)
    return await threaded(fn, *args)
