"""The mutating admission webhook server (aiohttp): /mutate, /healthz, /readyz.

Images come from the API server (a watch-backed cache) or from a file of image objects
(for tests and GitOps dry runs; re-read when it changes). The mutation itself is
`vmimage.admission.mutation.review`, a pure function.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web

from vmimage.admission.connections import ConnectionGate, GatedSite
from vmimage.admission.mutation import ImagesNotReady, MalformedReview, parse_body, review
from vmimage.cluster.snapshot import load_images
from vmimage.errors import ImageError

log = logging.getLogger("vmimage.webhook")
MAX_REVIEW_BYTES = 3 * 2**20  # the API server sends objects up to ~1.5 MiB; a review wraps one
BODY_TIMEOUT = 10.0  # seconds for a review's body to arrive; the API server's own timeout is 10 s at most
CERT_POLL_SECONDS = 10.0
MAX_CONNECTIONS = 200  # RSS at the cap, all idle TLS: about 110 MiB (docs/benchmarks.md); the pod's limit is 256 Mi
HEADER_TIMEOUT = 15.0  # seconds for a TLS handshake, and for a request head (also the keep-alive idle time)
SMALL_BODY = 64 * 2**10  # a review up to this size is read at once (a VM's review is about 5-20 KiB)
LARGE_BODIES = 16 * 2**20  # bytes of larger reviews read at a time, over all connections


class ImageSource(Protocol):
    @property
    def ready(self) -> bool: ...

    def snapshot(self) -> list[dict[str, Any]]: ...


class FileImages:
    """Images from a YAML/JSON file, re-read whenever its modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1
        self._images: list[dict[str, Any]] = []
        self.snapshot()  # fail at start-up on a bad file, not on the first review

    @property
    def ready(self) -> bool:
        return True

    def snapshot(self) -> list[dict[str, Any]]:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError as exc:
            if self._mtime < 0:
                raise ImageError(self.path, exc.strerror or str(exc)) from None
            return self._images  # gone for a moment (an editor's save): keep the last good set
        if mtime != self._mtime:
            try:
                skipped: list[str] = []
                self._images = load_images(self.path, skipped)
                if skipped:
                    log.warning("%s: ignored what is not an image: %s", self.path, ", ".join(skipped))
            except ImageError as error:
                if self._mtime < 0:
                    raise
                log.warning("keeping the previous images: %s", error)
            self._mtime = mtime
        return self._images


class ByteBudget:
    """Bytes that requests take while they hold them, and wait for while others do."""

    def __init__(self, total: int) -> None:
        self.free = total
        self.changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def take(self, amount: int) -> AsyncIterator[None]:
        async with self.changed:
            await self.changed.wait_for(lambda: self.free >= amount)
            self.free -= amount
        try:
            yield
        finally:
            async with self.changed:
                self.free += amount
                self.changed.notify_all()


def make_app(
    source: ImageSource,
    strict: bool = False,
    body_timeout: float = BODY_TIMEOUT,
    middlewares: tuple[Any, ...] = (),
) -> web.Application:
    large_bodies = ByteBudget(LARGE_BODIES)

    async def read_body(request: web.Request) -> bytes:
        """The body. Bodies over SMALL_BODY share LARGE_BODIES, so memory stays bounded however
        many clients send big ones; a small one (every real review) never waits."""
        size = request.content_length or 0
        if size <= SMALL_BODY:
            return await request.read()
        async with large_bodies.take(size):
            return await request.read()

    async def mutate(request: web.Request) -> web.Response:
        if request.content_length is None:
            return web.json_response({"error": "a review needs a Content-Length"}, status=411)
        if request.content_length > MAX_REVIEW_BYTES:
            return web.json_response({"error": f"a review is at most {MAX_REVIEW_BYTES} bytes"}, status=413)
        try:  # a client that announces a body and stalls is not waited for
            raw = await asyncio.wait_for(read_body(request), body_timeout)
        except TimeoutError:
            return web.json_response({"error": f"the body did not arrive within {body_timeout:.0f} s"}, status=408)
        try:
            answer = review(parse_body(raw), source.snapshot(), strict=strict, complete=source.ready)
        except MalformedReview as error:
            return web.json_response({"error": str(error)}, status=400)
        except ImagesNotReady as error:  # not a denial: the API server applies its failurePolicy
            return web.json_response({"error": str(error)}, status=503)
        except (TypeError, AttributeError, RecursionError) as error:  # valid JSON, not a review
            log.info("malformed review: %s: %s", type(error).__name__, error)
            return web.json_response({"error": "the body is not a well-formed AdmissionReview"}, status=400)
        return web.json_response(answer)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok") if source.ready else web.Response(text="image cache not synced", status=503)

    app = web.Application(client_max_size=MAX_REVIEW_BYTES, middlewares=list(middlewares))
    app.router.add_post("/mutate", mutate)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ImageError(f"--cert {cert} / --key {key}", f"cannot load the TLS certificate and key ({exc})") from None
    return context


class CertificateReloader:
    """Loads the certificate and key again into the live TLS context when their files change
    (cert-manager renews them in place): new connections get the new certificate, open ones
    keep theirs. A pair that does not load (caught between the two writes) is tried again."""

    def __init__(self, context: ssl.SSLContext, cert: str, key: str, every: float = CERT_POLL_SECONDS) -> None:
        self.context, self.cert, self.key, self.every = context, cert, key, every
        self.loaded = self._stamp()

    def _stamp(self) -> tuple[int, int]:
        try:
            return os.stat(self.cert).st_mtime_ns, os.stat(self.key).st_mtime_ns
        except OSError:
            return (-1, -1)

    def check(self) -> bool:
        """Reload when the files changed; True when a new certificate was loaded."""
        stamp = self._stamp()
        if stamp == self.loaded or stamp == (-1, -1):
            return False
        try:
            self.context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            log.warning("keeping the current certificate: %s and %s do not load yet (%s)", self.cert, self.key, exc)
            return False
        self.loaded = stamp
        log.info("loaded the renewed certificate %s", self.cert)
        return True

    async def watch(self, app: web.Application) -> AsyncIterator[None]:
        async def poll() -> None:
            while True:
                await asyncio.sleep(self.every)
                self.check()

        task = asyncio.create_task(poll())
        yield
        task.cancel()


def serve(
    source: ImageSource,
    cert: str,
    key: str,
    host: str,
    port: int,
    strict: bool = False,
    body_timeout: float = BODY_TIMEOUT,
    cert_reload_seconds: float = CERT_POLL_SECONDS,
    max_connections: int = MAX_CONNECTIONS,
    header_timeout: float = HEADER_TIMEOUT,
) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully (open requests are answered)."""
    context = tls_context(cert, key)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    gate = ConnectionGate(context, max_connections, header_timeout)
    app = make_app(source, strict, body_timeout, middlewares=(gate.middleware,))
    app.cleanup_ctx.append(CertificateReloader(context, cert, key, cert_reload_seconds).watch)
    settings = {"strict": strict, "maxConnections": max_connections, "headerTimeout": header_timeout}
    try:
        asyncio.run(_serve(app, gate, host, port, json.dumps(settings)))
    except OSError as exc:
        raise ImageError(f"--host {host} --port {port}", f"cannot listen there ({exc.strerror or exc})") from None


async def _serve(app: web.Application, gate: ConnectionGate, host: str, port: int, settings: str) -> None:
    # aiohttp closes a connection that has not sent a complete request head within its
    # keep-alive timeout, from the connection's start as between requests: the head deadline.
    runner = web.AppRunner(app, keepalive_timeout=gate.deadline, shutdown_timeout=10)
    await runner.setup()
    try:
        await GatedSite(runner, gate, host, port).start()
        log.info("serving /mutate on https://%s:%d (%s)", host, port, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
