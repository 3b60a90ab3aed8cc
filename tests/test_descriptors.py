"""Every real descriptor reads; the facts SOURCES.md states hold; full objects for several."""

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.helpers import READY, inspect_file
from vmimage.errors import ImageError
from vmimage.ovf import parse_descriptor
from vmimage.schema import schema_errors
from vmimage.source import read_image_file

REAL = sorted((FIXTURES / "ovf").glob("*.ovf"))
MORE = sorted((FIXTURES / "ovf-more").glob("*.ovf"))
ITEM = "e1968c25-dd84-4506-8dc7-9beacb6b688e"


def test_all_eleven_real_descriptors_are_present(fixtures):
    assert len(REAL) == 11


@pytest.mark.parametrize("path", REAL + MORE, ids=lambda p: p.name)
def test_every_descriptor_reads_into_a_valid_object(path):
    obj = inspect_file(path, item_id=ITEM, content_version="1", namespace="default")
    assert obj["status"]["type"] == "OVF"
    assert obj["status"]["conditions"] == READY
    assert schema_errors(obj) == []


def test_ttylinux_full_object(fixtures):
    obj = inspect_file(
        fixtures / "ovf" / "ttylinux-pc_i486-16.1.ovf",
        name="ttylinux",
        item_id=ITEM,
        content_version="2",
        namespace="default",
    )
    assert obj == {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": "VirtualMachineImage",
        "metadata": {
            "name": "vmi-0a0044d7c690bcbea",
            "namespace": "default",
            "labels": {"os.image.vmoperator.vmware.com/type": "Linux", "os.image.vmoperator.vmware.com/version": "v1"},
        },
        "spec": {
            "providerRef": {
                "apiVersion": "imageregistry.vmware.com/v1alpha1",
                "kind": "ContentLibraryItem",
                "name": "clitem-0a0044d7c690bcbea",
            }
        },
        "status": {
            "name": "ttylinux",
            "type": "OVF",
            "firmware": "EFI",
            "hardwareVersion": 9,
            "osInfo": {"id": "otherLinuxGuest", "type": "Linux", "version": "v1"},
            "productInfo": {"product": "Linux", "vendor": "LinuxVendor", "version": "v1", "fullVersion": "v1.0.0"},
            "disks": [{"capacity": "30Mi", "size": "18304Ki"}],
            "ovfProperties": [{"key": "dummy-key-configurable", "type": "string", "default": "dummy-value"}],
            "vmwareSystemProperties": [{"key": "vmware-system.tkr.os-version", "value": "1.15"}],
            "providerItemID": ITEM,
            "providerContentVersion": "2",
            "conditions": READY,
        },
    }


def test_photon_ova_full_object_as_cluster_image(fixtures):
    obj = inspect_file(fixtures / "ovf" / "photon-ova.ovf", name="Photon OS 3.0", cluster=True)
    system_keys = [
        ("vmware-system.compatibilityoffering.version", "v1alpha2"),
        ("vmware-system.compatibilityoffering.offers.pvc.version", "v2"),
        ("vmware-system.compatibilityoffering.offers.kube-apiserver.version", "1.14"),
    ]
    assert obj == {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": "ClusterVirtualMachineImage",
        "metadata": {
            "labels": {"os.image.vmoperator.vmware.com/type": "Linux", "os.image.vmoperator.vmware.com/version": "3.0"}
        },
        "spec": {},
        "status": {
            "name": "Photon OS 3.0",
            "type": "OVF",
            "firmware": "BIOS",
            "hardwareVersion": 11,
            "osInfo": {"id": "other3xLinux64Guest", "type": "Linux", "version": "3.0"},
            "productInfo": {"product": "Photon OS", "vendor": "VMware Inc.", "version": "3.0", "fullVersion": "3.0"},
            "disks": [{"capacity": "16Gi", "size": "4857984Ki"}],
            "ovfProperties": [{"key": k, "type": "string", "default": v} for k, v in system_keys],
            "vmwareSystemProperties": [{"key": k, "value": v} for k, v in system_keys],
            "conditions": READY,
        },
    }


def test_ubuntu_cloud_image_full_object(fixtures):
    obj = inspect_file(fixtures / "ovf-more" / "ubuntu-24.10-cloudimg.ovf", name="ubuntu-24.10", capabilities=["sriov"])
    assert obj == {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": "VirtualMachineImage",
        "metadata": {
            "labels": {
                "os.image.vmoperator.vmware.com/type": "Linux",
                "capability.image.vmoperator.vmware.com/cloud-init": "",
                "capability.image.vmoperator.vmware.com/sriov": "",
            }
        },
        "spec": {},
        "status": {
            "name": "ubuntu-24.10",
            "type": "OVF",
            "firmware": "BIOS",
            "hardwareVersion": 10,
            "capabilities": ["cloud-init", "sriov"],
            "osInfo": {"id": "ubuntu64Guest", "type": "Linux"},
            "productInfo": {"product": "Ubuntu 24.10 Server (20241109)"},
            "disks": [{"capacity": "10Gi", "size": "0"}],
            "ovfProperties": [
                {"key": "instance-id", "type": "string", "default": "id-ovf"},
                {"key": "hostname", "type": "string", "default": "ubuntuguest"},
                {"key": "seedfrom", "type": "string"},
                {"key": "public-keys", "type": "string"},
                {"key": "user-data", "type": "string"},
                {"key": "password", "type": "string"},
            ],
            "conditions": READY,
        },
    }


def test_photon5_full_object(fixtures):
    obj = inspect_file(fixtures / "ovf-more" / "photon5-govmomi.ovf", name="Photon OS 5.0", namespace="team-a")
    assert obj == {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": "VirtualMachineImage",
        "metadata": {
            "namespace": "team-a",
            "labels": {"os.image.vmoperator.vmware.com/type": "Linux", "os.image.vmoperator.vmware.com/version": "5.0"},
        },
        "spec": {},
        "status": {
            "name": "Photon OS 5.0",
            "type": "OVF",
            "firmware": "EFI",
            "hardwareVersion": 15,
            "osInfo": {"id": "vmwarePhoton64Guest", "type": "Linux", "version": "5.0"},
            "productInfo": {"product": "Photon OS", "vendor": "VMware Inc.", "version": "5.0", "fullVersion": "5.0"},
            "disks": [{"capacity": "16Gi", "size": "838400Ki"}],
            "conditions": READY,
        },
    }


def test_windows_2019_full_status(fixtures):
    obj = inspect_file(fixtures / "ovf-more" / "windows2019-efi-simplevm.ovf", name="Windows Server 2019")
    assert obj["metadata"] == {"labels": {"os.image.vmoperator.vmware.com/type": "Windows"}}
    assert obj["status"] == {
        "name": "Windows Server 2019",
        "type": "OVF",
        "firmware": "EFI",
        "hardwareVersion": 21,
        "osInfo": {"id": "windows2019srv_64Guest", "type": "Windows"},
        "disks": [{"capacity": "1Gi"}],
        "conditions": READY,
    }


def _status(path: Path) -> dict:
    return inspect_file(path)["status"]


def test_uber_capacity_from_property_reference(fixtures):
    disks = _status(fixtures / "ovf" / "uber.ovf")["disks"]
    # Two disks are sized ${scratch_space_size_small} / ${..._large}: defaults 10 and 20, units MiB.
    assert [d["capacity"] for d in disks] == ["20Mi", "30Mi", "40Mi", "50Mi", "60Mi", "10Mi", "20Mi"]


def test_multiple_disks_property_references_in_gib(fixtures):
    disks = _status(fixtures / "ovf-more" / "govmomi-multiple-disks.ovf")["disks"]
    assert len(disks) == 7
    assert disks[-2:] == [{"capacity": "10Gi"}, {"capacity": "20Gi"}]


def test_capacity_reference_without_default_leaves_capacity_out():
    data = b"""<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
      <DiskSection><Disk ovf:capacity="${missing}" ovf:populatedSize="1024"/></DiskSection></Envelope>"""
    assert parse_descriptor(data, "x.ovf").disks[0].capacity_bytes is None


def test_csr1000v_classed_properties_and_highest_hardware_version(fixtures):
    status = _status(fixtures / "ovf-more" / "cot-csr1000v.ovf")
    assert status["hardwareVersion"] == 11  # vmx-08 vmx-09 vmx-10 vmx-11 Cisco:Internal:VMCloud-01
    keys = [p["key"] for p in status["ovfProperties"]]
    assert len(keys) == 26
    assert all(k.startswith("com.cisco.csr1000v.") and k.endswith(".1") for k in keys)
    assert "com.cisco.csr1000v.hostname.1" in keys


def test_ovf_09_sections_by_xsi_type(fixtures):
    status = _status(fixtures / "ovf-more" / "cot-ovf0.9.ovf")
    assert status["osInfo"]["id"] == "other26xLinux64Guest"
    assert status["osInfo"]["type"] == "Linux"
    assert status["hardwareVersion"] == 4
    assert status["disks"] == [{"capacity": "1Gi"}]


def test_bom_and_first_of_two_virtual_systems(fixtures):
    path = fixtures / "ovf-more" / "sunvhw-disktypes-invalidutf.ovf"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    status = _status(path)
    assert status["osInfo"] == {"id": "winNetStandardGuest", "type": "Windows"}
    assert status["hardwareVersion"] == 7


def test_ttylinux_extraconfig_without_product_section(fixtures):
    descriptor = read_image_file(str(fixtures / "ovf-more" / "ttylinux-extraconfig-govmomi.ovf")).descriptor
    assert descriptor.product is None
    assert descriptor.extra_config["tools.syncTimeWithHost"] == "true"
    assert "productInfo" not in _status(fixtures / "ovf-more" / "ttylinux-extraconfig-govmomi.ovf")


@pytest.mark.parametrize("name", ["empty-envelope.ovf", "cot-ersatz-ovf3.0.ovf", "cot-invalid.ovf"])
def test_sparse_descriptors_give_minimal_status(fixtures, name):
    status = _status(fixtures / "ovf-more" / name)
    assert status["type"] == "OVF" and status["firmware"] == "BIOS"
    assert "osInfo" not in status or "id" not in status["osInfo"]


def test_windows_2008_disk(fixtures):
    status = _status(fixtures / "ovf-more" / "windows2008r2-x64.ovf")
    assert status["osInfo"] == {"id": "windows7Server64Guest", "type": "Windows"}
    assert status["disks"][0]["capacity"] == "40Gi"


@pytest.mark.parametrize(
    "path",
    [p for p in REAL if p.name.startswith(("esx", "nsx", "o11n", "opapp", "opcp", "vcfls", "vcsa", "VMware"))],
    ids=lambda p: p.name,
)
def test_vmware_appliances_have_guest_and_hardware(path):
    status = _status(path)
    assert status["osInfo"]["id"]
    assert status["hardwareVersion"] >= 11


def test_not_an_envelope_is_a_clear_error():
    with pytest.raises(ImageError, match="not an OVF descriptor"):
        parse_descriptor(b"<html><body/></html>", "page.ovf")
