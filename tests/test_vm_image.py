"""VirtualMachineImage / ClusterVirtualMachineImage resources: status from vCenter, objects in a cluster."""

from __future__ import annotations

import grpc
import pytest

from providers.content_library import ContentLibraryProvider
from providers.library_item import ContentLibraryItemProvider
from providers.vm_image import ClusterVirtualMachineImageProvider, VirtualMachineImageProvider
from tests.test_providers import ITEM, LIBRARY, direct_client
from vmimage.contract.ids import vmi_id
from vmimage.contract.image import content_library_ref
from vmimage.contract.schema import schema_errors
from vmimage.descriptor.samples import SAMPLES, write_iso, write_ova
from vmimage.vsphere.descriptors import DescriptorCache, content_version

pytestmark = pytest.mark.vcsim
VMI = "pulumi-python:dynamic/vmimage:VirtualMachineImage"
CVMI = "pulumi-python:dynamic/vmimage:ClusterVirtualMachineImage"
PLURAL = {"VirtualMachineImage": "virtualmachineimages", "ClusterVirtualMachineImage": "clustervirtualmachineimages"}


@pytest.fixture(scope="module")
def item(host, tmp_path_factory):
    library = host.up(LIBRARY, ContentLibraryProvider(), {"name": "images-test", "datastore": "LocalDS_0"})
    ova = write_ova(tmp_path_factory.mktemp("ova") / "photon.ova", SAMPLES[0])
    return host.up(
        ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": "photon-5", "source": str(ova)}
    )


def in_cluster(kube, kind: str, namespace: str | None, name: str):
    return kube.get(PLURAL[kind], name, namespace)


def image_inputs(item, kube=None, **extra) -> dict:
    inputs = {
        "item_id": item.id,
        "content_version": item.outputs["content_version"],
        "display_name": "Photon OS 5.0",
        "namespace": "dev",
    }
    if kube is not None:
        inputs["kubeconfig"] = str(kube.kubeconfig)
    return {**inputs, **extra}


def test_namespaced_image_is_published_with_status(host, item, kube):
    step = host.up(
        VMI,
        VirtualMachineImageProvider(),
        image_inputs(item, kube, capabilities=["nvidia-gpu"], extra_labels={"team": "platform"}),
    )
    assert step.op == "create" and step.id == vmi_id(item.id) == step.outputs["vmi_id"]
    live = in_cluster(kube, "VirtualMachineImage", "dev", step.id)
    assert live is not None and schema_errors(live) == []
    assert live["status"] == step.outputs["status"]
    status = live["status"]
    assert status["name"] == "Photon OS 5.0" and status["providerItemID"] == item.id
    assert status["providerContentVersion"] == item.outputs["content_version"]
    assert status["capabilities"] == ["nvidia-gpu"]  # declared twice: by the stack and by the descriptor
    assert status["osInfo"] == {"id": "101", "type": "vmwarePhoton64Guest"}
    assert (
        live["metadata"]["labels"]
        == step.outputs["labels"]
        == {
            "team": "platform",
            "image.vmoperator.vmware.com/type": "OVF",
            "os.image.vmoperator.vmware.com/id": "101",
            "os.image.vmoperator.vmware.com/type": "vmwarePhoton64Guest",
            "capability.image.vmoperator.vmware.com/nvidia-gpu": "true",
        }
    )
    library_id = item.inputs["library_id"]
    assert live["metadata"]["annotations"] == {
        "vmware.com/display-name": "Photon OS 5.0",
        "vmoperator.vmware.com/conversion-content-lib-ref": content_library_ref(library_id, cluster=False),
    }
    assert "ownerReferences" not in live["metadata"]  # this cluster has no image registry: no item object
    assert live["apiVersion"] == "vmoperator.vmware.com/v1alpha6"  # what VM Operator's CRDs store
    assert live["spec"]["providerRef"]["name"] == "clitem-" + step.id.removeprefix("vmi-")
    assert step.outputs["status"] == status and step.outputs["published"] is True
    assert "manifest" not in step.outputs  # the object is in the cluster; the state keeps its status once
    # no change, no work
    again = host.up(
        VMI,
        VirtualMachineImageProvider(),
        image_inputs(item, kube, capabilities=["nvidia-gpu"], extra_labels={"team": "platform"}),
        after=step,
    )
    assert again.op == "same"


def test_updates_in_place_and_removes_what_went_away(host, item, kube):
    created = host.up(
        VMI, VirtualMachineImageProvider(), image_inputs(item, kube, namespace="team-a", capabilities=["sriov"])
    )
    step = host.up(
        VMI,
        VirtualMachineImageProvider(),
        image_inputs(item, kube, namespace="team-a", display_name="Photon 5"),
        after=created,
    )
    assert step.op == "update" and step.id == created.id
    live = in_cluster(kube, "VirtualMachineImage", "team-a", step.id)
    assert live["status"]["name"] == "Photon 5"
    assert live["status"]["capabilities"] == ["nvidia-gpu"]  # what the descriptor declares stays
    assert "capability.image.vmoperator.vmware.com/sriov" not in live["metadata"]["labels"]


@pytest.mark.parametrize(
    ("change", "replaces"),
    [
        ({"namespace": "team-b"}, ["namespace"]),
        ({"item_id": "e1968c25-dd84-4506-8dc7-9beacb6b688e"}, ["item_id"]),
        ({"content_version": "2"}, []),
        ({"display_name": "x"}, []),
        ({"capabilities": ["sriov"]}, []),
    ],
)
def test_diff_rules(host, item, change, replaces):
    checked = host.check(VMI, VirtualMachineImageProvider(), {}, image_inputs(item)).inputs
    new = host.check(VMI, VirtualMachineImageProvider(), {}, image_inputs(item, **change)).inputs
    diff = host.diff(vmi_id(item.id), checked, new)
    assert diff.changes is True and diff.replaces == replaces


def test_cluster_image(host, item, kube):
    inputs = image_inputs(item, kube)
    del inputs["namespace"]
    step = host.up(CVMI, ClusterVirtualMachineImageProvider(), inputs)
    live = in_cluster(kube, "ClusterVirtualMachineImage", None, step.id)
    assert live["kind"] == "ClusterVirtualMachineImage" and "namespace" not in live["metadata"]
    assert live["spec"]["providerRef"]["kind"] == "ClusterContentLibraryItem"
    host.delete(step.id, step.outputs)
    assert in_cluster(kube, "ClusterVirtualMachineImage", None, step.id) is None
    host.delete(step.id, step.outputs)  # already gone counts as done


def test_refresh_notices_deletes_and_edits_out_of_band(host, item, kube):
    step = host.up(VMI, VirtualMachineImageProvider(), image_inputs(item, kube, namespace="default"))
    kube.kubectl(  # someone edits the status by hand
        "patch",
        "virtualmachineimage",
        step.id,
        "-n",
        "default",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"name": "hand-edited"}}',
    )
    id_, outputs, inputs = host.read(step.id, step.outputs, step.inputs)
    assert id_ == step.id and outputs["status"]["name"] == "hand-edited"
    assert inputs["drift"] == "edited outside Pulumi: status"
    fixed = host.up(
        VMI,
        VirtualMachineImageProvider(),
        image_inputs(item, kube, namespace="default"),
        state={**outputs, "__id": id_},
        old_inputs=inputs,
    )
    assert fixed.op == "update"
    assert in_cluster(kube, "VirtualMachineImage", "default", step.id)["status"]["name"] == "Photon OS 5.0"
    kube.kubectl("delete", "virtualmachineimage", step.id, "-n", "default")
    assert host.read(step.id, fixed.outputs, fixed.inputs)[0] == ""


def test_without_a_cluster_the_status_is_computed_only(host, item, kube):
    step = host.up(VMI, VirtualMachineImageProvider(), image_inputs(item, namespace="team-b"))
    assert step.outputs["published"] is False
    assert step.outputs["status"]["osInfo"]["type"] == "vmwarePhoton64Guest"
    assert in_cluster(kube, "VirtualMachineImage", "team-b", step.id) is None


def test_iso_and_missing_items(host, item, kube, tmp_path):
    iso_item = host.up(
        ITEM,
        ContentLibraryItemProvider(),
        {
            "library_id": item.inputs["library_id"],
            "name": "tools-iso",
            "source": str(write_iso(tmp_path / "tools.iso")),
        },
    )
    iso = host.up(VMI, VirtualMachineImageProvider(), image_inputs(iso_item, kube, display_name="VMware Tools"))
    assert iso.outputs["status"]["type"] == "ISO" and iso.outputs["status"]["osInfo"] == {}
    missing = host.up(
        VMI, VirtualMachineImageProvider(), {**image_inputs(item), "item_id": "e1968c25-dd84-4506-8dc7-9beacb6b688e"}
    )
    (condition,) = missing.outputs["status"]["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "VirtualMachineImageProviderNotReady")


def test_unreachable_cluster_is_a_clear_error(host, item, tmp_path):
    from tests.devcluster import write_kubeconfig

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:9", _any_ca(tmp_path), "t")
    with pytest.raises(grpc.RpcError) as caught:
        host.up(VMI, VirtualMachineImageProvider(), {**image_inputs(item), "kubeconfig": str(kubeconfig)})
    assert "Kubernetes cluster" in caught.value.details() and "connection failed" in caught.value.details()
    assert "Traceback" not in caught.value.details()


def _any_ca(directory):
    from tests.tls import write_self_signed

    return write_self_signed(directory)[0]


@pytest.mark.parametrize(
    ("change", "prop"),
    [
        ({"item_id": "nope"}, "item_id"),
        ({"namespace": ""}, "namespace"),
        ({"capabilities": ["has space"]}, "capabilities"),
        ({"extra_labels": {"team": "not valid!"}}, "extra_labels"),
        ({"display_name": ""}, "display_name"),
    ],
)
def test_check_failures(host, item, change, prop):
    checked = host.check(VMI, VirtualMachineImageProvider(), {}, {**image_inputs(item), **change})
    assert [p for p, _ in checked.failures] == [prop]


def test_cluster_images_take_no_namespace(host, item):
    checked = host.check(CVMI, ClusterVirtualMachineImageProvider(), {}, image_inputs(item))
    assert [p for p, _ in checked.failures] == ["namespace"]


def test_descriptors_are_downloaded_once_per_content_version(vcsim, item, tmp_path):
    with direct_client(vcsim) as client:
        info = client.get_item(item.id)
        version = content_version(client, info)
        cache = DescriptorCache(tmp_path)
        first = cache.fetch(client, info, version)
        second = cache.fetch(client, info, version)
        assert first == second and first.name == "photon.ovf" and cache.downloads == 1
        fresh = DescriptorCache(tmp_path)  # a later `pulumi up`: read from disk
        assert fresh.fetch(client, info, version) == first and fresh.downloads == 0
        assert DescriptorCache(tmp_path).fetch(client, info, "2") is not None  # another version: fetched


def test_concurrent_fetches_of_one_descriptor_never_publish_a_torn_file(tmp_path, monkeypatch):
    """One image in several namespaces: its descriptor is fetched by several threads at once.
    Each writer has a temporary file of its own, renamed into place whole."""
    import threading
    from pathlib import Path

    from vmimage.vsphere.content_library import ItemFile, ItemInfo

    data = SAMPLES[0].descriptor("d.vmdk", 10)
    start = threading.Barrier(8)

    class SlowClient:
        def item_files(self, item_id):
            return [ItemFile("p.ovf", len(data), "1")]

        def download(self, item_id, name, limit):
            start.wait()  # every thread downloads, then writes, at the same moment
            return data

    temporaries: list[str] = []
    real_write = Path.write_bytes

    def write_in_halves(self, content):  # a slow disk: each write lands in two parts
        if self.name.endswith(".tmp"):
            temporaries.append(self.name)
            real_write(self, content[: len(content) // 2])
            with open(self, "ab") as stream:
                stream.write(content[len(content) // 2 :])
            return len(content)
        return real_write(self, content)

    monkeypatch.setattr(Path, "write_bytes", write_in_halves)
    info = ItemInfo("item-1", "lib", "photon", "", "ovf", 0, "1", None)
    cache = DescriptorCache(tmp_path)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.fetch(SlowClient(), info, "1"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(temporaries)) == len(temporaries) == 8  # no two writers share a temporary file
    assert all(result.data == data for result in results)
    assert (tmp_path / "item-1" / "1.ovf").read_bytes() == data


def test_the_provider_host_shares_one_client_per_cluster_until_its_kubeconfig_changes(tmp_path):
    """Image calls share the host's client of their cluster (kubeconfig read and TLS set up once
    per host, not per image); a rewritten kubeconfig (a rotated token) gets a new one."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from providers import connection
    from tests.devcluster import write_kubeconfig
    from tests.tls import write_self_signed
    from vmimage.cluster.kube import KubeTarget

    ca_file, _ = write_self_signed(tmp_path)
    path = write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:6443", ca_file, "token-1")
    target = KubeTarget(str(path))

    def client(_: int = 0):
        with connection.cluster(target) as objects:
            return objects

    with ThreadPoolExecutor(16) as pool:  # parallel calls, as `up --parallel 16` makes them
        shared = set(map(id, pool.map(client, range(64))))
    first = client()
    assert shared == {id(first)}
    other = write_kubeconfig(tmp_path / "other", "https://127.0.0.1:6443", ca_file, "token-1", context="other")
    with connection.cluster(KubeTarget(str(other))) as elsewhere:  # another context: another client
        assert elsewhere is not first
    assert client() is first

    write_kubeconfig(path, "https://127.0.0.1:6443", ca_file, "token-2")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    renewed = client()
    assert renewed is not first and renewed.api_client.configuration.api_key == {"BearerToken": "Bearer token-2"}
    connection.close_clusters()
