"""The vSphere Automation REST transport: sessions, both API flavours, retries, errors.

vCenter 7.0U2 and later serve ``/api/...``; older ones (and govmomi's simulator) only
``/rest/com/vmware/...``, which wraps bodies in ``create_spec``/``spec`` and responses
in ``{"value": ...}`` and writes actions as ``?~action=``. `VapiSession` logs in, finds
the flavour, re-logs in once on 401, retries idempotent calls on connection errors and
503 with exponential backoff, and turns every failure into a `VSphereError`.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from vmimage.errors import ImageError
from vmimage.vsphere.settings import ConnectionSettings

SESSION_HEADER = "vmware-api-session-id"
Flavour = Literal["api", "rest"]


class VSphereError(ImageError):
    """vCenter refused or failed a call; the message names the call and vCenter's reason."""

    def __init__(self, server: str, reason: str, status: int | None = None, error_type: str | None = None) -> None:
        super().__init__(f"vCenter {server}", reason)
        self.status = status
        self.error_type = error_type


class NotFoundError(VSphereError):
    pass


class AlreadyExistsError(VSphereError):
    pass


class _Retryable(Exception):
    """A 503 on an idempotent call, retried like a connection error."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response


@dataclass(frozen=True)
class Call:
    """One logical operation, spelled for both flavours."""

    method: str
    rest: str  # path under /rest, e.g. /com/vmware/content/library/item/id:X
    api: str  # path under /api, e.g. /content/library/item/X
    rest_body: Any = None
    api_body: Any = None
    params: dict[str, str] | None = None
    rest_action: str | None = None  # ?~action= on /rest, ?action= on /api
    idempotent: bool = True
    api_headers: dict[str, str] | None = None  # /api takes some parameters as headers (client_token)
    api_only: bool = False  # only under /api (vCenter 7.0 U2 and later), whichever flavour logged in


def _error_type(response: httpx.Response) -> tuple[str | None, str]:
    """vAPI error type and message from either flavour's error body (or plain text)."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text.strip()[:300]
    if isinstance(body, dict):
        detail = body.get("value", body) if isinstance(body.get("value", body), dict) else body
        error_type = detail.get("error_type") or body.get("type")
        messages = detail.get("messages") or []
        text = "; ".join(m.get("default_message", "") for m in messages if isinstance(m, dict))
        if not text and not error_type:
            text = str(body)[:300]
        return (error_type.split(".")[-1] if error_type else None), text
    return None, str(body)[:300]


def _untrusted_certificate(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    """The TLS verification failure behind a connection error, if that is what it is: no retry mends it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class VapiSession:
    """An authenticated session on one vCenter; use as a context manager or call close()."""

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        timeout: float = 60.0,
        attempts: int | None = None,
        backoff: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        # retries: 5 attempts with exponential backoff from 0.5 s, unless the environment says otherwise
        self.attempts = attempts if attempts is not None else int(os.environ.get("VMIMAGE_HTTP_ATTEMPTS", "5"))
        self.backoff = backoff if backoff is not None else float(os.environ.get("VMIMAGE_HTTP_BACKOFF", "0.5"))
        self.flavour: Flavour | None = None
        self._token: str | None = None
        self._login_lock = threading.Lock()  # threads share a session: one logs in, the others wait
        self.http = httpx.Client(
            base_url=settings.base_url,
            verify=settings.ssl_context(),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def __enter__(self) -> VapiSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._token is not None:
            path = "/api/session" if self.flavour == "api" else "/rest/com/vmware/cis/session"
            with contextlib.suppress(httpx.HTTPError):  # the session expires on its own
                self.http.delete(path, headers={SESSION_HEADER: self._token})
            self._token = None
        self.http.close()

    # --- errors ---------------------------------------------------------------------------

    def error(self, reason: str, response: httpx.Response | None = None) -> VSphereError:
        if response is None:
            return VSphereError(self.settings.server, reason)
        error_type, message = _error_type(response)
        detail = f"{reason}: HTTP {response.status_code}" + (f" {error_type}" if error_type else "")
        detail += f" ({message})" if message else ""
        cls = VSphereError
        if response.status_code == 404 or error_type == "not_found":
            cls = NotFoundError
        elif error_type == "already_exists":
            cls = AlreadyExistsError
        return cls(self.settings.server, detail, response.status_code, error_type)

    def _transport_error(self, what: str, exc: httpx.HTTPError) -> VSphereError:
        if (untrusted := _untrusted_certificate(exc)) is not None:
            return VSphereError(
                self.settings.server,
                f"{what}: TLS: vCenter's certificate is not trusted ({untrusted.verify_message}): set vsphere:caFile "
                "to the CA that signed it (or vsphere:allowUnverifiedSsl: true to skip the check)",
            )
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
        return VSphereError(self.settings.server, f"{what}: {kind} ({type(exc).__name__}: {exc})")

    # --- login ----------------------------------------------------------------------------

    def login(self) -> None:
        """Create a session: /api first, /rest when the server has no /api (older vCenter, vcsim)."""
        auth = (self.settings.user, self.settings.password.get_secret_value())
        attempts = [("api", "/api/session"), ("rest", "/rest/com/vmware/cis/session")]
        if self.flavour is not None:
            attempts = [a for a in attempts if a[0] == self.flavour]
        for flavour, path in attempts:
            response = self._retrying(lambda p=path: self.http.post(p, auth=auth), f"POST {path}")
            if response.status_code in (404, 405) and flavour == "api":
                continue
            if response.status_code == 401:
                raise VSphereError(
                    self.settings.server,
                    f"login as {self.settings.user!r} refused (HTTP 401): check vsphere:user and vsphere:password",
                    401,
                )
            if not response.is_success:  # /api answers 201 Created, /rest 200
                raise self.error(f"login at {path}", response)
            try:
                body = response.json()
                token = body["value"] if isinstance(body, dict) else body
            except (ValueError, KeyError):
                token = None
            if not isinstance(token, str) or not token:
                raise VSphereError(
                    self.settings.server,
                    f"login at {path} answered HTTP {response.status_code} without a session token "
                    f"({response.text[:60]!r}); is a proxy or a login page in the way?",
                )
            self._token = token
            self.flavour = flavour  # type: ignore[assignment]
            return
        raise VSphereError(self.settings.server, "no vSphere Automation API at /api or /rest: is this a vCenter?")

    # --- calls ----------------------------------------------------------------------------

    def _retrying(self, send, what: str) -> httpx.Response:
        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, _Retryable | httpx.TransportError) and _untrusted_certificate(exc) is None

        def attempt() -> httpx.Response:
            response = send()
            if response.status_code == 503:
                raise _Retryable(response)
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=8),
            retry=retry_if_exception(retryable),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            return exc.response
        except httpx.HTTPError as exc:
            raise self._transport_error(what, exc) from None

    def _send_once(self, send, what: str) -> httpx.Response:
        try:
            return send()
        except httpx.HTTPError as exc:
            raise self._transport_error(what, exc) from None

    def _current_token(self) -> str:
        with self._login_lock:
            if self._token is None:
                self.login()
            return self._token or ""

    def renew(self, stale: str) -> None:
        """Log in again after a 401, unless another thread already did since ``stale`` was used."""
        with self._login_lock:
            if self._token in (stale, None):
                self._token = None
                self.login()

    def call(self, call: Call, *, allow: Iterable[int] = ()) -> Any:
        """Run one operation and return its (unwrapped) result; statuses in ``allow`` return None."""
        for relogin in (True, False):
            token = self._current_token()
            assert self.flavour is not None
            rest = self.flavour == "rest" and not call.api_only
            path = ("/rest" + call.rest) if rest else ("/api" + call.api)
            params = dict(call.params or {})
            if call.rest_action:
                params["~action" if rest else "action"] = call.rest_action
            body = call.rest_body if rest else call.api_body
            what = f"{call.method} {path}"

            headers = {SESSION_HEADER: token, **({} if rest else call.api_headers or {})}

            def send(path=path, params=params, body=body, headers=headers) -> httpx.Response:
                return self.http.request(call.method, path, params=params or None, json=body, headers=headers)

            response = self._retrying(send, what) if call.idempotent else self._send_once(send, what)
            if response.status_code == 401 and relogin:
                self.renew(token)
                continue
            if response.status_code in allow:
                return None
            if response.status_code >= 400:
                raise self.error(what, response)
            if not response.content:
                return None
            try:
                result = response.json()
            except ValueError:
                raise VSphereError(
                    self.settings.server,
                    f"{what}: the answer is not JSON ({response.text[:80]!r}); is a proxy in the way?",
                ) from None
            return result.get("value") if rest and isinstance(result, dict) and set(result) <= {"value"} else result
        raise AssertionError("unreachable")

    def endpoint(self, uri: str) -> str:
        """A transfer URI vCenter returned, addressed through the configured server.

        vCenter names itself by its own FQDN in upload/download URIs, which need not
        resolve (or route) where Pulumi runs; the path is what identifies the transfer.
        """
        parsed = httpx.URL(uri)
        return str(httpx.URL(self.settings.base_url).copy_with(path=parsed.path, query=parsed.query or None))

    def session_headers(self) -> dict[str, str]:
        return {SESSION_HEADER: self._current_token()}
