"""uvicorn's httptools protocol with each response sent in one write.

uvicorn writes a response's status line and headers (ASGI
``http.response.start``) and its body (``http.response.body``) with two
``transport.write`` calls, and uvloop sends each at once: two TCP segments
per answer. The client wakes up on the first, finds no body, sleeps, and
wakes again on the second; on loopback the sender pays for each wake-up
inside its ``send``. py-spy put 30% of a query's server time on the header
write (docs/server.md, Benchmark).

:class:`CoalescingProtocol` hands uvicorn a transport proxy that holds the
writes of one response and sends them joined, in one ``send``, when the
response is complete (uvicorn's ``on_response_complete``), when the
connection closes, or at the latest on the event loop's next iteration
(a streamed response, a ``100 Continue``): nothing waits longer than the
step that wrote it. Everything else is uvicorn's, unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport proxy: writes are held and sent joined by :meth:`flush`
    (called by the protocol when a response is complete, by :meth:`close`,
    and scheduled on the loop's next iteration by the first held write)."""

    __slots__ = ("_transport", "_loop", "_held", "_handle")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._handle: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._held.append(bytes(data))
        if self._handle is None:
            self._handle = self._loop.call_soon(self.flush)

    def flush(self) -> None:
        held = self._held
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not held:
            return
        self._held = []
        if self._transport.is_closing():
            return
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def __getattr__(self, name: str) -> Any:  # everything else: the real transport's
        return getattr(self._transport, name)


class CoalescingProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol sending each response in one write."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        proxy: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(proxy)

    def on_response_complete(self) -> None:
        self.transport.flush()  # type: ignore[attr-defined]
        super().on_response_complete()
