"""Supervisor mode's image resources: they predict, then wait for VM Operator's object and hold
it to the prediction, and never write one. VM Operator is played back from its recorded output
(tests/vm_operator_playback.py), against the real API server and the simulator."""

from __future__ import annotations

import json

import grpc
import pytest
import yaml

from providers.content_library import ContentLibraryProvider
from providers.library_item import ContentLibraryItemProvider
from providers.vm_image import ClusterVirtualMachineImageProvider
from tests.engine import provider_host
from tests.test_providers import ITEM, LIBRARY, vsphere_config
from tests.vm_operator_playback import publish_later, recorded_object
from vmimage.ids import vmi_id
from vmimage.samples import SAMPLES, write_ova

pytestmark = pytest.mark.vcsim
CVMI = "pulumi-python:dynamic/vmimage:ClusterVirtualMachineImage"
FAST = {"VMIMAGE_OBSERVE_POLL_SECONDS": "0.2", "VMIMAGE_PROGRESS_INTERVAL": "0.5"}


@pytest.fixture(scope="module")
def host(vcsim):
    with provider_host(vsphere_config(vcsim), env=FAST) as started:
        yield started


@pytest.fixture(scope="module")
def library(host):
    return host.up(LIBRARY, ContentLibraryProvider(), {"name": "supervisor-images", "datastore": "LocalDS_0"})


def ubuntu_item(host, library, tmp_path, name: str):
    """The dev stack's ubuntu-24.04-sample package (byte-identical to the recorded one), as an item."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    ova = write_ova(tmp_path / "ubuntu-24.04-sample.ova", SAMPLES[1])
    return host.up(ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": name, "source": str(ova)})


def observed_inputs(item, kube, **observe) -> dict:
    return {
        "item_id": item.id,
        "content_version": item.outputs["content_version"],
        "display_name": item.outputs["name"],
        "kubeconfig": str(kube.kubeconfig),
        "observe": {"wait_seconds": 20, **observe},
    }


def recorded(item, library) -> dict:
    return recorded_object(
        "ubuntu-24.04-sample", item.id, library.id, item.outputs["content_version"], name=item.outputs["name"]
    )


def test_the_image_waits_for_vm_operators_object_and_matches_it(host, library, kube, tmp_path):
    item = ubuntu_item(host, library, tmp_path, "ubuntu-24.04-sample")
    publish_later(kube, recorded(item, library), after=1.5)
    since = len(host.stderr)
    step = host.up(CVMI, ClusterVirtualMachineImageProvider(), observed_inputs(item, kube))
    assert step.op == "create" and step.id == vmi_id(item.id)
    assert step.outputs["status"] == recorded(item, library)["status"] | {
        "conditions": step.outputs["status"]["conditions"]
    }
    assert step.outputs["published"] is False
    log = host.wait_for_log("waiting for VM Operator", since)
    assert "waiting for VM Operator to publish ClusterVirtualMachineImage" in log
    assert "differs from the prediction" not in "".join(host.stderr[since:])
    shown = kube.kubectl("get", "cvmi", step.id, "-o", "json", "--show-managed-fields").stdout
    managers = {entry["manager"] for entry in json.loads(shown)["metadata"]["managedFields"]}
    assert managers == {"vm-operator"}  # vmimage wrote nothing
    host.delete(step.id, step.outputs)
    assert kube.get("clustervirtualmachineimages", step.id) is not None  # nor deletes VM Operator's object


def test_a_difference_is_a_warning_field_by_field_and_a_failure_under_strict(host, library, kube, tmp_path):
    item = ubuntu_item(host, library, tmp_path, "ubuntu-mismatch")

    def bios(obj: dict) -> None:
        obj["status"]["firmware"] = "bios"

    publish_later(kube, recorded(item, library), after=0.5, change=bios)
    since = len(host.stderr)
    step = host.up(CVMI, ClusterVirtualMachineImageProvider(), observed_inputs(item, kube))
    warning = host.wait_for_log("differs from the prediction", since)
    assert "status.firmware: predicted 'efi', VM Operator has 'bios'" in warning
    assert step.outputs["status"]["firmware"] == "bios"  # the outputs are VM Operator's object
    with pytest.raises(grpc.RpcError) as caught:
        host.up(CVMI, ClusterVirtualMachineImageProvider(), observed_inputs(item, kube, strict=True))
    assert "differs from the prediction (strict)" in caught.value.details()
    assert "status.firmware: predicted 'efi', VM Operator has 'bios'" in caught.value.details()


def test_no_object_in_time_is_a_clear_error(host, library, kube, tmp_path):
    item = ubuntu_item(host, library, tmp_path, "ubuntu-never")
    with pytest.raises(grpc.RpcError) as caught:
        host.up(CVMI, ClusterVirtualMachineImageProvider(), observed_inputs(item, kube, wait_seconds=1))
    details = caught.value.details()
    assert "VM Operator has not published it within 1 s" in details and "is the item's library associated" in details
    assert "Traceback" not in details
    assert kube.get("clustervirtualmachineimages", vmi_id(item.id)) is None


def test_vmimage_verify_holds_the_cluster_to_the_stacks_prediction(host, library, kube, vcsim, tmp_path):
    """`vmimage verify`, outside Pulumi: as predicted (exit 0), then a field VM Operator wrote
    otherwise and an object it never published (exit 1, each named)."""

    from tests.test_cli_get import sync_stack, vmimage
    from tests.test_providers import PASSWORD
    from tests.vm_operator_playback import publish

    library = host.up(LIBRARY, ContentLibraryProvider(), {"name": "verify-images", "datastore": "LocalDS_0"})
    first = ubuntu_item(host, library, tmp_path / "a", "verify-ubuntu")
    second = ubuntu_item(host, library, tmp_path / "b", "verify-ubuntu-2")
    sync_stack(tmp_path / "project", "sv", vcsim, "verify-images", "cluster")
    for item in (first, second):  # VM Operator, for each item of a library the Supervisor has
        publish(
            kube,
            recorded_object(
                "ubuntu-24.04-sample", item.id, library.id, item.outputs["content_version"], name=item.outputs["name"]
            ),
        )

    def verify():
        return vmimage(
            "verify", "--stack", "sv", "--kubeconfig", str(kube.kubeconfig),
            cwd=tmp_path / "project", env={"VSPHERE_PASSWORD": PASSWORD},
        )  # fmt: skip

    ok = verify()
    assert ok.returncode == 0 and "2 images as predicted" in ok.stdout, ok.stdout + ok.stderr
    stack_file = tmp_path / "project" / "stacks" / "Pulumi.sv.yaml"
    synced_only = stack_file.read_text()
    declared = yaml.safe_load(synced_only)
    declared["config"]["vmimage:images"] = [
        {"displayName": "never-uploaded", "source": "never.ova", "library": "verify-images", "scope": "cluster"}
    ]
    stack_file.write_text(yaml.safe_dump(declared))
    missing = verify()  # the two that are there pass; the one that is not fails the run
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert missing.stdout == (
        "image 'never-uploaded' (vmimage:images[0], library 'verify-images', cluster scope): "
        "declared but vCenter has no item: not published yet, or deleted\n"
    )
    assert missing.stderr == "0 of 2 images differ from the prediction; 1 declared but not in vCenter\n"
    stack_file.write_text(synced_only)
    kube.kubectl(
        "patch", "cvmi", vmi_id(first.id), "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"firmware": "bios"}}),
    )  # fmt: skip
    kube.kubectl("delete", "cvmi", vmi_id(second.id))
    found = verify()
    assert found.returncode == 1
    assert "status.firmware: predicted 'efi', VM Operator has 'bios'" in found.stdout
    assert f"ClusterVirtualMachineImage {vmi_id(second.id)} ('verify-ubuntu-2'): not in the cluster" in found.stdout
    assert "2 of 2 images differ" in found.stderr


def test_capabilities_vm_operator_does_not_fill_are_no_difference(host, library, kube, tmp_path):
    """photon-5-sample declares a capability in its descriptor: vmimage predicts it (as the CRD
    documents), VM Operator's recorded object has none; that alone is not a difference."""
    (tmp_path / "p").mkdir()
    ova = write_ova(tmp_path / "p" / "photon-5-sample.ova", SAMPLES[0])
    item = host.up(
        ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": "photon-caps", "source": str(ova)}
    )
    obj = recorded_object(
        "photon-5-sample", item.id, library.id, item.outputs["content_version"], name=item.outputs["name"]
    )
    assert "capabilities" not in obj["status"]
    publish_later(kube, obj, after=0.5)
    since = len(host.stderr)
    step = host.up(CVMI, ClusterVirtualMachineImageProvider(), observed_inputs(item, kube, strict=True))
    assert step.op == "create" and "capabilities" not in step.outputs["status"]
    assert "differs from the prediction" not in "".join(host.stderr[since:])
