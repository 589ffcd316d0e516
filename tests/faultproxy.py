"""A fault-injecting HTTP reverse proxy for tests (stdlib only).

Put it in front of an emulator and point a client's endpoint at
``proxy.endpoint``::

    with FaultProxy("http://127.0.0.1:5000", fail_rate=0.1, drop_rate=0.05, seed=1) as proxy:
        fs = s3fs.S3FileSystem(endpoint_url=proxy.endpoint, ...)

Each request gets one fate, drawn in arrival order from a seeded
``random.Random`` (or taken first from ``plan``):

``forward``  relayed to the upstream server, the response relayed back.
``fail``     answered with a 500 or 503 (the upstream never sees it).
``drop``     the connection is closed before anything is sent upstream.
``lose``     relayed upstream, then the connection is closed without a
             response: the request took effect but the client cannot know.

``stats`` counts requests by fate. Rates can be changed while running
(``set_rates``), e.g. to set up a bucket fault-free and then break things.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["FATES", "FaultProxy"]

FATES = ("forward", "fail", "drop", "lose")

# Hop-by-hop headers are not forwarded (RFC 9110 7.6.1); bodies are
# re-framed with Content-Length.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}


class FaultProxy:
    """A threaded reverse proxy on 127.0.0.1 that injects faults."""

    def __init__(
        self,
        upstream: str,
        *,
        fail_rate: float = 0.0,
        drop_rate: float = 0.0,
        lose_rate: float = 0.0,
        statuses: Iterable[int] = (500, 503),
        seed: int = 0,
        plan: Iterable[str] = (),
        should_fault: Callable[[str, str], bool] | None = None,
        port: int = 0,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be http://HOST:PORT, got {upstream!r}")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.statuses = tuple(statuses)
        self.should_fault = should_fault
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._plan: list[str] = []
        self.stats: Counter[str] = Counter()
        self.set_rates(fail_rate=fail_rate, drop_rate=drop_rate, lose_rate=lose_rate)
        self.add_plan(plan)
        # seconds each forwarded request waits before it is relayed (a remote
        # store's latency); ``peak_in_flight``: the most requests relayed at once
        self.latency = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.proxy = self
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ control
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_rates(
        self, *, fail_rate: float = 0.0, drop_rate: float = 0.0, lose_rate: float = 0.0
    ) -> None:
        """Set the fault probabilities (their sum must be at most 1)."""
        rates = (fail_rate, drop_rate, lose_rate)
        if any(r < 0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to <= 1, got {rates}")
        with self._lock:
            self.fail_rate, self.drop_rate, self.lose_rate = rates

    def add_plan(self, fates: Iterable[str]) -> None:
        """Fates for the next requests, used before any random draw."""
        fates = list(fates)
        unknown = set(fates) - set(FATES)
        if unknown:
            raise ValueError(f"unknown fates {sorted(unknown)}; expected some of {FATES}")
        with self._lock:
            self._plan.extend(fates)

    def reset_stats(self) -> None:
        with self._lock:
            self.stats.clear()

    def faults(self) -> int:
        """How many requests were not simply forwarded."""
        with self._lock:
            return sum(n for fate, n in self.stats.items() if fate not in ("forward", "requests"))

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"faultproxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ internals
    def _fate(self, method: str, path: str) -> str:
        with self._lock:
            self.stats["requests"] += 1
            if self.should_fault is not None and not self.should_fault(method, path):
                fate = "forward"
            elif self._plan:
                fate = self._plan.pop(0)
            else:
                r = self._rng.random()
                if r < self.fail_rate:
                    fate = "fail"
                elif r < self.fail_rate + self.drop_rate:
                    fate = "drop"
                elif r < self.fail_rate + self.drop_rate + self.lose_rate:
                    fate = "lose"
                else:
                    fate = "forward"
            self.stats[fate] += 1
            return fate

    def _status(self) -> int:
        with self._lock:
            return self._rng.choice(self.statuses)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up mid-response are expected here; stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _handle(self) -> None:
        proxy = self.server.proxy
        body = self._body()
        fate = proxy._fate(self.command, self.path)
        if fate == "drop":
            self._drop()
            return
        if fate == "fail":
            status = proxy._status()
            payload = f"injected fault: HTTP {status}".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        with proxy._lock:
            proxy.in_flight += 1
            proxy.peak_in_flight = max(proxy.peak_in_flight, proxy.in_flight)
        try:
            if proxy.latency:
                time.sleep(proxy.latency)
            self._forward(proxy, body, fate)
        finally:
            with proxy._lock:
                proxy.in_flight -= 1

    def _forward(self, proxy: FaultProxy, body: bytes, fate: str) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            resp_headers = [
                (k, v)
                for k, v in resp.getheaders()
                if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"
            ]
            status, reason = resp.status, resp.reason
            upstream_length = resp.getheader("Content-Length")
        finally:
            conn.close()
        if fate == "lose":
            self._drop()
            return
        self.send_response(status, reason)
        for k, v in resp_headers:
            self.send_header(k, v)
        if self.command == "HEAD" or status in (204, 304) or 100 <= status < 200:
            if upstream_length is not None:
                self.send_header("Content-Length", upstream_length)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle  # noqa: N815
