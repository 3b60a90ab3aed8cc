"""The mutating webhook over real HTTPS: AdmissionReviews in, JSONPatches or denials out."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.helpers import inspect_file
from tests.tls import write_self_signed
from vmimage.cluster.kube import ImageCache, ImageObjects, KubeTarget

ITEM_A = "e1968c25-dd84-4506-8dc7-9beacb6b688e"
ITEM_B = "0c6c4b4e-7a4f-4f65-9a0b-6a1d3e0f2a11"
PHOTON = "vmi-0a0044d7c690bcbea"
NOT_COMPLIANT = ("photon-ova.cluster.vm-operator.v1alpha5.json", "photon-ova.namespaced.vm-operator.v1alpha5.json")


def vm(name: str, image_name: str | None = None, image: dict | None = None, namespace: str = "team-a") -> dict:
    spec: dict = {"className": "best-effort-small"}
    if image_name is not None:
        spec["imageName"] = image_name
    if image is not None:
        spec["image"] = image
    return {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def admission(obj: dict, uid: str = "u-1", operation: str = "CREATE") -> dict:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "vmoperator.vmware.com", "version": "v1alpha5", "kind": "VirtualMachine"},
            "resource": {"group": "vmoperator.vmware.com", "version": "v1alpha5", "resource": "virtualmachines"},
            "namespace": obj["metadata"]["namespace"],
            "operation": operation,
            "object": obj,
        },
    }


def patch_of(response: dict) -> list[dict]:
    return json.loads(base64.b64decode(response["response"]["patch"]))


@pytest.fixture(scope="module")
def images_file(tmp_path_factory, fixtures) -> Path:
    photon = inspect_file(
        fixtures / "ovf-more" / "photon5-govmomi.ovf", name="Photon OS 5.0", item_id=ITEM_A, cluster=True
    )
    dup_a = inspect_file(
        fixtures / "ovf-more" / "windows2019-efi-simplevm.ovf", name="Windows", item_id=ITEM_B, namespace="team-a"
    )
    dup_b = inspect_file(
        fixtures / "ovf-more" / "windows2008r2-x64.ovf",
        name="Windows",
        item_id="5f0d7a52-3c1e-4f8b-9d2a-7e6b5c4d3e2f",
        namespace="team-a",
    )
    # VM Operator's NotReady objects for items vCenter holds not security compliant, as recorded
    recorded = [json.loads((fixtures / "vm-operator" / "security-policy" / name).read_text()) for name in NOT_COMPLIANT]
    path = tmp_path_factory.mktemp("webhook") / "images.yaml"
    path.write_text(yaml.safe_dump_all([photon, dup_a, dup_b, *recorded]))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    def __init__(self, workdir: Path, images_from: str, extra: list[str] | None = None, env: dict | None = None):
        self.cert, self.key = write_self_signed(workdir, "webhook")
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.log = workdir / "webhook.log"  # a file, not a pipe: an unread pipe would stall the access log
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vmimage",
                    "webhook",
                    "--cert",
                    str(self.cert),
                    "--key",
                    str(self.key),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--images-from",
                    images_from,
                    *(extra or []),
                ],
                stderr=log,
                env={**os.environ, **(env or {})},
            )
        self.client = httpx.Client(verify=ssl.create_default_context(cafile=str(self.cert)), timeout=10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.client.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
            if self.process.poll() is not None:
                raise RuntimeError(f"the webhook exited: {self.log.read_text()}")
        self.process.kill()  # nothing left running behind a failed start
        self.process.wait()
        raise RuntimeError(f"the webhook did not start: {self.log.read_text()[-2000:]}")

    def review(self, body) -> httpx.Response:
        return self.client.post(f"{self.url}/mutate", json=body)

    def reviews(self) -> int:
        """How many reviews the webhook has answered (its access log's lines for /mutate)."""
        return self.log.read_text().count('"POST /mutate ')

    def stop(self) -> str:
        self.client.close()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(20)
        return self.log.read_text()


@pytest.fixture(scope="module")
def webhook(tmp_path_factory, images_file):
    running = Webhook(tmp_path_factory.mktemp("tls"), str(images_file))
    yield running
    running.stop()


def test_display_name_is_replaced_by_the_vmi_id(webhook):
    response = webhook.review(admission(vm("web-1", "Photon OS 5.0")))
    assert response.status_code == 200
    answer = response.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == "u-1" and answer["response"]["allowed"] is True
    assert answer["response"]["patchType"] == "JSONPatch"
    assert patch_of(answer) == [
        {"op": "replace", "path": "/spec/imageName", "value": PHOTON},
        {"op": "add", "path": "/spec/image", "value": {"kind": "ClusterVirtualMachineImage", "name": PHOTON}},
    ]


def test_a_vm_that_names_its_image_passes_unchanged(webhook):
    answer = webhook.review(
        admission(vm("web-2", PHOTON, {"kind": "ClusterVirtualMachineImage", "name": PHOTON}))
    ).json()
    assert answer["response"] == {"uid": "u-1", "allowed": True}


def test_ambiguous_and_unknown_names_are_denied_with_the_resolver_message(webhook):
    ambiguous = webhook.review(admission(vm("win", "Windows"))).json()["response"]
    assert ambiguous["allowed"] is False
    assert ambiguous["status"]["message"] == 'multiple VM images exist for "Windows" in namespace scope'
    unknown = webhook.review(admission(vm("x", "CentOS"))).json()["response"]
    assert unknown["status"]["message"] == 'no VM image exists for "CentOS" in namespace or cluster scope'


def test_an_image_that_is_not_security_compliant_is_denied_with_the_reason(webhook):
    """The recorded objects: by display name (cluster and namespaced), and by VMI ID in spec.image
    for a VM the webhook gets for its required capabilities."""
    cluster = webhook.review(admission(vm("c", "photon-ova-cluster"))).json()["response"]
    namespaced = webhook.review(admission(vm("n", "photon-ova-namespaced"))).json()["response"]
    direct = vm("d", "vmi-6450a0f4e34197d5c", {"kind": "ClusterVirtualMachineImage", "name": "vmi-6450a0f4e34197d5c"})
    direct["metadata"]["annotations"] = {"vmimage.io/required-capabilities": "cloud-init"}
    by_id = webhook.review(admission(direct)).json()["response"]
    for answer, shown in (
        (cluster, "team-a/c: its image vmi-6450a0f4e34197d5c (photon-ova-cluster)"),
        (namespaced, "team-a/n: its image vmi-62001e532b7ff0085 (photon-ova-namespaced)"),
        (by_id, "team-a/d: its image vmi-6450a0f4e34197d5c (photon-ova-cluster)"),
    ):
        assert answer["allowed"] is False and "patch" not in answer
        assert answer["status"]["message"].startswith(
            f"VM {shown} is not security compliant (Ready False, VirtualMachineImageProviderSecurityNotCompliant: "
            "Provider item is not security compliant)"
        )


def test_other_operations_and_kinds_pass(webhook):
    update = webhook.review(admission(vm("web-3", "Photon OS 5.0"), operation="UPDATE")).json()
    assert update["response"] == {"uid": "u-1", "allowed": True}
    other = admission(vm("web-4", "Photon OS 5.0"))
    other["request"]["kind"]["kind"] = "VirtualMachineClass"
    assert webhook.review(other).json()["response"] == {"uid": "u-1", "allowed": True}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"kind": "AdmissionReview"}',
        b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}',
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}',
        json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "u",
                    "operation": "CREATE",
                    "kind": {"kind": "VirtualMachine"},
                    "object": {"spec": "nope"},
                },
            }
        ).encode(),
    ],
    ids=["text", "list", "no-version", "v1beta1", "no-request", "bad-spec"],
)
def test_malformed_reviews_get_400_and_the_server_lives_on(webhook, body):
    response = webhook.client.post(f"{webhook.url}/mutate", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "error" in response.json()
    assert webhook.client.get(f"{webhook.url}/healthz").status_code == 200


def test_oversized_reviews_are_refused(webhook):
    response = webhook.client.post(
        f"{webhook.url}/mutate", content=b"{" + b" " * (4 * 2**20) + b"}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_health_and_readiness(webhook):
    assert webhook.client.get(f"{webhook.url}/healthz").text == "ok"
    assert webhook.client.get(f"{webhook.url}/readyz").status_code == 200


def test_the_file_is_reread_when_it_changes(tmp_path, images_file):
    copy = tmp_path / "images.yaml"
    copy.write_text(images_file.read_text())
    running = Webhook(tmp_path, str(copy))
    try:
        assert running.review(admission(vm("a", "Photon OS 5.0"))).json()["response"]["allowed"]
        documents = list(yaml.safe_load_all(copy.read_text()))
        documents[0]["status"]["name"] = "Photon OS 5.1"
        copy.write_text(yaml.safe_dump_all(documents))
        os.utime(copy, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert patch_of(running.review(admission(vm("b", "Photon OS 5.1"))).json())[0]["value"] == PHOTON
    finally:
        running.stop()


def test_a_bad_images_file_stops_the_start_with_a_clear_error(tmp_path):
    bad = tmp_path / "images.yaml"
    bad.write_text("a: [")
    cert, key = write_self_signed(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "vmimage", "webhook", "--cert", str(cert), "--key", str(key), "--images-from", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.startswith(f"error: {bad}: not valid YAML or JSON")


def test_images_from_the_cluster_follow_its_changes(kube, tmp_path, fixtures):
    windows = inspect_file(
        fixtures / "ovf-more" / "windows2019-efi-simplevm.ovf",
        name="Windows 2019",
        item_id="7a1e4c2b-9d3f-4e8a-b6c5-0f1e2d3c4b5a",
        namespace="team-b",
    )
    running = Webhook(tmp_path, "kube", ["--kubeconfig", str(kube.kubeconfig)])
    try:
        deadline = time.monotonic() + 30  # until synced, an unknown name is answered 503, not denied
        while running.client.get(f"{running.url}/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        denied = running.review(admission(vm("w", "Windows 2019", namespace="team-b"))).json()["response"]
        assert denied["allowed"] is False
        with ImageObjects(KubeTarget(str(kube.kubeconfig))) as cluster:
            cluster.apply(windows)
            cluster.apply_status(windows)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            answer = running.review(admission(vm("w", "Windows 2019", namespace="team-b"))).json()["response"]
            if answer["allowed"]:
                break
            time.sleep(0.1)
        assert answer["allowed"] and running.client.get(f"{running.url}/readyz").status_code == 200
        with ImageObjects(KubeTarget(str(kube.kubeconfig))) as cluster:
            cluster.delete("VirtualMachineImage", "team-b", windows["metadata"]["name"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not running.review(admission(vm("w", "Windows 2019", namespace="team-b"))).json()["response"]["allowed"]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the deletion never reached the webhook's cache")
    finally:
        running.stop()


def test_image_cache_lists_then_watches(kube, fixtures):
    cache = ImageCache(KubeTarget(str(kube.kubeconfig)), watch_seconds=5).start()
    try:
        assert cache.wait_ready(10)
        before = {(o["kind"], o["metadata"]["name"]) for o in cache.snapshot()}
        image = inspect_file(
            fixtures / "ovf" / "photon-ova.ovf",
            name="cache-test",
            item_id="3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            cluster=True,
        )
        with ImageObjects(KubeTarget(str(kube.kubeconfig))) as cluster:
            cluster.apply(image)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and ("ClusterVirtualMachineImage", image["metadata"]["name"]) not in {
            (o["kind"], o["metadata"]["name"]) for o in cache.snapshot()
        }:
            time.sleep(0.05)
        after = {(o["kind"], o["metadata"]["name"]) for o in cache.snapshot()}
        assert after - before == {("ClusterVirtualMachineImage", image["metadata"]["name"])}
        assert cache.error_count == 0, cache.last_error
    finally:
        cache.stop()


def test_load_1000_reviews_at_concurrency_50(webhook):
    """A load test on loopback, bounded in count (1,000) and time (60 s): zero errors; latency is reported."""
    bodies = [admission(vm(f"vm-{i}", "Photon OS 5.0" if i % 2 else "Windows"), uid=f"u-{i}") for i in range(1000)]
    latencies: list[float] = []
    errors: list[str] = []

    async def run() -> None:
        limit = asyncio.Semaphore(50)
        async with httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(webhook.cert)),
            timeout=10,
            limits=httpx.Limits(max_connections=50),
        ) as client:

            async def one(body: dict) -> None:
                async with limit:
                    start = time.perf_counter()
                    try:
                        response = await client.post(f"{webhook.url}/mutate", json=body)
                        answer = response.json()["response"]
                        if response.status_code != 200 or answer["uid"] != body["request"]["uid"]:
                            errors.append(f"{response.status_code} {answer}")
                        elif answer["allowed"] != (body["request"]["object"]["spec"]["imageName"] == "Photon OS 5.0"):
                            errors.append(f"wrong decision: {answer}")
                    except (httpx.HTTPError, ValueError, KeyError) as exc:
                        errors.append(repr(exc))
                    latencies.append(time.perf_counter() - start)

            await asyncio.wait_for(asyncio.gather(*(one(body) for body in bodies)), timeout=60)

    asyncio.run(run())
    assert errors == []
    assert len(latencies) == 1000
    ordered = sorted(latencies)
    print(
        f"\n1,000 reviews at concurrency 50: p50 {statistics.median(ordered) * 1e3:.1f} ms, "
        f"p99 {ordered[989] * 1e3:.1f} ms, max {ordered[-1] * 1e3:.1f} ms"
    )
