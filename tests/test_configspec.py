"""govmomi's rules for what VM Operator takes from a descriptor, case by case, where the
records in tests/fixtures/vm-operator do not each exercise them."""

from __future__ import annotations

import pytest

from vmimage.descriptor.configspec import allocation_units
from vmimage.descriptor.envelope import Property
from vmimage.descriptor.guest_os import cim_os_type, guest_id_from_cim
from vmimage.descriptor.ovf import parse_descriptor
from vmimage.descriptor.vapp import PropertyValueError, expression_default, parse_default, property_type

HEAD = (
    '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" '
    'xmlns:rasd="r" xmlns:vmw="http://www.vmware.com/schema/ovf">'
)


def _item(instance: str, kind: int, name: str = "", parent: str | None = None, **fields: str) -> str:
    parts = [f"<rasd:InstanceID>{instance}</rasd:InstanceID>", f"<rasd:ResourceType>{kind}</rasd:ResourceType>"]
    parts.append(f"<rasd:ElementName>{name or instance}</rasd:ElementName>")
    if parent is not None:
        parts.append(f"<rasd:Parent>{parent}</rasd:Parent>")
    configuration = fields.pop("configuration", None)
    parts += [f"<rasd:{key}>{value}</rasd:{key}>" for key, value in fields.items()]
    attribute = f' ovf:configuration="{configuration}"' if configuration else ""
    return f"<Item{attribute}>{''.join(parts)}</Item>"


def _config(items: list[str], disks: str = "", before: str = "", products: str = ""):
    data = (
        f"{HEAD}<DiskSection>{disks}</DiskSection>{before}<VirtualSystem ovf:id='vm'>{products}"
        f"<VirtualHardwareSection>{''.join(items)}</VirtualHardwareSection></VirtualSystem></Envelope>"
    )
    descriptor = parse_descriptor(data.encode(), "test.ovf")
    return descriptor.config, descriptor.config_error


def _disk(disk_id: str, gib: int) -> str:
    return f'<Disk ovf:diskId="{disk_id}" ovf:capacity="{gib}" ovf:capacityAllocationUnits="byte * 2^30"/>'


def _layout(config) -> list[tuple]:
    return [(d.label, d.capacity_bytes, d.unit_number, d.controller_type, d.controller_bus) for d in config.disks]


def test_units_skip_the_scsi_controllers_own_and_follow_earlier_devices():
    disks = "".join(_disk(f"d{i}", 1) for i in range(9))
    items = [_item("1", 6, ResourceSubType="pvscsi")] + [
        _item(f"1{i}", 17, f"disk{i}", "1", HostResource=f"ovf:/disk/d{i}") for i in range(9)
    ]
    config, error = _config(items, disks)
    assert error is None
    assert [unit for _, _, unit, _, _ in _layout(config)] == [0, 1, 2, 3, 4, 5, 6, 8, 9]


def test_a_cdrom_takes_a_unit_and_address_on_parent_wins():
    items = [
        _item("1", 5, "ide0"),
        _item("2", 15, "cdrom", "1"),
        _item("3", 17, "first", "1", HostResource="ovf:/disk/a"),
        _item("4", 17, "second", "1", HostResource="ovf:/disk/b", AddressOnParent="0"),
    ]
    config, _ = _config(items, _disk("a", 1) + _disk("b", 2))
    assert _layout(config) == [("first", 2**30, 1, "IDE", 0), ("second", 2 * 2**30, 0, "IDE", 0)]


def test_controllers_get_the_lowest_free_bus_unless_they_name_one():
    items = [
        _item("1", 6, "scsi0"),
        _item("2", 6, "scsi1"),
        _item("3", 20, "nvme", ResourceSubType="vmware.nvme.controller", Address="2"),
        _item("4", 17, "a", "2", HostResource="ovf:/disk/a"),
        _item("5", 17, "b", "3", HostResource="ovf:/disk/b"),
        _item("6", 17, "loose", HostResource="ovf:/disk/b"),  # no Parent: no controller, no unit
    ]
    config, _ = _config(items, _disk("a", 1) + _disk("b", 1))
    assert _layout(config) == [
        ("a", 2**30, 0, "SCSI", 1),
        ("b", 2**30, 0, "NVME", 2),
        ("loose", 2**30, None, None, None),
    ]


def test_the_default_configuration_selects_items_else_the_first():
    options = (
        '<DeploymentOptionSection><Configuration ovf:id="small"/>'
        '<Configuration ovf:id="large" {}/></DeploymentOptionSection>'
    )
    items = [
        _item("1", 6),
        _item("2", 17, "s", "1", HostResource="ovf:/disk/a", configuration="small"),
        _item("3", 17, "l", "1", HostResource="ovf:/disk/b", configuration="large"),
        _item("4", 17, "always", "1", HostResource="ovf:/disk/a"),
    ]
    disks = _disk("a", 1) + _disk("b", 2)
    with_default, _ = _config(items, disks, options.format('ovf:default="true"'))
    without, _ = _config(items, disks, options.format(""))
    assert [d.label for d in with_default.disks] == ["l", "always"]
    assert [d.label for d in without.disks] == ["s", "always"]


@pytest.mark.parametrize(
    ("item", "disks", "capacity", "error"),
    [
        (_item("2", 17, "q", "1", AllocationUnits="byte * 2^20", VirtualQuantity="5"), "", 5 * 2**20, None),
        (_item("2", 17, "p", "1", HostResource="ovf:/disk/p"),
         '<Disk ovf:diskId="p" ovf:capacity="${size}" ovf:capacityAllocationUnits="byte * 2^30"/>', None,
         'capacity references property "size" which is not defined'),
        (_item("2", 17, "m", "1", HostResource="ovf:/disk/zzz"), _disk("a", 1), None, 'missing diskID "ovf:/disk/zzz"'),
        (_item("2", 17, "c", "1", HostResource="ovf:/disk/a"),
         '<Disk ovf:diskId="a" ovf:capacity="ten"/>', None, 'disk=ovf:/disk/a has invalid capacity="ten"'),
    ],
)  # fmt: skip
def test_disk_capacities_and_the_errors_that_fail_a_descriptor(item, disks, capacity, error):
    config, found = _config([_item("1", 6), item], disks)
    if error is None:
        assert found is None and config.disks[0].capacity_bytes == capacity
    else:
        assert config is None and error in found and 'unsupported item name="' in found


def test_items_govmomi_cannot_make_fail_and_unsupported_subtypes_are_skipped():
    assert _config([_item("1", 6, ResourceSubType="megaraid")])[1].endswith("unknown SCSI controller type 'megaraid'")
    assert _config([_item("1", 1, ResourceSubType="vmware.soundcard.hdaudio")])[1] is None
    assert "nil VirtualQuantity and Reservation" in _config([_item("1", 3)])[1]
    assert _config(["<Item><rasd:InstanceID>9</rasd:InstanceID></Item>"])[1].endswith('msg="nil ResourceType"')


def test_a_value_go_cannot_decode_fails_the_whole_descriptor():
    product = '<ProductSection><Property ovf:key="k" ovf:userConfigurable="yes"/></ProductSection>'
    config, error = _config([], products=product)
    assert config is None and 'parsing "yes"' in error


@pytest.mark.parametrize(
    ("ovf_type", "qualifiers", "password", "vapp_type"),
    [
        ("string", None, None, "string"),
        ("string", None, True, "password"),
        ("string", "MinLen(8)", True, "password(8..)"),
        ("string", "MaxLen(253)", None, "string(0..253)"),
        ("string", "MinLen(1) MaxLen(253)", None, "string(1..253)"),
        ("string", 'ValueMap{"a", "b c"}', None, 'string["a", "b c"]'),
        ("uint16", None, None, "int"),
        ("uint8", "ValueMap{1, 5, 3}", None, "int(1..5)"),
        ("sint32", "MinValue(-4)", None, "int(-4..2147483647)"),
        ("real64", "MaxValue(2.5)", None, "real(-1e+308..2.5)"),
        ("string", "Ip", None, "ip"),
        ("string", 'Ip("VM Network")', None, "ip:VM Network"),
        ("string", "VimIp", None, "expression"),
        ("Custom", None, None, "Custom"),
    ],
)
def test_vapp_types(ovf_type, qualifiers, password, vapp_type):
    prop = Property("k", ovf_type, qualifiers, True, None, password, None)
    assert property_type(prop) == vapp_type


def test_defaults_parse_as_vapp_does_quirks_included():
    assert parse_default("k", "boolean", " false ") == "False"
    assert parse_default("k", "boolean", "TRUE") == "True"
    assert parse_default("k", "int(0..255)", "80") == "80"
    assert expression_default('Net("Management")') == "${net:Management}"
    with pytest.raises(PropertyValueError, match='prop="k", type=int, value=eight'):
        parse_default("k", "int", "eight")
    with pytest.raises(PropertyValueError, match="type=password\\(8..\\)"):  # govmomi checks "(8..)" as a maximum
        parse_default("k", "password(8..)", "a-long-password")
    with pytest.raises(PropertyValueError, match="due to size"):
        parse_default("k", "int(1..5)", "9")


@pytest.mark.parametrize(
    ("units", "factor"),
    [("", 1), ("byte", 1), ("byte * 2^30", 2**30), ("byte*2^20", 2**20), ("MegaBytes", 10**6), ("byte * 1024", 1024),
     ("gibibyte", 2**30), ("percent", 0), ("byte * 2^", 0), ("2^10 * byte * 4", 4096)],
)  # fmt: skip
def test_allocation_units(units, factor):
    assert allocation_units(units) == factor


def test_guest_ids_and_cim_numbers_both_ways():
    assert [cim_os_type(g) for g in ("vmwarePhoton64Guest", "windows2019srv_64Guest", "winNetStandardGuest", "")] == [
        101, 102, 69, 0,
    ]  # fmt: skip
    assert guest_id_from_cim(96, "12") == "debian12_64Guest"
    assert guest_id_from_cim(94, "24.04") == "ubuntu64Guest"  # no versioned entry: the bare one
    assert guest_id_from_cim(95) == ""  # Debian has versioned entries only


def test_a_guest_id_from_the_cim_number_when_the_descriptor_has_no_os_type():
    system = '<VirtualSystem ovf:id="vm"><OperatingSystemSection ovf:id="80" ovf:version="9"/></VirtualSystem>'
    data = f"{HEAD}{system}</Envelope>"
    assert parse_descriptor(data.encode(), "t.ovf").config.guest_id == "rhel9_64Guest"


@pytest.mark.parametrize("digits", ["²", "١٢", "１６"])
def test_only_ascii_digits_are_numbers(digits):
    """Go's parsers read ASCII digits only; Python's int() and float() would read these."""
    disk = f'<Disk ovf:diskId="d" ovf:capacity="{digits}" ovf:capacityAllocationUnits="byte * 2^30"/>'
    config, error = _config([_item("1", 6), _item("2", 17, "d", "1", HostResource="ovf:/disk/d")], disk)
    assert config is None and "invalid capacity" in error
    config, error = _config([_item("1", 6, AddressOnParent=digits)])
    assert config is None and "invalid AddressOnParent" in error
    with pytest.raises(PropertyValueError):
        parse_default("k", "int", digits)
    with pytest.raises(PropertyValueError):
        parse_default("k", "real", digits)
    assert allocation_units(f"byte * {digits}") == 0
