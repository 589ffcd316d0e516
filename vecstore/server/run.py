"""Running the server: ``run()`` (what ``vecstore serve`` calls) on uvicorn.

Start-up does no storage work and starts no Dask cluster (the first import
does), so the port is open well under 2 s. SIGTERM / SIGINT make uvicorn
stop accepting, finish the requests in flight (up to
``GRACEFUL_SECONDS``) and run the shutdown hook, which closes the import
runner: running imports stop with the process and are taken over by
recovery later; their manifests are committed atomically or not at all, so
nothing is half-visible.

``workers`` > 1 runs that many server processes on the one port (uvicorn's
multi-process supervisor: the parent binds the port, spawns the workers,
restarts one that dies and, on SIGTERM / SIGINT, stops them all and waits
for them). Each worker builds its app with :class:`WorkerApp` (an app
factory that uvicorn pickles to the spawned workers: the settings, which may
hold storage credentials, never go through the command line or the
environment) and maps the generation table of :mod:`vecstore.server.fresh`
from a private directory (mode 0700) removed when the server stops.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
    generations: str | None = None,
) -> Any:
    """The ASGI app serving ``store_uri`` (for uvicorn, tests or another ASGI
    server); ``generations``: the table shared by the workers of one server."""
    from vecstore.server.app import create_app

    state = ServerState(
        store_uri,
        storage_options=storage_options,
        config_path=config,
        scheduler_address=scheduler,
        generations=generations,
    )
    app = create_app(state)

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        from vecstore.runners import close_runners
        from vecstore.server.context import close_pool

        close_pool()

        try:
            close_runners(abandon=True)  # running imports are left to recovery
        except Exception:  # noqa: BLE001 - shutting down: log, never hang
            log.exception("closing the import runner failed")

    app.router.lifespan_context = lifespan
    return app


@dataclass(frozen=True)
class WorkerApp:
    """The app factory of the workers of ``run(workers=N)`` (pickled to each)."""

    store_uri: str
    storage_options: dict[str, Any] | None
    config: str | None
    scheduler: str | None
    log_level: str
    generations: str

    def __call__(self) -> Any:
        _logging(self.log_level, worker=True)
        return make_app(
            self.store_uri,
            storage_options=self.storage_options,
            config=self.config,
            scheduler=self.scheduler,
            generations=self.generations,
        )


def _logging(log_level: str, worker: bool = False) -> None:
    level = log_level.upper()
    logging.basicConfig(
        level=max(logging.INFO, getattr(logging, level, logging.INFO)),
        # a worker of several names itself: [pid]
        format="%(asctime)s %(levelname)s %(name)s"
        + ("[%(process)d]" if worker else "")
        + ": %(message)s",
    )
    logging.getLogger("vecstore.server").setLevel(getattr(logging, level, logging.INFO))


def uvicorn_config(app: Any, host: str, port: int, log_level: str, **extra: Any) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        http=_http_protocol(),
        host=host,
        port=port,
        log_level=log_level.lower() if log_level.lower() != "debug" else "info",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
        proxy_headers=False,  # the Host header names the index hosts; no proxy rewriting
        **extra,
    )


def _http_protocol() -> Any:
    """uvicorn's httptools protocol sending each response in one write
    (:mod:`vecstore.server.protocol`); uvicorn's choice without httptools."""
    try:
        from vecstore.server.protocol import CoalescingProtocol
    except ImportError:
        return "auto"
    return CoalescingProtocol


def run(
    store_uri: str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    config: str | None = None,
    scheduler: str | None = None,
    log_level: str = "info",
    storage_options: dict[str, Any] | None = None,
    workers: int = 1,
) -> None:
    """Serve ``store_uri`` on ``host:port`` with ``workers`` processes until
    SIGTERM / SIGINT."""
    import uvicorn

    if workers > 1:
        _run_workers(store_uri, host, port, config, scheduler, log_level, storage_options, workers)
        return
    _logging(log_level)
    app = make_app(store_uri, storage_options=storage_options, config=config, scheduler=scheduler)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises a captured SIGTERM / SIGINT after its graceful
            # shutdown (exit status -15 / KeyboardInterrupt): a stop on request
            # is a clean exit here, status 0.
            self._captured_signals.clear()

    server = Server(uvicorn_config(app, host, port, log_level))
    log.info("vecstore serve: %s on http://%s:%d", _safe(store_uri), host, port)
    server.run()


def _run_workers(
    store_uri: str,
    host: str,
    port: int,
    config: str | None,
    scheduler: str | None,
    log_level: str,
    storage_options: dict[str, Any] | None,
    workers: int,
) -> None:
    from uvicorn.supervisors import Multiprocess

    from vecstore.server import fresh

    _logging(log_level, worker=True)
    run_dir = tempfile.mkdtemp(prefix="vecstore-serve-")  # 0700
    try:
        factory = WorkerApp(
            store_uri, storage_options, config, scheduler, log_level,
            fresh.Generations.create(run_dir),
        )
        cfg = uvicorn_config(factory, host, port, log_level, factory=True, workers=workers)
        sock = cfg.bind_socket()
        log.info(
            "vecstore serve: %s on http://%s:%d, %d workers", _safe(store_uri), host, port, workers
        )
        # on SIGTERM / SIGINT: every worker gets SIGTERM and shuts down as a
        # single server does (imports abandoned to recovery); the parent
        # waits for all of them, then returns (exit status 0)
        Multiprocess(cfg, sockets=[sock]).run()
        sock.close()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _safe(uri: str) -> str:
    from vecstore.storage import Store

    try:
        return Store(uri).url()
    except Exception:  # noqa: BLE001 - only for the log line
        return "<store>"
