"""The dev stack with a cluster, through the real engine and a real API server.

`pulumi up` installs the CRDs through pulumi-kubernetes and publishes the image objects
(status through the status subresource) to etcd + kube-apiserver from scripts/devcluster;
`kubectl` reads them back; a MutatingWebhookConfiguration sends VirtualMachine creates to a
local `vmimage webhook`. The tests run in order on one stack, as test_engine.py's do.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from providers.library_item import ContentLibraryItemProvider
from tests.conftest import FIXTURES
from tests.devcluster import Cluster, start_cluster
from tests.engine import provider_host
from tests.pulumi_cli import Stack
from tests.test_engine import dev_config, items
from tests.test_providers import ITEM, PASSWORD, direct_client, vsphere_config
from tests.test_webhook import Webhook
from vmimage.ids import vmi_id
from vmimage.samples import SampleImage, write_ova
from vmimage.vsphere.inventory import find_datastore_id
from vmimage.vsphere.settings import resolve_settings

pytestmark = pytest.mark.vcsim

CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
VENDOR_LIBRARY = "vendor-sync"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster of this module's own: the stack installs the CRDs itself."""
    running = start_cluster(tmp_path_factory.mktemp("devcluster"), ("dev",))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def vendor_item(simulator, tmp_path_factory) -> str:
    """A library someone else fills, which the stack syncs: one item, uploaded by hand."""
    folder = tmp_path_factory.mktemp("vendor")
    settings = resolve_settings({**vsphere_config(simulator), "vsphere:password": PASSWORD}, {})
    with direct_client(simulator) as client:
        library_id = client.create_library(VENDOR_LIBRARY, find_datastore_id(settings, "LocalDS_0"))
    with provider_host(vsphere_config(simulator)) as host:
        source = write_ova(folder / "vendor-tool.ova", SampleImage(name="vendor-tool"))
        item = host.up(
            ITEM, ContentLibraryItemProvider(), {"library_id": library_id, "name": "vendor-tool", "source": str(source)}
        )
    return item.id


def kube_config(simulator, samples, kubeconfig: Path) -> dict:
    config = dev_config(simulator, samples)
    config["vmimage:libraries"] = [*config["vmimage:libraries"], {"name": VENDOR_LIBRARY, "existing": True}]
    config["vmimage:sync"] = [{"library": VENDOR_LIBRARY, "scope": "cluster"}]
    config["vmimage:kubernetes"] = {"kubeconfig": str(kubeconfig), "installCrds": True}
    return config


@pytest.fixture(scope="module")
def stack(simulator, cluster, samples, vendor_item, tmp_path_factory) -> Stack:
    stack = Stack(tmp_path_factory.mktemp("kube-stack"), name="dev-k8s")
    stack.configure(kube_config(simulator, samples, cluster.kubeconfig), secrets={"vsphere:password": PASSWORD})
    return stack


def image_objects(cluster: Cluster) -> dict[tuple[str, str | None], dict]:
    """What the cluster holds: (display name, namespace) → object."""
    listed = json.loads(cluster.kubectl("get", "vmi,cvmi", "-A", "-o", "json").stdout)["items"]
    return {(o["status"]["name"], o["metadata"].get("namespace")): o for o in listed}


def test_up_installs_the_crds_and_publishes_objects_with_status(stack, cluster, vendor_item):
    result = stack.up()
    assert PASSWORD not in result.output
    assert len(stack.resources(CRD_TYPE)) == 2  # installed by pulumi-kubernetes
    objects = image_objects(cluster)
    assert set(objects) == {
        ("photon-5-sample", None),
        ("tools-sample", None),
        ("ubuntu-24.04-sample", "dev"),
        ("vendor-tool", None),
    }
    published = items(stack)
    photon = objects[("photon-5-sample", None)]
    assert photon["metadata"]["name"] == vmi_id(published["photon-5-sample"]["id"])
    assert photon["status"]["osInfo"]["id"] == "vmwarePhoton64Guest"  # written through the status subresource
    assert {c["type"]: c["status"] for c in photon["status"]["conditions"]}["Ready"] == "True"
    assert objects[("vendor-tool", None)]["metadata"]["name"] == vmi_id(vendor_item)
    ubuntu = objects[("ubuntu-24.04-sample", "dev")]
    assert "capability.image.vmoperator.vmware.com/nvidia-gpu" in ubuntu["metadata"]["labels"]
    stack.preview("--expect-no-changes")


def test_the_server_validates_image_objects_against_the_crd(cluster):
    bad = {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": "ClusterVirtualMachineImage",
        "metadata": {"name": "vmi-0123456789abcdef0"},
        "spec": {"providerRef": {"kind": 42}},
    }
    refused = cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0 and "spec.providerRef.kind" in refused.stderr


def test_kubectl_get_shows_the_printer_columns(cluster):
    table = cluster.kubectl("get", "vmi,cvmi", "-A").stdout
    header = table.splitlines()[0]
    for column in ("DISPLAY NAME", "TYPE", "IMAGE VERSION", "OS NAME", "HARDWARE VERSION"):
        assert column in header
    photon = next(line for line in table.splitlines() if "photon-5-sample" in line)
    assert "OVF" in photon and "5.0" in photon


def test_an_equivalent_kubeconfig_path_replaces_the_images_and_keeps_their_objects(
    stack, cluster, simulator, samples, tmp_path
):
    """The review's bug: the engine creates the replacement, then deletes the old resource,
    and both name the same object. Only the object's owner may delete it."""
    copy = tmp_path / "kubeconfig-elsewhere"
    shutil.copy(cluster.kubeconfig, copy)
    before = image_objects(cluster)
    stack.configure(kube_config(simulator, samples, copy))
    steps = stack.preview_steps()
    assert sorted(op for op in steps.values() if op == "replace") == ["replace"] * 4
    stack.up()
    after = image_objects(cluster)
    assert set(after) == set(before)
    assert {k: o["metadata"]["name"] for k, o in after.items()} == {k: o["metadata"]["name"] for k, o in before.items()}
    stack.preview("--expect-no-changes")


def test_a_renamed_synced_item_moves_to_a_new_resource_and_keeps_its_object(stack, cluster, simulator, vendor_item):
    with direct_client(simulator) as client:
        client.update_item(vendor_item, "vendor-tool-renamed", "")
    steps = stack.preview_steps()
    changed = sorted(op for op in steps.values() if op in ("create", "delete"))
    assert changed == ["create", "delete"]
    stack.up()
    objects = image_objects(cluster)
    assert ("vendor-tool", None) not in objects
    assert objects[("vendor-tool-renamed", None)]["metadata"]["name"] == vmi_id(vendor_item)
    stack.preview("--expect-no-changes")


def webhook_configuration(webhook: Webhook) -> dict:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "vmimage-image-names"},
        "webhooks": [
            {
                "name": "image-names.vmimage.io",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "clientConfig": {
                    "url": f"{webhook.url}/mutate",
                    "caBundle": base64.b64encode(webhook.cert.read_bytes()).decode(),
                },
                "rules": [
                    {
                        "apiGroups": ["vmoperator.vmware.com"],
                        "apiVersions": ["*"],
                        "operations": ["CREATE"],
                        "resources": ["virtualmachines"],
                    }
                ],
            }
        ],
    }


def virtual_machine(name: str, image_name: str) -> dict:
    return {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": "dev"},
        "spec": {"className": "best-effort-small", "imageName": image_name},
    }


def test_the_webhook_resolves_a_vm_display_name_through_the_api_server(stack, cluster, tmp_path):
    crd = yaml.safe_load((FIXTURES / "crds" / "vmoperator.vmware.com_virtualmachines.yaml").read_text())
    cluster.apply(crd)
    cluster.wait_established("virtualmachines.vmoperator.vmware.com")
    webhook = Webhook(tmp_path, "kube", ["--kubeconfig", str(cluster.kubeconfig)])
    try:
        cluster.apply(webhook_configuration(webhook))
        photon = image_objects(cluster)[("photon-5-sample", None)]["metadata"]["name"]
        created = cluster.kubectl(
            "create", "-f", "-", "-o", "json", input=json.dumps(virtual_machine("web-1", "photon-5-sample"))
        )
        stored = json.loads(created.stdout)
        assert stored["spec"]["imageName"] == photon
        assert stored["spec"]["image"] == {"kind": "ClusterVirtualMachineImage", "name": photon}
        assert cluster.get("virtualmachines", "web-1", "dev")["spec"]["imageName"] == photon

        refused = cluster.kubectl(
            "create", "-f", "-", input=json.dumps(virtual_machine("web-2", "No Such Image")), check=False
        )
        assert refused.returncode != 0
        assert "denied the request" in refused.stderr and "No Such Image" in refused.stderr
        assert cluster.get("virtualmachines", "web-2", "dev") is None
    finally:
        cluster.kubectl("delete", "mutatingwebhookconfiguration", "vmimage-image-names", "--ignore-not-found")
        webhook.stop()


def test_destroy_leaves_nothing_in_vcenter_or_the_cluster(stack, cluster, simulator, vendor_item):
    library_id = next(iter(stack.resources("dynamic/vmimage:ContentLibrary").values()))["id"]
    stack.destroy()
    crds = cluster.kubectl("get", "crd", "-o", "name").stdout
    assert "virtualmachineimages.vmoperator.vmware.com" not in crds
    assert "clustervirtualmachineimages.vmoperator.vmware.com" not in crds
    with direct_client(simulator) as client:
        assert client.find_libraries("dev-images") == []
        assert client.get_item(vendor_item).name == "vendor-tool-renamed"  # not the stack's: it stays
    assert library_id
