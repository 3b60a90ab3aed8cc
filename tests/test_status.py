import pytest

from vmimage.labels import image_labels, is_label_value
from vmimage.models import ImageStatus, OSInfo
from vmimage.ovf import Descriptor, Property
from vmimage.quantity import binary_quantity
from vmimage.status import image_capabilities, os_family


@pytest.mark.parametrize(
    ("guest_id", "family"),
    [
        ("windows2019srv_64Guest", "Windows"),
        ("winNetStandardGuest", "Windows"),
        ("winXPProGuest", "Windows"),
        ("darwin21_64Guest", "macOS"),
        ("photon64Guest", "Linux"),
        ("vmwarePhoton64Guest", "Linux"),
        ("ubuntu64Guest", "Linux"),
        ("rhel9_64Guest", "Linux"),
        ("centos8_64Guest", "Linux"),
        ("debian12_64Guest", "Linux"),
        ("sles15_64Guest", "Linux"),
        ("otherLinuxGuest", "Linux"),
        ("other3xLinux64Guest", "Linux"),
        ("other26xLinux64Guest", "Linux"),
        ("freebsd13_64Guest", "Other"),
        ("solaris11_64Guest", "Other"),
        ("otherGuest64", "Other"),
    ],
)
def test_os_family(guest_id, family):
    assert os_family(guest_id) == family


@pytest.mark.parametrize(
    ("n_bytes", "quantity"),
    [
        (0, "0"),
        (1, "1"),
        (1023, "1023"),
        (1024, "1Ki"),
        (30 * 2**20, "30Mi"),
        (20 * 2**30, "20Gi"),
        (1500 * 2**20, "1500Mi"),
        (3 * 2**40, "3Ti"),
        (18743296, "18304Ki"),
        (10**9, "1000000000"),
        (1000 * 2**10, "1000Ki"),
    ],
)
def test_binary_quantity(n_bytes, quantity):
    assert binary_quantity(n_bytes) == quantity


def _prop(key, value="", configurable=True):
    return Property(key=key, plain_key=key, type="string", value=value, user_configurable=configurable)


def test_capabilities_union_sorted_unique():
    descriptor = Descriptor(
        properties=(_prop("capabilities.image.vmoperator.vmware.com", " nvidia-gpu, ,sriov,nvidia-gpu", False),),
    )
    assert image_capabilities(descriptor, ["zeta", "sriov"]) == ["nvidia-gpu", "sriov", "zeta"]


def test_cloud_init_from_user_data_property_only_when_configurable():
    assert image_capabilities(Descriptor(properties=(_prop("user-data"),))) == ["cloud-init"]
    assert image_capabilities(Descriptor(properties=(_prop("user-data", configurable=False),))) == []


def test_cloud_init_from_guestinfo_userdata_extra_config():
    assert image_capabilities(Descriptor(extra_config={"guestinfo.userdata": ""})) == ["cloud-init"]


def test_labels_leave_out_invalid_values_instead_of_mangling_them():
    status = ImageStatus(
        os_info=OSInfo(type="Linux", version="Ubuntu 24.04 LTS"),  # spaces: not a label value
        capabilities=["cloud-init", "has space", "x" * 64],
    )
    assert image_labels(status) == {
        "os.image.vmoperator.vmware.com/type": "Linux",
        "capability.image.vmoperator.vmware.com/cloud-init": "",
    }


@pytest.mark.parametrize(
    ("value", "valid"),
    [("", True), ("5.0", True), ("a" * 63, True), ("a" * 64, False), ("-a", False), ("a_b.c-d", True), ("v1 ", False)],
)
def test_label_values(value, valid):
    assert is_label_value(value) is valid


def test_item_status_of_a_missing_or_broken_descriptor_is_not_synced():
    from datetime import UTC, datetime

    from vmimage.status import item_status

    now = datetime(2024, 1, 15, tzinfo=UTC)
    for data in (None, b"<Envelope"):
        status = item_status(data, "item x:x.ovf", iso=False, name="n", now=now, item_id="i", content_version="2")
        (condition,) = status.conditions
        assert (status.type, condition.status, condition.reason) == ("OVF", "False", "VirtualMachineImageNotSynced")
        assert condition.message.startswith("item x:x.ovf: ")
    iso = item_status(None, "item y", iso=True, name="n", now=now)
    assert (iso.type, iso.conditions[0].status) == ("ISO", "True")
