"""The mutating admission webhook server (aiohttp): /mutate, /healthz, /readyz.

Images come from the API server (a watch-backed cache) or from a file of image objects
(for tests and GitOps dry runs; re-read when it changes). The mutation itself is
`vmimage.admission.review`, a pure function.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from typing import Any, Protocol

from aiohttp import web

from vmimage.admission import MalformedReview, review
from vmimage.errors import ImageError
from vmimage.snapshot import load_images

log = logging.getLogger("vmimage.webhook")
MAX_REVIEW_BYTES = 3 * 2**20  # the API server sends objects up to ~1.5 MiB; a review wraps one


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


def make_app(source: ImageSource, strict: bool = False) -> web.Application:
    async def mutate(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "the body is not JSON"}, status=400)
        try:
            answer = review(body, source.snapshot(), strict=strict)
        except MalformedReview as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(answer)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok") if source.ready else web.Response(text="image cache not synced", status=503)

    app = web.Application(client_max_size=MAX_REVIEW_BYTES)
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


def serve(source: ImageSource, cert: str, key: str, host: str, port: int, strict: bool = False) -> None:
    """Run until interrupted (SIGINT/SIGTERM), with graceful shutdown."""
    context = tls_context(cert, key)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log.info("serving /mutate on https://%s:%d (%s)", host, port, json.dumps({"strict": strict}))
    web.run_app(make_app(source, strict), host=host, port=port, ssl_context=context, print=None, shutdown_timeout=10)
