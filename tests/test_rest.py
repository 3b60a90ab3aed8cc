"""The REST transport against scripted vCenters: flavours, re-login, retries, errors, secrets."""

from __future__ import annotations

import json

import httpx
import pytest

from vmimage.errors import ImageError
from vmimage.vsphere.content_library import ContentLibraryClient
from vmimage.vsphere.rest import AlreadyExistsError, NotFoundError, VapiSession, VSphereError
from vmimage.vsphere.settings import ConnectionSettings, resolve_settings

PASSWORD = "hunter2-do-not-leak"
SETTINGS = ConnectionSettings(server="vc.example.test", user="admin", password=PASSWORD)


class Scripted:
    """A fake vCenter: a list of (method, path) → response rules, with every request recorded."""

    def __init__(self, handler):
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def session(self, **options) -> VapiSession:
        return VapiSession(SETTINGS, transport=httpx.MockTransport(self), backoff=0.001, **options)

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" + (f"?{r.url.query.decode()}" if r.url.query else "") for r in self.requests]


def api_vcenter(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/api/session":
        return httpx.Response(201 if request.method == "POST" else 204, json="token-1")
    if request.url.path == "/api/content/library/item/item-1":
        return httpx.Response(200, json={"id": "item-1", "name": "photon", "type": "ovf", "content_version": "7"})
    if request.url.path == "/api/content/library/item" and request.url.params.get("action") == "find":
        assert json.loads(request.content) == {"library_id": "lib", "name": "photon"}
        return httpx.Response(200, json=["item-1"])
    return httpx.Response(404, text="not found")


def test_api_flavour_paths_and_bodies():
    fake = Scripted(lambda r: httpx.Response(201, json="t") if r.url.path == "/api/session" else api_vcenter(r))
    with fake.session() as session:
        client = ContentLibraryClient(session)
        assert client.find_items("lib", "photon") == ["item-1"]
        item = client.get_item("item-1")
        assert session.flavour == "api"
    assert item.content_version == "7"
    assert fake.paths()[:3] == [
        "POST /api/session",
        "POST /api/content/library/item?action=find",
        "GET /api/content/library/item/item-1",
    ]
    assert all(r.headers.get("vmware-api-session-id") == "t" for r in fake.requests[1:3])


def rest_vcenter(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.startswith("/api/"):
        return httpx.Response(404, text="404 page not found")
    if path == "/rest/com/vmware/cis/session":
        return httpx.Response(200, json={"value": "rest-token"})
    if path == "/rest/com/vmware/content/library/item" and request.url.params.get("~action") == "find":
        assert json.loads(request.content) == {"spec": {"library_id": "lib", "name": "photon"}}
        return httpx.Response(200, json={"value": None})
    return httpx.Response(404, text="404 page not found")


def test_rest_flavour_fallback_wraps_and_unwraps():
    fake = Scripted(rest_vcenter)
    with fake.session() as session:
        assert ContentLibraryClient(session).find_items("lib", "photon") == []
        assert session.flavour == "rest"
    assert fake.paths()[:3] == [
        "POST /api/session",
        "POST /rest/com/vmware/cis/session",
        "POST /rest/com/vmware/content/library/item?~action=find",
    ]


def test_relogin_once_on_401():
    tokens = iter(["first", "second"])

    def handler(request):
        if request.url.path == "/api/session":
            return httpx.Response(200, json=next(tokens)) if request.method == "POST" else httpx.Response(204)
        if request.headers["vmware-api-session-id"] == "first":
            return httpx.Response(401)
        return api_vcenter(request)

    fake = Scripted(handler)
    with fake.session() as session:
        assert ContentLibraryClient(session).get_item("item-1").name == "photon"
    assert fake.paths()[:4] == [
        "POST /api/session",
        "GET /api/content/library/item/item-1",
        "POST /api/session",
        "GET /api/content/library/item/item-1",
    ]


def test_idempotent_calls_retry_503_and_connection_errors():
    failures = iter([httpx.Response(503), "drop", httpx.Response(503)])

    def handler(request):
        if request.url.path == "/api/session":
            return httpx.Response(200, json="t")
        failure = next(failures, None)
        if failure == "drop":
            raise httpx.ConnectError("connection reset by peer")
        return failure or api_vcenter(request)

    fake = Scripted(handler)
    with fake.session() as session:
        assert ContentLibraryClient(session).get_item("item-1").id == "item-1"
    assert fake.paths().count("GET /api/content/library/item/item-1") == 4


def test_non_idempotent_calls_are_not_retried():
    def handler(request):
        if request.url.path == "/api/session":
            return httpx.Response(200, json="t")
        raise httpx.ReadError("connection cut")

    fake = Scripted(handler)
    with (
        fake.session() as session,
        pytest.raises(VSphereError, match="POST /api/content/library/item/updatesession/s-1/file: connection failed"),
    ):
        ContentLibraryClient(session).add_file("s-1", "x.ovf", 10)  # a second add would announce the file twice
    assert fake.paths().count("POST /api/content/library/item/updatesession/s-1/file?action=add") == 1


def test_retries_give_up_with_a_clear_error():
    def handler(request):
        if request.url.path == "/api/session":
            return httpx.Response(200, json="t")
        return httpx.Response(
            503,
            json={
                "error_type": "SERVICE_UNAVAILABLE",
                "messages": [{"default_message": "Content library service is starting"}],
            },
        )

    fake = Scripted(handler)
    with fake.session(attempts=3) as session, pytest.raises(VSphereError) as caught:
        ContentLibraryClient(session).get_item("item-1")
    assert "HTTP 503 SERVICE_UNAVAILABLE (Content library service is starting)" in str(caught.value)
    assert fake.paths().count("GET /api/content/library/item/item-1") == 3


def test_timeouts_are_named():
    def handler(request):
        raise httpx.ReadTimeout("timed out")

    with Scripted(handler).session(attempts=2) as session, pytest.raises(VSphereError, match="timed out"):
        session.login()


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(404, text="404 page not found"), NotFoundError),
        (
            httpx.Response(400, json={"type": "com.vmware.vapi.std.errors.already_exists", "value": {}}),
            AlreadyExistsError,
        ),
        (httpx.Response(404, json={"error_type": "NOT_FOUND", "messages": []}), NotFoundError),
    ],
)
def test_error_types(response, error):
    def handler(request):
        return httpx.Response(200, json="t") if request.url.path == "/api/session" else response

    with Scripted(handler).session() as session, pytest.raises(error):
        ContentLibraryClient(session).get_item("x")


def test_refused_login_names_the_user_and_never_the_password():
    fake = Scripted(lambda r: httpx.Response(401))
    with fake.session() as session, pytest.raises(VSphereError) as caught:
        session.login()
    message = str(caught.value)
    assert "login as 'admin' refused (HTTP 401): check vsphere:user and vsphere:password" in message
    assert PASSWORD not in message and PASSWORD not in repr(SETTINGS)


def test_transfer_endpoints_go_through_the_configured_server():
    with Scripted(api_vcenter).session() as session:
        assert session.endpoint("https://vcsa-01.internal:443/cls/data/abc/disk.vmdk?x=1") == (
            "https://vc.example.test/cls/data/abc/disk.vmdk?x=1"
        )


# --- settings ------------------------------------------------------------------------------


def test_settings_config_wins_over_environment():
    settings = resolve_settings(
        {
            "vsphere:vsphereServer": "https://vc1:8443/",
            "vsphere:user": "a",
            "vsphere:password": "p",
            "vsphere:allowUnverifiedSsl": "true",
        },
        {"VSPHERE_SERVER": "vc2", "VSPHERE_USER": "b", "VSPHERE_PASSWORD": "q"},
    )
    assert (settings.server, settings.host, settings.port, settings.user) == ("vc1:8443", "vc1", 8443, "a")
    assert settings.password.get_secret_value() == "p" and settings.allow_unverified_ssl


def test_settings_environment_fallback():
    settings = resolve_settings(
        {}, {"VSPHERE_SERVER": "vc2", "VSPHERE_USER": "b", "VSPHERE_PASSWORD": "q", "VSPHERE_ALLOW_UNVERIFIED_SSL": "0"}
    )
    assert (settings.server, settings.port, settings.allow_unverified_ssl) == ("vc2", 443, False)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "vsphere:vsphereServer: not set"),
        ({"vsphere:vsphereServer": "vc"}, "vsphere:user: not set"),
        ({"vsphere:vsphereServer": "vc", "vsphere:user": "u"}, "pulumi config set --secret vsphere:password"),
        (
            {
                "vsphere:vsphereServer": "vc",
                "vsphere:user": "u",
                "vsphere:password": "p",
                "vsphere:allowUnverifiedSsl": "maybe",
            },
            "vsphere:allowUnverifiedSsl: 'maybe' is not a boolean",
        ),
    ],
)
def test_settings_errors_say_how_to_fix(config, message):
    with pytest.raises(ImageError, match=message.replace("$", r"\$")):
        resolve_settings(config, {})


def test_bad_ca_file_is_named(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    settings = ConnectionSettings(server="vc", user="u", password="p", ca_file=str(bad))
    with pytest.raises(ImageError, match="vsphere:caFile .* cannot load the CA certificate"):
        settings.ssl_context()


def test_an_answer_that_is_not_json_is_a_clear_error():
    def handler(request):
        if request.url.path == "/api/session":
            return httpx.Response(201, json="t")
        return httpx.Response(200, text="<html>Gateway login</html>")

    with Scripted(handler).session() as session, pytest.raises(VSphereError, match="the answer is not JSON"):
        ContentLibraryClient(session).get_item("x")


@pytest.mark.parametrize("flavour", ["api", "rest"])
def test_a_create_retried_after_a_lost_connection_carries_the_same_client_token(flavour):
    """vCenter answers a repeated token with the item the first attempt made: a retry makes no second item."""
    attempts: list[str] = []

    def vcenter(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/session":
            return httpx.Response(201, json="t") if flavour == "api" else httpx.Response(404)
        if request.url.path == "/rest/com/vmware/cis/session":
            return httpx.Response(200, json={"value": "t"})
        if request.url.path in ("/api/content/library/item", "/rest/com/vmware/content/library/item"):
            token = (
                request.headers.get("client_token") if flavour == "api" else json.loads(request.content)["client_token"]
            )
            attempts.append(token)
            if len(attempts) == 1:
                raise httpx.ReadError("connection lost after the request was sent")
            return httpx.Response(200, json="item-9" if flavour == "api" else {"value": "item-9"})
        return httpx.Response(404)

    with Scripted(vcenter).session() as session:
        assert ContentLibraryClient(session).create_item("lib", "photon", "", "OVF") == "item-9"
    assert len(attempts) == 2 and attempts[0] == attempts[1] and attempts[0]


def test_a_login_answer_that_is_not_json_is_a_clear_error():
    fake = Scripted(lambda r: httpx.Response(200, text="<html>Please sign in</html>"))
    with fake.session() as session, pytest.raises(VSphereError) as caught:
        ContentLibraryClient(session).get_item("item-1")
    assert "without a session token" in str(caught.value) and "is a proxy or a login page in the way?" in str(
        caught.value
    )


def test_an_upload_answered_401_renews_the_session_and_sends_the_file_again():
    logins: list[str] = []
    puts: list[tuple[str, bytes]] = []

    def vcenter(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/session":
            logins.append(f"token-{len(logins) + 1}")
            return httpx.Response(201, json=logins[-1])
        if request.method == "PUT":
            puts.append((request.headers["vmware-api-session-id"], request.read()))
            return httpx.Response(401 if len(puts) == 1 else 200)
        return httpx.Response(404)

    with Scripted(vcenter).session() as session:
        client = ContentLibraryClient(session)
        session.login()

        def chunks():
            return iter([b"abc", b"def"])

        client.upload("https://vc.example.test/cis/data/x/disk.vmdk", chunks(), 6, again=chunks)
    assert puts == [("token-1", b"abcdef"), ("token-2", b"abcdef")]


def test_an_upload_answered_401_that_cannot_be_sent_again_says_to_run_again():
    def vcenter(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/session":
            return httpx.Response(201, json="t")
        return httpx.Response(401) if request.method == "PUT" else httpx.Response(404)

    with Scripted(vcenter).session() as session, pytest.raises(VSphereError) as caught:
        ContentLibraryClient(session).upload("https://vc.example.test/cis/data/x/m.vmdk", iter([b"abc"]), 3)
    assert "vCenter ended the session during the transfer (HTTP 401)" in str(caught.value)
    assert "run `pulumi up` again" in str(caught.value)


class UpdateSessionVCenter:
    """A fake vCenter (/api) whose update sessions behave as vSphere documents them: added files
    replace same-named ones, removed files go, and nothing changes until the session completes."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.item_files = dict(files)
        self.sessions: dict[str, dict] = {}
        self.calls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, action = request.url.path, request.url.params.get("action")
        self.calls.append(f"{request.method} {path}" + (f"?action={action}" if action else ""))
        if path == "/api/session":
            return httpx.Response(201, json="t")
        if path == "/api/content/library/item/file":
            return httpx.Response(200, json=[{"name": n, "size": len(d)} for n, d in self.item_files.items()])
        if path == "/api/content/library/item/update-session" and request.method == "POST":
            session_id = f"s-{len(self.sessions) + 1}"
            self.sessions[session_id] = {"state": "ACTIVE", "add": {}, "remove": set()}
            return httpx.Response(201, json=session_id)
        parts = path.split("/")
        if path.startswith("/api/content/library/item/update-session/"):
            session = self.sessions[parts[-1]]
            if action == "complete":
                for name in session["remove"]:
                    self.item_files.pop(name, None)
                self.item_files.update(session["add"])
                session["state"] = "DONE"
            elif action == "cancel":
                session["state"] = "CANCELED"
            return httpx.Response(200, json={"id": parts[-1], "state": session["state"]})
        if path.startswith("/api/content/library/item/updatesession/") and path.endswith("/file"):
            session = self.sessions[parts[-2]]
            body = json.loads(request.content)
            if action == "remove":
                session["remove"].add(body["file_name"])
                return httpx.Response(204)
            if action == "add":
                uri = f"https://vc.example.test/cis/data/{parts[-2]}/{body['name']}"
                return httpx.Response(200, json={"name": body["name"], "upload_endpoint": {"uri": uri}})
        if request.method == "PUT" and path.startswith("/cis/data/"):
            self.sessions[parts[-2]]["add"][parts[-1]] = request.read()
            return httpx.Response(200)
        return httpx.Response(404)


def test_an_update_removes_the_files_the_new_package_does_not_have(tmp_path):
    from vmimage.descriptor.samples import SAMPLES, write_ova
    from vmimage.vsphere.publish import upload_source

    old = write_ova(tmp_path / "photon-5.0.ova", SAMPLES[0])
    new = write_ova(tmp_path / "photon-5.1.ova", SAMPLES[0])
    vcenter = UpdateSessionVCenter({"photon-5.0.ovf": b"old", "photon-5.0.mf": b"old", "photon-5.0-disk1.vmdk": b"old"})
    with Scripted(vcenter).session() as session:
        result = upload_source(ContentLibraryClient(session), "item-1", str(new))
    assert result.removed == ["photon-5.0-disk1.vmdk", "photon-5.0.mf", "photon-5.0.ovf"]
    assert sorted(vcenter.item_files) == ["photon-5.1-disk1.vmdk", "photon-5.1.mf", "photon-5.1.ovf"]
    removes = [i for i, call in enumerate(vcenter.calls) if call.endswith("?action=remove")]
    adds = [i for i, call in enumerate(vcenter.calls) if call.endswith("?action=add")]
    assert len(removes) == 3 and max(removes) < min(adds)  # asked for first: a refusal uploads nothing
    assert old.exists()


def test_remove_file_speaks_both_flavours():
    rest_calls: list[httpx.Request] = []

    def rest_vcenter(request: httpx.Request) -> httpx.Response:
        rest_calls.append(request)
        if request.url.path == "/api/session":
            return httpx.Response(404)
        if request.url.path == "/rest/com/vmware/cis/session":
            return httpx.Response(200, json={"value": "t"})
        return httpx.Response(200, json={})

    with Scripted(rest_vcenter).session() as session:
        ContentLibraryClient(session).remove_file("s-9", "old.vmdk")
    (last,) = [r for r in rest_calls if "updatesession" in r.url.path]
    assert last.url.path == "/rest/com/vmware/content/library/item/updatesession/file/id:s-9"
    assert last.url.params["~action"] == "remove" and json.loads(last.content) == {"file_name": "old.vmdk"}


def test_an_untrusted_certificate_is_named_as_tls_and_not_retried(tmp_path):
    """A TLS verification failure is no transient error: one attempt, and a message that says
    what to set, instead of five retries and "connection failed"."""
    import socket
    import ssl
    import threading

    from tests.tls import write_self_signed

    cert, key = write_self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    handshakes = []

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            handshakes.append(1)
            try:
                context.wrap_socket(client, server_side=True).close()
            except (OSError, ssl.SSLError):
                client.close()

    threading.Thread(target=serve, daemon=True).start()
    server = f"127.0.0.1:{listener.getsockname()[1]}"
    settings = ConnectionSettings(server=server, user="admin", password=PASSWORD)  # system CAs only
    try:
        with VapiSession(settings, attempts=5, backoff=0.001) as session, pytest.raises(VSphereError) as caught:
            session.login()
    finally:
        listener.close()
    assert str(caught.value) == (
        f"vCenter {server}: POST /api/session: TLS: vCenter's certificate is not trusted (self-signed certificate): "
        "set vsphere:caFile to the CA that signed it (or vsphere:allowUnverifiedSsl: true to skip the check)"
    )
    assert len(handshakes) == 1
