"""The status pieces VM Operator's records do not each exercise: quantities, capabilities,
labels, hardware versions, and items whose descriptor is missing or refused."""

from datetime import UTC, datetime

import pytest

from vmimage.contract.labels import extra_config_labels, image_labels, is_label_key, is_label_value
from vmimage.contract.models import ImageStatus, OSInfo
from vmimage.contract.status import NOT_SYNCED_MESSAGE, hardware_version, image_capabilities, item_status
from vmimage.descriptor.ovf import parse_descriptor
from vmimage.descriptor.quantity import disk_quantity

NOW = datetime(2024, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("n_bytes", "quantity"),
    [
        (0, "0"),
        (1, "1"),
        (1000, "1k"),  # not N × 1024^k: decimal, and Kubernetes prints 1000 as 1k
        (1023, "1023"),
        (1024, "1Ki"),
        (30 * 2**20, "30Mi"),
        (20 * 2**30, "20Gi"),
        (1536 * 2**20, "1610612736"),  # 1.5 Gi: N is not below 1024 at any unit, so decimal
        (3 * 2**40, "3Ti"),
        (52143587328, "52143587328"),  # the vCenter appliance's first disk, as VM Operator publishes it
        (10**9, "1G"),
        (20 * 10**9, "20G"),
    ],
)
def test_disk_quantities_follow_vm_operator(n_bytes, quantity):
    assert disk_quantity(n_bytes) == quantity


@pytest.mark.parametrize(
    ("version", "number"),
    [("vmx-19", 19), ("VMX-7", 7), ("21", 21), ("vmx-10 vmx-11", None), ("vmx-10,vmx-11", None), ("", None),
     ("vmx-256", None), ("vmx-0", None), ("virtualbox-2.2", None)],
)  # fmt: skip
def test_hardware_version_only_from_a_single_version(version, number):
    assert hardware_version(version) == number


def _descriptor(properties: str = "", extra: str = "") -> bytes:
    return f"""<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
        xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vmw="http://www.vmware.com/schema/ovf">
      <VirtualSystem ovf:id="vm">
        <ProductSection><Product>P</Product>{properties}</ProductSection>
        <VirtualHardwareSection><System><vssd:VirtualSystemType xmlns:vssd="x">vmx-19</vssd:VirtualSystemType></System>
          {extra}</VirtualHardwareSection>
      </VirtualSystem></Envelope>""".encode()


def test_capabilities_come_from_the_property_and_the_stack_only():
    descriptor = parse_descriptor(
        _descriptor(
            '<Property ovf:key="capabilities.image.vmoperator.vmware.com" ovf:value=" nvidia-gpu, ,sriov,nvidia-gpu"/>'
            '<Property ovf:key="user-data" ovf:type="string" ovf:userConfigurable="true"/>',
            '<vmw:ExtraConfig vmw:key="guestinfo.userdata" vmw:value=""/>',
        ),
        "test.ovf",
    )
    # user-data and guestinfo.userdata no longer make a cloud-init capability: nothing is inferred
    assert image_capabilities(descriptor.config, ["zeta", "sriov"]) == ["nvidia-gpu", "sriov", "zeta"]
    assert image_capabilities(None, []) == []


def test_labels_leave_out_invalid_values_and_capability_labels_are_true():
    status = ImageStatus(
        type="OVF",
        os_info=OSInfo(id="101", type="vmwarePhoton64Guest", version="Ubuntu 24.04 LTS"),  # spaces: no label
        capabilities=["cloud-init", "has space", "x" * 64],
    )
    assert image_labels(status) == {
        "image.vmoperator.vmware.com/type": "OVF",
        "os.image.vmoperator.vmware.com/id": "101",
        "os.image.vmoperator.vmware.com/type": "vmwarePhoton64Guest",
        "capability.image.vmoperator.vmware.com/cloud-init": "true",
    }


def test_status_labels_win_over_the_descriptors_and_the_stacks():
    status = ImageStatus(type="ISO")
    labels = image_labels(status, {"image.vmoperator.vmware.com/type": "x", "team": "a"}, {"team": "b", "env": "dev"})
    assert labels == {"image.vmoperator.vmware.com/type": "ISO", "team": "a", "env": "dev"}


@pytest.mark.parametrize(
    ("value", "labels"),
    [
        ("team:platform,gpu", {"team": "platform", "gpu": ""}),
        ("example.com/hello:world,fu.bar", {"example.com/hello": "world", "fu.bar": ""}),
        ("a:b:c,ok:1", {"ok": "1"}),  # VM Operator skips an entry with two colons
        ("bad key:x,-x:y,good:not valid", {}),  # the API server would refuse these: left out
        ("", {}),
    ],
)
def test_extra_config_labels(value, labels):
    assert extra_config_labels(value) == labels


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("a", True),
        ("example.com/a", True),
        ("Example.com/a", False),
        ("a/b/c", False),
        ("/a", False),
        ("a" * 64, False),
    ],
)
def test_label_keys(key, valid):
    assert is_label_key(key) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [("", True), ("5.0", True), ("a" * 63, True), ("a" * 64, False), ("-a", False), ("a_b.c-d", True), ("v1 ", False)],
)
def test_label_values(value, valid):
    assert is_label_value(value) is valid


def test_an_item_without_a_readable_descriptor_is_not_synced_the_way_vm_operator_says_it():
    for data in (None, b"<Envelope"):
        image = item_status(data, "item x:x.ovf", iso=False, name="n", now=NOW, item_id="i", content_version="2")
        status = image.status.wire()
        (condition,) = status["conditions"]
        assert (status["type"], condition["status"]) == ("OVF", "False")
        assert condition["reason"] == "VirtualMachineImageNotSynced"
        assert condition["message"] == NOT_SYNCED_MESSAGE
        assert "providerContentVersion" not in status and status["osInfo"] == {} and status["productInfo"] == {}
        assert image.sync_error.startswith("item x:x.ovf: ")
    iso = item_status(None, "item y", iso=True, name="n", now=NOW)
    assert (iso.status.type, iso.status.conditions[0].status, iso.sync_error) == ("ISO", "True", None)


def test_a_descriptor_govmomi_refuses_is_not_synced_with_its_reason():
    nic = (
        '<Item xmlns:rasd="r"><rasd:ElementName>nic</rasd:ElementName><rasd:ResourceType>10</rasd:ResourceType>'
        "<rasd:ResourceSubType>virtio</rasd:ResourceSubType></Item>"
    )
    refused = _descriptor(extra=nic)
    image = item_status(refused, "x.ovf", iso=False, name="n", now=NOW, item_id="i", content_version="1")
    assert image.status.conditions[0].reason == "VirtualMachineImageNotSynced"
    assert image.sync_error.endswith("unknown ethernet card type 'virtio'")
    assert image.labels == {}


def test_defer_cloud_init_ready_adds_the_v1alpha1_condition():
    ready = _descriptor(extra='<vmw:ExtraConfig vmw:key="guestinfo.vmservice.defer-cloud-init" vmw:value="ready"/>')
    other = _descriptor(extra='<vmw:ExtraConfig vmw:key="guestinfo.vmservice.defer-cloud-init" vmw:value="later"/>')
    kinds = [
        [c.type for c in item_status(data, "x", iso=False, name="n", now=NOW).status.conditions]
        for data in (ready, other)
    ]
    assert kinds == [["Ready", "VirtualMachineImageV1Alpha1Compatible"], ["Ready"]]
