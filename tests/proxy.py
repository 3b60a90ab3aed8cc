"""Proxies on loopback that stand in for a vCenter (or a network) that fails mid-upload: a TCP
proxy that cuts any connection after it has carried N bytes upstream, and an HTTPS proxy that
ends a session mid-transfer or makes a transfer slow."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx


class CuttingProxy:
    def __init__(self, upstream: tuple[str, int], cut_after: int, dead_after_cut: bool = False) -> None:
        """``dead_after_cut``: once a connection is cut, every new one is closed at once (the
        network stays down, so cleanup calls fail too)."""
        self.upstream = upstream
        self.cut_after = cut_after
        self.dead_after_cut = dead_after_cut
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            if self.dead_after_cut and self.cuts:
                client.close()
                continue
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        carried = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                carried += len(data)
                if counted and carried > self.cut_after:
                    self.cuts += 1
                    break
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def start(self) -> CuttingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()


@contextmanager
def cutting_proxy(upstream: tuple[str, int], cut_after: int, dead_after_cut: bool = False) -> Iterator[CuttingProxy]:
    proxy = CuttingProxy(upstream, cut_after, dead_after_cut).start()
    try:
        yield proxy
    finally:
        proxy.stop()


class FaultProxy:
    """An HTTPS reverse proxy in front of the simulator (TLS ends here, with the simulator's own
    certificate) that sees each request and can interfere, as a real vCenter's session expiry
    would:

    - ``expire_on_put``: the first PUT of a file whose name ends with it is read whole, its API
      session is logged out upstream, and it is answered 401 (the session ended mid-transfer);
    - ``slow_put``: each PUT waits that many seconds before it goes upstream (a long transfer);
    - ``answer``: a request whose path is a key is answered with that HTTP status (or a
      (status, JSON body) pair), without reaching the simulator (a refused login, a server error);
    - ``before``: called with each request's method and path before it goes upstream (in a
      worker thread), so a test can make another writer's change at an exact moment;
    - ``password``: a login (POST of a session, either API flavour) with another password is
      answered 401, as a vCenter whose account has this password would (the simulator takes any).

    ``requests`` records (method, path, query) of everything that came through, in order."""

    def __init__(
        self,
        upstream: str,
        cert: Path,
        key: Path,
        expire_on_put: str | None = None,
        slow_put: float = 0.0,
        answer: dict[str, int | tuple[int, Any]] | None = None,
        password: str | None = None,
        before: Callable[[str, str], None] | None = None,
    ) -> None:
        self.upstream, self.cert, self.key = upstream, cert, key
        self.before = before
        self.expire_on_put, self.slow_put, self.password = expire_on_put, slow_put, password
        self.answer = answer or {}
        self.requests: list[tuple[str, str, str]] = []
        self.expired = 0
        self.in_put = 0  # PUTs in flight
        self.during_put: list[tuple[str, str, str]] = []  # requests that came while a PUT was in flight
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        from aiohttp import web

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        self._client = httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(self.cert)), timeout=120)
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _forward(self, request):
        from aiohttp import web

        seen = (request.method, request.path, request.query_string)
        self.requests.append(seen)
        if request.path in self.answer:
            await request.read()
            answer = self.answer[request.path]
            if isinstance(answer, tuple):
                return web.json_response(answer[1], status=answer[0])
            return web.Response(status=answer, text="fault injected by the test proxy")
        if self.before is not None:
            await asyncio.to_thread(self.before, request.method, request.path)
        if self.in_put and request.method != "PUT":
            self.during_put.append(seen)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        login = request.method == "POST" and request.path in ("/api/session", "/rest/com/vmware/cis/session")
        if login and self.password is not None and _basic_password(request.headers) != self.password:
            unauthenticated = {
                "error_type": "UNAUTHENTICATED",
                "messages": [{"default_message": "Authentication required."}],
            }
            return web.json_response(unauthenticated, status=401)
        if request.method == "PUT":
            self.in_put += 1
            try:
                if self.expire_on_put and not self.expired and request.path.endswith(self.expire_on_put):
                    self.expired += 1
                    token = request.headers.get("vmware-api-session-id", "")
                    await self._client.delete(
                        f"https://{self.upstream}/api/session", headers={"vmware-api-session-id": token}
                    )
                    return web.Response(status=401, text="session expired")
                if self.slow_put:
                    await asyncio.sleep(self.slow_put)
                upstream = await self._client.request(
                    request.method, f"https://{self.upstream}{request.path_qs}", content=body, headers=headers
                )
            finally:
                self.in_put -= 1
        else:
            upstream = await self._client.request(
                request.method, f"https://{self.upstream}{request.path_qs}", content=body, headers=headers
            )
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        return web.Response(status=upstream.status_code, body=upstream.content, headers=out)

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(30)
        return self

    def stop(self) -> None:
        async def close() -> None:
            await self._runner.cleanup()
            await self._client.aclose()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def _basic_password(headers) -> str | None:
    import base64

    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    return base64.b64decode(value).decode(errors="replace").partition(":")[2]


HOP_BY_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}


@contextmanager
def fault_proxy(upstream: str, cert: Path, key: Path, **faults) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, cert, key, **faults).start()
    try:
        yield proxy
    finally:
        proxy.stop()
