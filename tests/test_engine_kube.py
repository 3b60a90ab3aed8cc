"""The dev stack with a cluster, through the real engine and a real API server.

The stack is first deployed by the previous release (its commit, from this clone's history),
with that release's own CRDs and objects; the current program then moves it to VM Operator's
CRDs and objects by in-place updates. `kubectl` reads them back; a
MutatingWebhookConfiguration sends VirtualMachine creates to a local `vmimage webhook`. The
tests run in order on one stack, as test_engine.py's do.
"""

from __future__ import annotations

import base64
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from providers.library_item import ContentLibraryItemProvider
from tests.conftest import FIXTURES
from tests.devcluster import Cluster, start_cluster
from tests.engine import provider_host
from tests.pulumi_cli import ROOT, Stack
from tests.test_engine import dev_config, items
from tests.test_providers import ITEM, PASSWORD, direct_client, vsphere_config
from tests.test_webhook import Webhook
from vmimage.admission.mutation import mutating_webhook
from vmimage.contract.crds import INSTALLED, crd_plan
from vmimage.contract.ids import vmi_id
from vmimage.descriptor.samples import SampleImage, write_ova
from vmimage.vsphere.inventory import find_datastore_id
from vmimage.vsphere.settings import resolve_settings

pytestmark = pytest.mark.vcsim

CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
VENDOR_LIBRARY = "vendor-sync"


def previous_release(folder: Path) -> Path:
    """The previous release's program (tests/fixtures/previous-release.tar.gz: `git archive` of its
    commit, the program's folders only), unpacked into ``folder``."""
    with tarfile.open(FIXTURES / "previous-release.tar.gz") as release:
        release.extractall(folder, filter="data")
    return folder


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
    listed = json.loads(cluster.kubectl("get", "vmi,cvmi", "-A", "-o", "json", "--show-managed-fields").stdout)["items"]
    return {(o["status"]["name"], o["metadata"].get("namespace")): o for o in listed}


def test_a_stack_of_the_previous_release_moves_to_vm_operators_objects_in_place(stack, cluster, tmp_path_factory):
    stack.use_program(previous_release(tmp_path_factory.mktemp("previous-release")))
    stack.up()
    legacy = image_objects(cluster)[("photon-5-sample", None)]
    assert legacy["status"]["osInfo"]["type"] == "Linux" and "vmimage.io/owner" in legacy["metadata"]["annotations"]
    # what others add to the object (a team's label, Argo CD's, a change ticket) is theirs: the move keeps it
    cluster.kubectl("label", "cvmi", legacy["metadata"]["name"], "team=a", "argocd.argoproj.io/instance=catalog")
    cluster.kubectl("annotate", "cvmi", legacy["metadata"]["name"], "change-ticket=CHG-1")
    from vmimage.cluster.kube import KubeTarget, read_crds

    legacy_crds = read_crds(KubeTarget(str(cluster.kubeconfig)), list(crd_plan({})))
    assert set(crd_plan(legacy_crds).values()) == {INSTALLED}  # the previous release's: this stack's to update
    before = {name: item["vmi_id"] for name, item in items(stack).items()}
    stack.use_program(ROOT)
    steps = stack.preview_steps()
    moved = sorted(f"{op} {name}" for name, op in steps.items() if op not in ("same", "update"))
    # no replace or delete; the deletion guards are new (they record what this run declares), and so is
    # the stack instance (what is published keeps its owner; only what is created from now on is salted)
    assert moved == ["create catalog-deletion-guard", "create catalog-destroy-guard", "create catalog-instance"]
    updated = {name for name, op in steps.items() if op == "update"}
    assert sum(name.startswith(("catalog-vmi-", "catalog-cvmi-")) for name in updated) == 4  # every image
    assert sum(name.startswith("catalog-item-") for name in updated) == 3  # every item the stack publishes
    assert sum(name.startswith("catalog-crds-") for name in updated) == 2  # the CRDs become VM Operator's
    result = stack.up()
    assert "CustomResourceDefinition virtualmachineimages.vmoperator.vmware.com: installed by vmimage" in result.output
    assert {name: item["vmi_id"] for name, item in items(stack).items()} == before  # no new VMI ID


def test_up_publishes_vm_operators_objects_with_status(stack, cluster, vendor_item):
    assert len(stack.resources(CRD_TYPE)) == 2  # installed by pulumi-kubernetes, now VM Operator's own
    crd = cluster.get("crd", "clustervirtualmachineimages.vmoperator.vmware.com")
    assert [v["name"] for v in crd["spec"]["versions"] if v["storage"]] == ["v1alpha6"]
    assert crd["metadata"]["labels"]["vmimage.io/installed-by"] == "vmimage"
    objects = image_objects(cluster)
    assert set(objects) == {
        ("photon-5-sample", None),
        ("tools-sample", None),
        ("ubuntu-24.04-sample", "dev"),
        ("vendor-tool", None),
    }
    published = items(stack)
    photon = objects[("photon-5-sample", None)]
    written = {e["apiVersion"] for e in photon["metadata"]["managedFields"] if e["manager"].startswith("vmimage/")}
    assert written == {"vmoperator.vmware.com/v1alpha6"}  # the version VM Operator's CRDs store
    assert photon["metadata"]["name"] == vmi_id(published["photon-5-sample"]["id"])
    # written through the status subresource, as VM Operator writes it
    assert photon["status"]["osInfo"] == {"id": "101", "type": "vmwarePhoton64Guest"}
    assert photon["status"]["disks"] == [{"name": "disk0", "limit": "16Gi", "requested": "16Gi"}]
    assert {c["type"]: c["status"] for c in photon["status"]["conditions"]}["Ready"] == "True"
    # nothing of the previous release's is left: its annotation and its fields went with its field manager;
    # what others set stays
    assert set(photon["metadata"]["annotations"]) == {
        "vmware.com/display-name",
        "vmoperator.vmware.com/conversion-content-lib-ref",
        "change-ticket",
    }
    assert {k: photon["metadata"]["labels"].get(k) for k in ("team", "argocd.argoproj.io/instance")} == {
        "team": "a",
        "argocd.argoproj.io/instance": "catalog",
    }
    assert "os.image.vmoperator.vmware.com/version" not in photon["metadata"]["labels"]  # the previous release's
    assert "vmimage" not in {entry["manager"] for entry in photon["metadata"]["managedFields"]}
    assert objects[("vendor-tool", None)]["metadata"]["name"] == vmi_id(vendor_item)
    ubuntu = objects[("ubuntu-24.04-sample", "dev")]
    assert ubuntu["metadata"]["labels"]["capability.image.vmoperator.vmware.com/nvidia-gpu"] == "true"
    assert ubuntu["metadata"]["labels"]["os.image.vmoperator.vmware.com/type"] == "ubuntu64Guest"
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
    photon = image_objects(cluster)[("photon-5-sample", None)]
    legacy_disks = {"status": {"disks": [{"capacity": "16Gi"}]}}  # the shape of the previous release
    refused = cluster.kubectl(
        "patch", "cvmi", photon["metadata"]["name"], "--subresource=status", "--type=merge",
        "-p", json.dumps(legacy_disks), "--dry-run=server", check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "status.disks[0].name: Required value" in refused.stderr


def test_kubectl_get_shows_the_printer_columns(cluster):
    table = cluster.kubectl("get", "vmi,cvmi", "-A").stdout
    header = table.splitlines()[0]
    for column in ("DISPLAY NAME", "TYPE", "IMAGE VERSION", "OS NAME", "HARDWARE VERSION"):
        assert column in header
    photon = next(line for line in table.splitlines() if "photon-5-sample" in line)
    assert "OVF" in photon and "5.0" in photon and "vmwarePhoton64Guest" in photon  # OS NAME: the guest id


def test_an_equivalent_kubeconfig_path_replaces_the_images_and_keeps_their_objects(
    stack, cluster, simulator, samples, tmp_path
):
    """The review's bug: the engine creates the replacement, then deletes the old resource,
    and both name the same object. Only the object's owner may delete it."""
    copy = tmp_path / "kubeconfig-elsewhere"
    shutil.copy(cluster.kubeconfig, copy)
    before = image_objects(cluster)
    # a protected stack does not move its images to another cluster (as far as the stack file says) unallowed
    stack.configure({**kube_config(simulator, samples, copy), "vmimage:deletionProtection": True})
    refused = stack.preview(check=False)
    assert refused.returncode != 0
    moved = f"; cluster (current context) of kubeconfig {cluster.kubeconfig} → "
    assert f"'photon-5-sample': ClusterVirtualMachineImage (replaced: datastore 'LocalDS_0'{moved}" in refused.output
    stack.configure(kube_config(simulator, samples, copy))
    steps = stack.preview_steps()
    assert sorted(op for op in steps.values() if op == "replace") == ["replace"] * 4
    result = stack.up()
    # each create says where its object went: the cluster (a context, the kubeconfig) and the namespace
    ubuntu = next(line for line in result.stdout.splitlines() if "info: VirtualMachineImage vmi-" in line)
    assert ubuntu.rstrip().endswith(
        f"('ubuntu-24.04-sample'): written to namespace dev of cluster (current context) of {copy}"
    )
    assert f"('photon-5-sample'): written to cluster (current context) of {copy}" in result.stdout
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
    """ImageWebhook's own registration (rules, matchConditions), pointed at a local `vmimage webhook`."""
    client = {"url": f"{webhook.url}/mutate", "caBundle": base64.b64encode(webhook.cert.read_bytes()).decode()}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "vmimage-image-names"},
        "webhooks": [mutating_webhook(client, timeout_seconds=10)],
    }


def virtual_machine(name: str, image_name: str, image: dict | None = None, requires: str | None = None) -> dict:
    annotations = {"vmimage.io/required-capabilities": requires} if requires is not None else {}
    return {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": "dev", **({"annotations": annotations} if annotations else {})},
        "spec": {"className": "best-effort-small", "imageName": image_name, **({"image": image} if image else {})},
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

        # named by ID already: sent only for the capability check, and refused for a missing one
        by_id = {"kind": "ClusterVirtualMachineImage", "name": photon}
        lacking = virtual_machine("web-3", photon, by_id, requires="nvidia-gpu, sev-snp")
        refused = cluster.kubectl("create", "-f", "-", input=json.dumps(lacking), check=False)
        assert refused.returncode != 0
        assert "denied the request" in refused.stderr and "does not have: sev-snp" in refused.stderr
        assert cluster.get("virtualmachines", "web-3", "dev") is None
        reviews = webhook.reviews()
        plain = cluster.kubectl("create", "-f", "-", input=json.dumps(virtual_machine("web-4", photon, by_id)))
        assert plain.returncode == 0 and webhook.reviews() == reviews  # nothing to do: never sent
    finally:
        cluster.kubectl("delete", "mutatingwebhookconfiguration", "vmimage-image-names", "--ignore-not-found")
        webhook.stop()


def test_destroy_leaves_nothing_in_vcenter_and_only_the_crds_in_the_cluster(stack, cluster, simulator, vendor_item):
    library_id = next(iter(stack.resources("dynamic/vmimage:ContentLibrary").values()))["id"]
    stack.destroy()
    # a CRD is never deleted: that would delete every image of its kind, whoever published it
    crds = cluster.kubectl("get", "crd", "-o", "name").stdout
    assert "virtualmachineimages.vmoperator.vmware.com" in crds
    assert "clustervirtualmachineimages.vmoperator.vmware.com" in crds
    left = json.loads(cluster.kubectl("get", "vmi,cvmi", "-A", "-o", "json", "--show-managed-fields").stdout)["items"]
    assert left == []
    with direct_client(simulator) as client:
        assert client.find_libraries("dev-images") == []
        assert client.get_item(vendor_item).name == "vendor-tool-renamed"  # not the stack's: it stays
    assert library_id
