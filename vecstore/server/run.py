"""Running the server: ``run()`` (what ``vecstore serve`` calls) on uvicorn.

Start-up does no storage work and starts no Dask cluster (the first import
does), so the port is open well under 2 s. SIGTERM / SIGINT make uvicorn
stop accepting, finish the requests in flight (up to
``GRACEFUL_SECONDS``) and run the shutdown hook, which closes the import
runner: running imports stop with the process and are taken over by
recovery later; their manifests are committed atomically or not at all, so
nothing is half-visible.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from vecstore.server.state import ServerState

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5080
GRACEFUL_SECONDS = 5

log = logging.getLogger("vecstore.server")


def make_app(
    store_uri: str,
    *,
    storage_options: dict[str, Any] | None = None,
    config: str | None = None,
    scheduler: str | None = None,
) -> Any:
    """The ASGI app serving ``store_uri`` (for uvicorn, tests or another ASGI server)."""
    from vecstore.server.app import create_app

    state = ServerState(
        store_uri,
        storage_options=storage_options,
        config_path=config,
        scheduler_address=scheduler,
    )
    app = create_app(state)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        from vecstore.runners import close_runners

        try:
            close_runners(abandon=True)  # running imports are left to recovery
        except Exception:  # noqa: BLE001 - shutting down: log, never hang
            log.exception("closing the import runner failed")

    app.router.lifespan_context = lifespan
    return app


def run(
    store_uri: str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    config: str | None = None,
    scheduler: str | None = None,
    log_level: str = "info",
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Serve ``store_uri`` on ``host:port`` until SIGTERM / SIGINT."""
    import uvicorn

    level = log_level.upper()
    logging.basicConfig(
        level=max(logging.INFO, getattr(logging, level, logging.INFO)),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("vecstore.server").setLevel(getattr(logging, level, logging.INFO))
    app = make_app(store_uri, storage_options=storage_options, config=config, scheduler=scheduler)
    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises a captured SIGTERM / SIGINT after its graceful
            # shutdown (exit status -15 / KeyboardInterrupt): a stop on request
            # is a clean exit here, status 0.
            self._captured_signals.clear()

    server = Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level.lower() if log_level.lower() != "debug" else "info",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            server_header=False,
        )
    )
    log.info("vecstore serve: %s on http://%s:%d", _safe(store_uri), host, port)
    server.run()


def _safe(uri: str) -> str:
    from vecstore.storage import Store

    try:
        return Store(uri).url()
    except Exception:  # noqa: BLE001 - only for the log line
        return "<store>"
