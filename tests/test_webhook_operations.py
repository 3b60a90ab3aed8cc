"""The webhook as an operator runs it: readiness, a cache that fails loudly but boundedly, start-up
errors, hostile reviews, and a certificate renewed on disk while it serves."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.devcluster import start_cluster, write_kubeconfig
from tests.helpers import inspect_file
from tests.test_webhook import Webhook, admission, free_port, vm
from tests.tls import write_self_signed
from vmimage.cluster.kube import ImageCache, KubeTarget
from vmimage.contract.crds import crds

ITEM = "e1968c25-dd84-4506-8dc7-9beacb6b688e"


def unreachable_kubeconfig(tmp_path: Path) -> Path:
    (tmp_path / "cluster-ca").mkdir()
    ca, _ = write_self_signed(tmp_path / "cluster-ca")
    return write_kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{free_port()}", ca, "a-token")


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# --- 1, 2: not ready is not "unknown" --------------------------------------------------------


def test_an_unknown_name_is_not_denied_while_the_cache_has_not_synced(tmp_path):
    webhook = Webhook(tmp_path, "kube", ["--kubeconfig", str(unreachable_kubeconfig(tmp_path))])
    try:
        assert webhook.client.get(f"{webhook.url}/readyz").status_code == 503
        answer = webhook.review(admission(vm("web-1", "Photon OS 5.0")))
        assert answer.status_code == 503  # the API server applies its failurePolicy; no wrong denial
        assert "image cache not ready: cannot tell whether 'Photon OS 5.0' exists" in answer.json()["error"]
        time.sleep(3)
    finally:
        log = webhook.stop()
    assert "Retrying" not in log  # urllib3's retry warnings: the cache retries, with backoff
    assert 1 <= log.count("list/watch failed") <= 2  # once per kind and minute, not once per attempt


def test_with_a_synced_cache_an_unknown_name_is_denied_with_the_resolver_message(kube, tmp_path):
    webhook = Webhook(tmp_path, "kube", ["--kubeconfig", str(kube.kubeconfig)])
    try:
        assert wait_for(lambda: webhook.client.get(f"{webhook.url}/readyz").status_code == 200, 30)
        answer = webhook.review(admission(vm("web-1", "No Such Image"))).json()["response"]
    finally:
        webhook.stop()
    assert answer["allowed"] is False
    assert answer["status"]["message"] == 'no VM image exists for "No Such Image" in namespace or cluster scope'


def test_the_cache_goes_not_ready_when_it_loses_the_server_and_backs_off(tmp_path):
    from tests.devcluster import install_crds

    cluster = start_cluster(tmp_path / "cluster")
    try:
        install_crds(cluster, crds())
        cache = ImageCache(KubeTarget(str(cluster.kubeconfig)), watch_seconds=5, backoff=0.2, stale_after=2).start()
        assert cache.wait_ready(30) and cache.ready
    finally:
        cluster.stop()
    try:
        assert wait_for(lambda: not cache.ready, 20)
        errors_then = cache.error_count
        time.sleep(4)
        # doubling from 0.2 s: at most ~6 attempts per kind (two kinds) in 4 s; every 0.2 s would be 40
        assert 1 <= cache.error_count - errors_then <= 12, cache.error_count
        assert cache.last_error is not None
    finally:
        cache.stop()


# --- 3: start-up errors ------------------------------------------------------------------------


def run_webhook(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vmimage", "webhook", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in {**os.environ, **(env or {})}.items() if k != "KUBERNETES_SERVICE_HOST"},
    )


def test_no_kubeconfig_and_no_cluster_is_one_line_and_exit_2(tmp_path):
    cert, key = write_self_signed(tmp_path)
    env = {"HOME": str(tmp_path), "KUBECONFIG": ""}  # no ~/.kube/config there
    done = run_webhook("--cert", str(cert), "--key", str(key), "--port", str(free_port()), env=env)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: kubeconfig ~/.kube/config: cannot use it")
    assert "$KUBECONFIG" not in line and "Traceback" not in done.stderr


def test_a_port_in_use_is_a_user_error(tmp_path, images_file):
    cert, key = write_self_signed(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_webhook(
            "--cert", str(cert), "--key", str(key), "--host", "127.0.0.1", "--port", str(port),
            "--images-from", str(images_file),
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"error: --host 127.0.0.1 --port {port}: cannot listen there" in done.stderr
    assert "internal error" not in done.stderr


# --- 4: hostile reviews ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images_file(tmp_path_factory, fixtures) -> Path:
    """A small images file, for a webhook that needs no cluster."""
    photon = inspect_file(
        fixtures / "ovf-more" / "photon5-govmomi.ovf", name="Photon OS 5.0", item_id=ITEM, cluster=True
    )
    path = tmp_path_factory.mktemp("ops-images") / "images.yaml"
    path.write_text(yaml.safe_dump(photon))
    return path


@pytest.fixture(scope="module")
def file_webhook(tmp_path_factory, images_file):
    running = Webhook(tmp_path_factory.mktemp("ops"), str(images_file), ["--body-timeout", "1"])
    yield running
    running.stop()


def test_valid_json_that_is_not_a_review_gets_400(file_webhook):
    string_metadata = admission(vm("web-1", "Photon OS 5.0"))
    string_metadata["request"]["object"]["metadata"] = "not an object"
    answer = file_webhook.review(string_metadata)
    assert answer.status_code == 400 and "metadata is not an object" in answer.json()["error"]
    for body, error in [
        ("[" * 100_000 + "]" * 100_000, "more than 100000 JSON values"),
        ("[" * 65 + "]" * 65, "nested deeper than 64 levels"),
        ("[" + "{}," * 200_000 + "{}]", "more than 100000 JSON values"),  # 400 KiB, 200,000 dicts
        ('["' + "a, [b, {c" * 100_000 + '"]', "is not an AdmissionReview"),  # strings do not count
    ]:
        answer = file_webhook.client.post(f"{file_webhook.url}/mutate", content=body)
        assert answer.status_code == 400 and error in answer.json()["error"], (body[:20], answer.text)
    assert file_webhook.client.get(f"{file_webhook.url}/healthz").status_code == 200


def test_a_client_that_stalls_mid_body_is_answered_408(file_webhook):
    context = ssl.create_default_context(cafile=str(file_webhook.cert))
    with (
        socket.create_connection(("127.0.0.1", file_webhook.port)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        if True:
            tls.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            tls.sendall(b'Content-Length: 1000000\r\n\r\n{"kind": ')
            started = time.monotonic()
            tls.settimeout(10)
            status = tls.recv(4096).split(b"\r\n", 1)[0]
    assert status.endswith(b"408 Request Timeout") and time.monotonic() - started < 5


def test_reviews_over_3_mib_are_refused(file_webhook):
    answer = file_webhook.client.post(f"{file_webhook.url}/mutate", content=b"x" * (3 * 2**20 + 1))
    assert answer.status_code == 413


# --- 5: certificate renewal ----------------------------------------------------------------------


def served_certificate(port: int) -> str:
    return ssl.get_server_certificate(("127.0.0.1", port))


def test_a_renewed_certificate_is_served_without_a_restart_or_a_dropped_connection(tmp_path, images_file):
    webhook = Webhook(tmp_path, str(images_file), ["--cert-reload-seconds", "0.2"])
    try:
        before = served_certificate(webhook.port)
        assert webhook.client.get(f"{webhook.url}/healthz").status_code == 200  # a kept-alive connection
        renewed_dir = tmp_path / "renewed"
        renewed_dir.mkdir()
        cert, key = write_self_signed(renewed_dir, "webhook-renewed")
        shutil.copy(key, webhook.key)  # as cert-manager writes them: one file, then the other
        shutil.copy(cert, webhook.cert)
        assert wait_for(lambda: served_certificate(webhook.port) != before, 10)
        assert ssl.PEM_cert_to_DER_cert(served_certificate(webhook.port)) == ssl.PEM_cert_to_DER_cert(cert.read_text())
        # the connection opened under the old certificate keeps working
        assert webhook.client.get(f"{webhook.url}/healthz").status_code == 200
    finally:
        log = webhook.stop()
    assert "loaded the renewed certificate" in log


# --- what one client can hold: connections, and the time to send a request -----------------------


def tls_connection(webhook: Webhook, handshake: bool = True) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", webhook.port), timeout=10)
    if not handshake:
        return raw
    return ssl.create_default_context(cafile=str(webhook.cert)).wrap_socket(raw, server_hostname="127.0.0.1")


def closed_by_server(connection: socket.socket, within: float) -> bool:
    """Whether the server closes the connection (EOF or reset) within ``within`` seconds."""
    connection.settimeout(within)
    try:
        while connection.recv(4096):
            pass
    except TimeoutError:
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    return True


def open_connections(pid: int) -> int:
    """The webhook process's TCP sockets (listening one included). A descriptor closed between
    the listing and its readlink (the server evicts connections meanwhile) is not counted."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            count += os.readlink(fd).startswith("socket:")
    return count


def test_a_client_that_sends_no_request_head_in_time_is_closed(tmp_path, images_file):
    webhook = Webhook(tmp_path, str(images_file), ["--header-timeout", "1"])
    try:
        silent = tls_connection(webhook)  # TLS, then nothing
        no_tls = tls_connection(webhook, handshake=False)  # not even the handshake
        trickle = tls_connection(webhook)
        trickle.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        started = time.monotonic()
        assert all(closed_by_server(c, 5) for c in (silent, no_tls, trickle))
        assert time.monotonic() - started < 4
        for connection in (silent, no_tls, trickle):
            connection.close()
        answered = webhook.review(admission(vm("web-1", "Photon OS 5.0")))
        assert answered.status_code == 200 and answered.json()["response"]["allowed"]
    finally:
        webhook.stop()


def test_an_idle_connection_flood_is_capped_and_a_real_review_is_still_answered(tmp_path, images_file):
    webhook = Webhook(tmp_path, str(images_file), ["--max-connections", "20", "--header-timeout", "30"])
    flood: list[socket.socket] = []
    try:
        for n in range(120):  # six times the cap: TLS done, and silent; half never finish the handshake
            with contextlib.suppress(ConnectionError, ssl.SSLError, OSError):  # evicted during its handshake
                flood.append(tls_connection(webhook, handshake=n % 2 == 0))
        assert open_connections(webhook.process.pid) <= 20 + 1 + 2  # the cap, the listener, the cache's
        for _ in range(3):  # each review on a new connection, each one evicting an idle one
            webhook.client.close()
            webhook.client = type(webhook.client)(verify=ssl.create_default_context(cafile=str(webhook.cert)))
            answered = webhook.review(admission(vm("web-1", "Photon OS 5.0")))
            assert answered.status_code == 200 and answered.json()["response"]["allowed"]
        assert "at the cap of 20 connections: closed the oldest idle one" in webhook.log.read_text()
    finally:
        for connection in flood:
            connection.close()
        webhook.stop()


def test_at_the_cap_connections_that_were_answered_are_kept_and_a_new_one_is_refused(tmp_path, images_file):
    import httpx

    webhook = Webhook(tmp_path, str(images_file), ["--max-connections", "4", "--header-timeout", "30"])
    context = ssl.create_default_context(cafile=str(webhook.cert))
    clients = [httpx.Client(verify=context, timeout=5) for _ in range(3)]  # with webhook.client: four
    try:
        for client in [webhook.client, *clients]:
            assert client.get(f"{webhook.url}/healthz").status_code == 200  # each holds an answered connection
        refused = tls_connection(webhook, handshake=False)
        assert closed_by_server(refused, 5)
        for client in [webhook.client, *clients]:  # the answered ones are still served, on their connections
            assert client.get(f"{webhook.url}/healthz").status_code == 200
        assert "refused a connection: all 4 are busy" in webhook.log.read_text()
    finally:
        for client in clients:
            client.close()
        webhook.stop()
