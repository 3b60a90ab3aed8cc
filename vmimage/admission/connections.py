"""What one client can hold of the webhook: connections, and the time to send a request.

asyncio gives each TLS connection its own 256 KiB read buffer as it is accepted, before the
handshake, and aiohttp caps neither connections nor the time a client takes to send its
request head. So 1,500 idle TLS connections took the webhook from 50 to 462 MiB, over its
pod's 256 Mi limit. ``GatedSite`` accepts plain TCP, admits at most ``max_connections``, and
only then starts TLS, with a deadline for the handshake; aiohttp's keep-alive timeout, set to
the same deadline, closes a connection that has not sent a complete request head in time.

At the cap a new connection evicts the oldest one that has never had a request answered and
has none in flight (an idle flood, a slow handshake, a trickled head), so the API server's
next connection still gets in. Connections that have been answered are never evicted: when
every admitted connection has been, the new one is refused.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger("vmimage.webhook")


class _Connection(asyncio.Protocol):
    """A plain TCP connection until the gate admits it, then the TLS layer's application
    protocol, forwarding to aiohttp's request handler."""

    def __init__(self, gate: ConnectionGate) -> None:
        self.gate = gate
        self.raw: asyncio.Transport | None = None
        self.handler: Any = None  # aiohttp's RequestHandler, once TLS is up
        self.early: list[bytes] = []  # data TLS hands over before the handler is connected
        self.answered = False  # a request of this connection has been answered
        self.in_flight = 0

    @property
    def evictable(self) -> bool:
        return not self.answered and not self.in_flight

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.raw is not None:  # the TLS layer's, once its handshake is done
            self._connect(transport)
            return
        assert isinstance(transport, asyncio.Transport)
        self.raw = transport
        if not self.gate.admit(self):
            transport.abort()
            return
        transport.pause_reading()  # the ClientHello waits in the kernel until TLS starts
        asyncio.get_running_loop().create_task(self._start_tls(transport))

    async def _start_tls(self, raw: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                raw, self, self.gate.context, server_side=True, ssl_handshake_timeout=self.gate.deadline
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError, RuntimeError):
            raw.abort()
            self.gate.forget(self)
            return
        if tls is None or tls.is_closing():
            self.gate.forget(self)
            return
        self._connect(tls)  # where the TLS layer did not already

    def _connect(self, tls: asyncio.BaseTransport) -> None:
        if self.handler is not None:
            return
        self.handler = self.gate.handler_factory()
        self.gate.by_handler[self.handler] = self
        self.handler.connection_made(tls)
        for data in self.early:
            self.handler.data_received(data)
        self.early.clear()

    def data_received(self, data: bytes) -> None:
        if self.handler is None:
            self.early.append(data)
        else:
            self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.handler is not None else None

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gate.forget(self)
        if self.handler is not None:
            self.handler.connection_lost(exc)

    def evict(self) -> None:
        if self.raw is not None:
            self.raw.abort()
        self.gate.forget(self)


class ConnectionGate:
    """The admitted connections, oldest first; the policy of the module docstring."""

    def __init__(self, context: ssl.SSLContext, max_connections: int, deadline: float) -> None:
        self.context = context
        self.handler_factory: Callable[[], Any] = lambda: None  # aiohttp's, set as the site starts
        self.max_connections, self.deadline = max_connections, deadline
        self.open: dict[_Connection, None] = {}  # insertion order: oldest first
        self.by_handler: dict[Any, _Connection] = {}
        self.evicted = self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        return _Connection(self)

    def admit(self, connection: _Connection) -> bool:
        if len(self.open) >= self.max_connections:
            victim = next((c for c in self.open if c.evictable), None)
            if victim is None:
                self.refused += 1
                if self.refused == 1 or self.refused % 1000 == 0:
                    log.warning("refused a connection: all %d are busy (%d so far)", self.max_connections, self.refused)
                return False
            victim.evict()
            self.evicted += 1
            if self.evicted == 1 or self.evicted % 1000 == 0:
                log.warning(
                    "at the cap of %d connections: closed the oldest idle one (%d so far)",
                    self.max_connections,
                    self.evicted,
                )
        self.open[connection] = None
        return True

    def forget(self, connection: _Connection) -> None:
        self.open.pop(connection, None)
        if connection.handler is not None:
            self.by_handler.pop(connection.handler, None)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Marks a connection busy while its request is handled, and answered after."""
        connection = self.by_handler.get(request.protocol)
        if connection is None:
            return await handler(request)
        connection.in_flight += 1
        try:
            response = await handler(request)
            connection.answered = True
            return response
        finally:
            connection.in_flight -= 1


class GatedSite(web.BaseSite):
    """An aiohttp site that serves TLS through a ``ConnectionGate``."""

    def __init__(self, runner: web.BaseRunner, gate: ConnectionGate, host: str, port: int) -> None:
        super().__init__(runner)
        self.gate, self._host, self._port = gate, host, port

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        self.gate.handler_factory = self._runner.server
        self._server = await asyncio.get_running_loop().create_server(
            self.gate, self._host, self._port, backlog=self._backlog, reuse_address=True
        )
