"""Every real descriptor reads into an object the upstream CRD accepts, and the facts SOURCES.md
states hold as VM Operator reads them (tests/test_fidelity.py compares whole objects)."""

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.helpers import READY, inspect_file
from vmimage.contract.schema import schema_errors
from vmimage.descriptor.ovf import parse_descriptor
from vmimage.descriptor.source import read_image_file
from vmimage.errors import ImageError

REAL = sorted((FIXTURES / "ovf").glob("*.ovf"))
MORE = sorted((FIXTURES / "ovf-more").glob("*.ovf"))
ITEM = "e1968c25-dd84-4506-8dc7-9beacb6b688e"
REFUSED = {"cot-csr1000v.ovf", "cot-invalid.ovf"}  # VM Operator publishes them NotSynced


def test_all_eleven_real_descriptors_are_present(fixtures):
    assert len(REAL) == 11


@pytest.mark.parametrize("path", REAL + MORE, ids=lambda p: p.name)
def test_every_descriptor_reads_into_an_object_the_crd_accepts(path):
    obj = inspect_file(path, item_id=ITEM, content_version="1", namespace="default")
    assert obj["status"]["type"] == "OVF"
    ready = obj["status"]["conditions"][0]
    assert (ready["status"] == "False") is (path.name in REFUSED)
    assert schema_errors(obj) == []


def _status(path: Path) -> dict:
    return inspect_file(path)["status"]


def test_ttylinux_facts(fixtures):
    obj = inspect_file(fixtures / "ovf" / "ttylinux-pc_i486-16.1.ovf", name="ttylinux", item_id=ITEM)
    status = obj["status"]
    assert status["osInfo"] == {"id": "36", "type": "otherLinuxGuest"}
    assert (status["hardwareVersion"], status["firmware"]) == (9, "efi")
    assert status["ovfProperties"] == [{"key": "dummy-key-configurable", "type": "string", "default": "dummy-value"}]
    assert status["vmwareSystemProperties"] == [{"key": "vmware-system.tkr.os-version", "value": "1.15"}]
    assert [(d["name"], d["limit"]) for d in status["disks"]] == [("disk0", "30Mi")]
    assert status["conditions"] == READY
    assert obj["metadata"]["annotations"] == {"vmware.com/display-name": "ttylinux"}


def test_photon_ova_facts(fixtures):
    status = _status(fixtures / "ovf" / "photon-ova.ovf")
    assert (status["osInfo"]["type"], status["hardwareVersion"]) == ("other3xLinux64Guest", 11)
    product = {"product": "Photon OS", "vendor": "VMware Inc.", "version": "3.0", "fullVersion": "3.0"}
    assert status["productInfo"] == product
    assert status["disks"][0]["limit"] == "16Gi"
    assert [p["key"] for p in status["vmwareSystemProperties"]] == [
        "vmware-system.compatibilityoffering.version",
        "vmware-system.compatibilityoffering.offers.pvc.version",
        "vmware-system.compatibilityoffering.offers.kube-apiserver.version",
    ]
    assert "ovfProperties" not in status  # not user-configurable


def test_a_disk_sized_by_a_property_without_a_value_is_refused():
    data = b"""<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
      xmlns:rasd="r"><DiskSection><Disk ovf:diskId="d" ovf:capacity="${missing}"/></DiskSection>
      <VirtualSystem ovf:id="v"><VirtualHardwareSection><Item><rasd:InstanceID>1</rasd:InstanceID>
      <rasd:ResourceType>17</rasd:ResourceType><rasd:HostResource>ovf:/disk/d</rasd:HostResource></Item>
      </VirtualHardwareSection></VirtualSystem></Envelope>"""
    descriptor = parse_descriptor(data, "x.ovf")
    assert descriptor.config is None
    assert 'capacity references property "missing"' in descriptor.config_error


def test_csr1000v_is_refused_for_its_nic_type(fixtures):
    descriptor = read_image_file(str(fixtures / "ovf-more" / "cot-csr1000v.ovf")).descriptor
    assert descriptor.config_error.endswith("unknown ethernet card type 'vmxnet3 virtio'")
    assert descriptor.envelope.system.hardware.system_type.split()[:4] == ["vmx-08", "vmx-09", "vmx-10", "vmx-11"]


def test_ovf_09_sections_by_xsi_type_are_not_sections_vm_operator_reads(fixtures):
    status = _status(fixtures / "ovf-more" / "cot-ovf0.9.ovf")
    assert status["osInfo"] == {"id": "0"} and status["productInfo"] == {}
    assert "hardwareVersion" not in status and "disks" not in status


def test_bom_and_first_of_two_virtual_systems(fixtures):
    path = fixtures / "ovf-more" / "sunvhw-disktypes-invalidutf.ovf"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    status = _status(path)
    assert status["osInfo"] == {"id": "69", "type": "winNetStandardGuest"}
    assert status["hardwareVersion"] == 7
    assert len(status["disks"]) == 2  # of the collection's four: the first VirtualSystem's


def test_ttylinux_extraconfig_without_product_section(fixtures):
    descriptor = read_image_file(str(fixtures / "ovf-more" / "ttylinux-extraconfig-govmomi.ovf")).descriptor
    assert descriptor.config.products is None
    assert descriptor.config.extra_config_value("tools.syncTimeWithHost") == "true"
    assert _status(fixtures / "ovf-more" / "ttylinux-extraconfig-govmomi.ovf")["productInfo"] == {}


@pytest.mark.parametrize("name", ["empty-envelope.ovf", "cot-ersatz-ovf3.0.ovf"])
def test_sparse_descriptors_give_minimal_status(fixtures, name):
    status = _status(fixtures / "ovf-more" / name)
    assert status["type"] == "OVF" and "firmware" not in status
    assert status["osInfo"] == {"id": "0"} and status["conditions"] == READY


def test_windows_2008_disk(fixtures):
    status = _status(fixtures / "ovf-more" / "windows2008r2-x64.ovf")
    assert status["osInfo"] == {"id": "103", "type": "windows7Server64Guest"}
    assert status["disks"][0]["limit"] == "40Gi"


@pytest.mark.parametrize(
    "path",
    [p for p in REAL if p.name.startswith(("esx", "nsx", "o11n", "opapp", "opcp", "vcfls", "vcsa", "VMware"))],
    ids=lambda p: p.name,
)
def test_vmware_appliances_have_a_guest_and_a_hardware_version_unless_they_list_several(path):
    status = _status(path)
    assert status["osInfo"]["type"] and status["osInfo"]["id"] != "0"
    several = path.name.startswith(("nsx", "opapp", "opcp"))  # vmx-13 vmx-11 vmx-10, vmx-10,vmx-11
    assert ("hardwareVersion" in status) is not several


def test_not_an_envelope_is_a_clear_error():
    with pytest.raises(ImageError, match="not an OVF descriptor"):
        parse_descriptor(b"<html><body/></html>", "page.ovf")
