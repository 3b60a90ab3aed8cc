"""vmimage's objects on a real API server that has VM Operator's CRDs, read back as VM Operator's were.

The cluster gets VM Operator's image CRDs and the image registry's item CRDs first, as a
Supervisor has them, and the item objects the recorder created. vmimage publishes its object
for each record through the same client the image resources use; the object read back at
v1alpha5 and v1alpha6, with the server's bookkeeping removed as the recorder removed it,
equals VM Operator's record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURES
from tests.devcluster import Cluster, install_crds, start_cluster
from tests.test_fidelity import PLACEHOLDER_TIME, PLACEHOLDER_UID, RECORDS, _package, _policy_package, policy_records
from tests.test_fidelity import vmimage_object as record_object
from vmimage.cluster.kube import ImageObjects, KubeTarget
from vmimage.contract.crds import crds
from vmimage.contract.verify import without_vmimage_capabilities

REGISTRY_CRDS = [
    FIXTURES / "crds" / "imageregistry.vmware.com_clustercontentlibraryitems.yaml",
    FIXTURES / "crds" / "imageregistry.vmware.com_contentlibraryitems.yaml",
]
RECORDED = sorted(RECORDS.glob("*.vm-operator.v1alpha5.json"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """VM Operator's CRDs as VM Operator installs them (controller-gen's, not vmimage's)."""
    running = start_cluster(tmp_path_factory.mktemp("vmop-cluster"), ("team-a",))
    try:
        install_crds(running, [*crds(), *(yaml.safe_load(path.read_text()) for path in REGISTRY_CRDS)])
        yield running
    finally:
        running.stop()


def _as_recorded(live: dict) -> dict:
    """The recorder's normalisation: server bookkeeping out, placeholders in."""
    metadata = live["metadata"]
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
        metadata.pop(key, None)
    for owner in metadata.get("ownerReferences") or []:
        owner["uid"] = PLACEHOLDER_UID
    for condition in live.get("status", {}).get("conditions") or []:
        condition["lastTransitionTime"] = PLACEHOLDER_TIME
    return live


def _item_object(record: Path) -> dict:
    """The image registry's item object the recorder created, as it sent it (without status)."""
    _, _, item = _policy_package(record) if record in POLICY_RECORDED else _package(record)
    return {key: item[key] for key in ("apiVersion", "kind", "metadata", "spec")}


POLICY_RECORDED = [path for path in policy_records() if ".v1alpha5." in path.name]


@pytest.mark.parametrize(
    "record", RECORDED + POLICY_RECORDED, ids=lambda path: path.parent.name + "/" + path.name.split(".vm-operator.")[0]
)
def test_the_api_server_holds_what_vm_operator_published(cluster: Cluster, record: Path):
    item = _item_object(record)
    cluster.apply(item)
    live_item = cluster.get(item["kind"].lower() + "s", item["metadata"]["name"], item["metadata"].get("namespace"))
    obj, _ = record_object(record, placeholders=False)
    obj["metadata"]["ownerReferences"][0]["uid"] = live_item["metadata"]["uid"]
    target = KubeTarget(str(cluster.kubeconfig))
    with ImageObjects(target) as objects:
        assert objects.image_version() == "v1alpha6"  # what VM Operator's CRDs serve and store
        objects.publish(obj, owner="fidelity")
    for version in ("v1alpha5", "v1alpha6"):
        recorded = json.loads(record.with_name(record.name.replace("v1alpha5", version)).read_text())
        resource = f"{obj['kind'].lower()}s.{version}.vmoperator.vmware.com"
        live = cluster.get(resource, obj["metadata"]["name"], obj["metadata"].get("namespace"))
        assert without_vmimage_capabilities(_as_recorded(live), recorded) == recorded


def test_two_declarations_of_one_object_delete_it_only_when_the_last_lets_go(cluster: Cluster):
    """Ownership is the field manager, not a mark on the object: each declaration is one, and a
    delete while another declaration publishes the object only gives up its own fields."""
    from vmimage.cluster.kube import object_owners

    obj, _ = record_object(RECORDS / "ubuntu-24.10-cloudimg.vm-operator.v1alpha5.json", placeholders=False)
    del obj["metadata"]["ownerReferences"]
    kind, name = obj["kind"], obj["metadata"]["name"]
    with ImageObjects(KubeTarget(str(cluster.kubeconfig))) as objects:
        objects.delete_owned(kind, None, name, "fidelity")  # what the record test above left
        objects.publish(obj, owner="first")
        assert object_owners(objects.get(kind, None, name)) == {"first"}
        renamed = {**obj, "metadata": {**obj["metadata"], "labels": {**obj["metadata"]["labels"], "team": "b"}}}
        objects.publish(renamed, owner="second")
        assert object_owners(objects.get(kind, None, name)) == {"first", "second"}
        assert objects.delete_owned(kind, None, name, "stranger") == "kept"
        assert objects.delete_owned(kind, None, name, "first") == "kept"
        live = objects.get(kind, None, name)
        assert object_owners(live) == {"second"} and live["metadata"]["labels"]["team"] == "b"
        assert live["status"] == json.loads(json.dumps(obj["status"], default=str)) | {
            "conditions": live["status"]["conditions"]
        }
        assert objects.delete_owned(kind, None, name, "second") == "deleted"
        assert objects.get(kind, None, name) is None


@pytest.mark.vcsim
def test_install_crds_leaves_vm_operators_crds_alone_through_the_engine(cluster, simulator, samples, tmp_path):
    """`installCrds: true` on a cluster that runs VM Operator: the preview says so, `up` neither
    declares nor touches its CRDs and writes the version they store, `destroy` leaves them."""
    from tests.pulumi_cli import Stack
    from tests.test_engine import dev_config
    from tests.test_providers import PASSWORD

    names = ["virtualmachineimages.vmoperator.vmware.com", "clustervirtualmachineimages.vmoperator.vmware.com"]
    before = {name: cluster.get("crd", name)["metadata"]["resourceVersion"] for name in names}
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}})
    stack = Stack(tmp_path / "stack", name="vmop")
    kubernetes = {"kubeconfig": str(cluster.kubeconfig), "installCrds": True}
    config = {**dev_config(simulator, samples), "vmimage:kubernetes": kubernetes}
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    preview = stack.preview()
    for name in names:
        assert f"CustomResourceDefinition {name}: the cluster's own (VM Operator's), left alone" in preview.output
    stack.up()
    assert stack.resources("apiextensions.k8s.io/v1:CustomResourceDefinition") == {}
    assert {name: cluster.get("crd", name)["metadata"]["resourceVersion"] for name in names} == before
    published = {r["outputs"]["vmi_id"] for r in stack.resources("vmimage:ClusterVirtualMachineImage").values()}
    listed = json.loads(cluster.kubectl("get", "cvmi", "-o", "json").stdout)["items"]
    photon = next(o for o in listed if o["metadata"]["name"] in published and o["status"]["name"] == "photon-5-sample")
    assert photon["status"]["osInfo"]["type"] == "vmwarePhoton64Guest"
    stack.preview("--expect-no-changes")
    stack.destroy()
    assert {name: cluster.get("crd", name)["metadata"]["resourceVersion"] for name in names} == before
    left = json.loads(cluster.kubectl("get", "cvmi", "-o", "json").stdout)["items"]
    assert published and not published & {o["metadata"]["name"] for o in left}


def test_the_served_version_is_discovered_once_per_cluster(cluster: Cluster, monkeypatch):
    """A provider host publishes many images: one discovery request per cluster, not one per image."""
    target = KubeTarget(str(cluster.kubeconfig))
    with ImageObjects(target) as first:
        assert first.image_version() == "v1alpha6"

    def no_second_request(self):
        raise AssertionError("discovery asked again")

    monkeypatch.setattr(ImageObjects, "_discover", no_second_request)
    with ImageObjects(target) as second:
        assert second.image_version() == "v1alpha6"
