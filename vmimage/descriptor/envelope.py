"""An OVF descriptor read the way VM Operator reads it (govmomi's ``ovf.Envelope``).

VM Operator decodes the descriptor with Go's XML rules, and those rules decide what an image's
status says, so this reader follows them rather than the OVF specification:
elements and attributes match by local name in any namespace (the last attribute of a name
wins), only the Envelope's own children count (References, DiskSection,
DeploymentOptionSection, VirtualSystem or the first VirtualSystem of a VirtualSystemCollection),
OVF 0.9's ``<Section xsi:type=…>`` is not a known section, text is kept verbatim (not trimmed),
and a number or boolean Go cannot parse fails the whole descriptor (EnvelopeError).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple
from xml.etree.ElementTree import Element


class EnvelopeError(ValueError):
    """The descriptor is XML, but not one Go's decoder accepts as an ovf.Envelope."""


@functools.lru_cache(maxsize=4096)
def local(name: str) -> str:
    """``{namespace}Name`` → ``Name``: a descriptor has a few dozen distinct names, asked for thousands of times."""
    return name.rsplit("}", 1)[-1] if isinstance(name, str) else ""


def attr(element: Element | None, name: str) -> str | None:
    """The attribute of this local name in any namespace; the last one when several match."""
    if element is None:
        return None
    found = None
    for qualified, value in element.attrib.items():
        if local(qualified) == name:
            found = value
    return found


def children(element: Element | None, name: str) -> list[Element]:
    return [] if element is None else [child for child in element if local(child.tag) == name]


def first(element: Element | None, name: str) -> Element | None:
    found = children(element, name)
    return found[0] if found else None


def chardata(element: Element) -> str:
    """The element's own character data, verbatim: its text and the tails of its children."""
    return (element.text or "") + "".join(child.tail or "" for child in element)


def text(element: Element | None, name: str) -> str | None:
    """The character data of the last child of this name (Go keeps the last), or None."""
    found = children(element, name)
    return chardata(found[-1]) if found else None


_INTEGER = re.compile(r"[+-]?[0-9]{1,40}")


def parse_integer(text: str, low: int, high: int) -> int | None:
    """``text`` as a decimal integer within [low, high]; None for anything else, as Go's strconv
    fails on syntax and range (and a 5,000-digit number never reaches int())."""
    if not _INTEGER.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


# Go's strconv rules for the typed fields of ovf.Envelope: surrounding space is trimmed, an empty
# value is the zero value, anything else that does not parse fails the decode.
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def go_bool(value: str | None, what: str) -> bool | None:
    if value is None:
        return None
    value = value.strip()
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE or value == "":
        return False
    raise EnvelopeError(f'strconv.ParseBool: parsing "{value}": invalid syntax ({what})')


def _go_integer(value: str | None, what: str, low: int, high: int, parser: str) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if value == "":
        return 0
    number = parse_integer(value, low, high) if low < 0 or (value.isascii() and value.isdigit()) else None
    if number is None:
        raise EnvelopeError(f'strconv.{parser}: parsing "{value}": invalid syntax or out of range ({what})')
    return number


def go_uint(value: str | None, what: str, bits: int = 64) -> int | None:
    return _go_integer(value, what, 0, 2**bits - 1, "ParseUint")


def go_int(value: str | None, what: str, bits: int = 64) -> int | None:
    return _go_integer(value, what, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, "ParseInt")


class PropertyValue(NamedTuple):
    value: str
    configuration: str | None


class Property(NamedTuple):
    key: str
    type: str
    qualifiers: str | None
    user_configurable: bool | None
    default: str | None
    password: bool | None
    configuration: str | None
    values: tuple[PropertyValue, ...] = ()


class ProductSection(NamedTuple):
    product: str = ""
    vendor: str = ""
    version: str = ""
    full_version: str = ""
    properties: tuple[Property, ...] = ()


class Item(NamedTuple):
    """A VirtualHardwareSection Item (CIM ResourceAllocationSettingData) as govmomi keeps it."""

    element_name: str
    instance_id: str
    resource_type: int | None
    resource_sub_type: str | None
    parent: str | None
    address: str | None
    address_on_parent: str | None
    allocation_units: str | None
    virtual_quantity: int | None
    reservation: int | None
    host_resource: tuple[str, ...]
    configuration: str | None
    config: tuple[tuple[str, str], ...]


class Hardware(NamedTuple):
    system_type: str | None
    config: tuple[tuple[str, str], ...]
    extra_config: tuple[tuple[str, str], ...]
    items: tuple[Item, ...]


class Disk(NamedTuple):
    disk_id: str
    file_ref: str | None
    capacity: str
    capacity_allocation_units: str | None


class VirtualSystem(NamedTuple):
    id: str
    products: tuple[ProductSection, ...]
    os_id: int | None  # None: no OperatingSystemSection
    os_version: str | None
    os_type: str | None
    hardware: Hardware | None  # the first VirtualHardwareSection only


class Envelope(NamedTuple):
    files: tuple[tuple[str, str], ...] = ()  # (id, href)
    disks: tuple[Disk, ...] = ()
    configurations: tuple[tuple[str, bool], ...] = ()  # DeploymentOptionSection: (id, default)
    system: VirtualSystem | None = None


def _config_pairs(element: Element | None, name: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for config in children(element, name):
        go_bool(attr(config, "required"), f"{name} required")
        pairs.append((attr(config, "key") or "", attr(config, "value") or ""))
    return tuple(pairs)


def _property(element: Element) -> Property:
    key = attr(element, "key") or ""
    return Property(
        key=key,
        type=attr(element, "type") or "",
        qualifiers=attr(element, "qualifiers"),
        user_configurable=go_bool(attr(element, "userConfigurable"), f"property {key!r} userConfigurable"),
        default=attr(element, "value"),
        password=go_bool(attr(element, "password"), f"property {key!r} password"),
        configuration=attr(element, "configuration"),
        values=tuple(
            PropertyValue(attr(value, "value") or "", attr(value, "configuration"))
            for value in children(element, "Value")
        ),
    )


def _product(section: Element) -> ProductSection:
    return ProductSection(
        product=text(section, "Product") or "",
        vendor=text(section, "Vendor") or "",
        version=text(section, "Version") or "",
        full_version=text(section, "FullVersion") or "",
        properties=tuple(_property(element) for element in children(section, "Property")),
    )


# Item and System children Go decodes as numbers or booleans: a bad value fails the decode.
_ITEM_NUMBERS: dict[str, Callable[[str | None, str], object]] = {
    "Limit": go_uint,
    "Reservation": go_uint,
    "Weight": go_uint,
    "MappingBehavior": go_uint,
    "ConsumerVisibility": lambda v, w: go_uint(v, w, 16),
    "ResourceType": lambda v, w: go_uint(v, w, 16),
    "VirtualQuantity": go_uint,
    "AutomaticAllocation": go_bool,
    "AutomaticDeallocation": go_bool,
    "CoresPerSocket": lambda v, w: go_int(v, w, 32),
}
_SYSTEM_NUMBERS: dict[str, Callable[[str | None, str], object]] = {
    "AutomaticRecoveryAction": lambda v, w: go_uint(v, w, 8),
    "AutomaticShutdownAction": lambda v, w: go_uint(v, w, 8),
    "AutomaticStartupAction": lambda v, w: go_uint(v, w, 8),
    "AutomaticStartupActionSequenceNumber": lambda v, w: go_uint(v, w, 16),
}


def _check_numbers(element: Element, rules: dict, where: str) -> None:
    for child in element:
        rule = rules.get(local(child.tag))
        if rule is not None:
            rule(chardata(child), f"{where} {local(child.tag)}")


def _item(element: Element) -> Item:
    by_name: dict[str, list[Element]] = {}
    for child in element:  # one pass: an Item is read field by field
        by_name.setdefault(local(child.tag), []).append(child)

    def field(name: str) -> str | None:
        found = by_name.get(name)
        return chardata(found[-1]) if found else None

    name = field("ElementName") or ""
    _check_numbers(element, _ITEM_NUMBERS, f"item {name!r}")
    go_bool(attr(element, "required"), f"item {name!r} required")
    return Item(
        element_name=name,
        instance_id=field("InstanceID") or "",
        resource_type=go_uint(field("ResourceType"), "ResourceType", 16),
        resource_sub_type=field("ResourceSubType"),
        parent=field("Parent"),
        address=field("Address"),
        address_on_parent=field("AddressOnParent"),
        allocation_units=field("AllocationUnits"),
        virtual_quantity=go_uint(field("VirtualQuantity"), "VirtualQuantity"),
        reservation=go_uint(field("Reservation"), "Reservation"),
        host_resource=tuple(chardata(host) for host in by_name.get("HostResource", ())),
        configuration=attr(element, "configuration"),
        config=_config_pairs(element, "Config"),
    )


def _hardware(section: Element) -> Hardware:
    system = first(section, "System")
    if system is not None:
        _check_numbers(system, _SYSTEM_NUMBERS, "System")
    return Hardware(
        system_type=text(system, "VirtualSystemType") if system is not None else None,
        config=_config_pairs(section, "Config"),
        extra_config=_config_pairs(section, "ExtraConfig"),
        items=tuple(_item(element) for element in children(section, "Item")),
    )


def _virtual_system(element: Element, fallback_products: list[Element]) -> VirtualSystem:
    products = children(element, "ProductSection") or fallback_products
    os_section = first(element, "OperatingSystemSection")
    hardware = children(element, "VirtualHardwareSection")
    return VirtualSystem(
        id=attr(element, "id") or "",
        products=tuple(_product(section) for section in products),
        os_id=None if os_section is None else go_int(attr(os_section, "id"), "OperatingSystemSection id", 16) or 0,
        os_version=attr(os_section, "version"),
        os_type=attr(os_section, "osType"),
        hardware=_hardware(hardware[0]) if hardware else None,
    )


def _disks(root: Element) -> Iterator[Disk]:
    for section in children(root, "DiskSection"):
        for disk in children(section, "Disk"):
            go_int(attr(disk, "populatedSize"), "Disk populatedSize")
            yield Disk(
                disk_id=attr(disk, "diskId") or "",
                file_ref=attr(disk, "fileRef"),
                capacity=attr(disk, "capacity") or "",
                capacity_allocation_units=attr(disk, "capacityAllocationUnits"),
            )


def read_envelope(root: Element) -> Envelope:
    """The envelope VM Operator sees in a parsed descriptor; EnvelopeError where Go's decode fails."""
    files = []
    for references in children(root, "References"):
        for element in children(references, "File"):
            go_uint(attr(element, "size"), "File size")
            files.append((attr(element, "id") or "", attr(element, "href") or ""))
    configurations = []
    for section in children(root, "DeploymentOptionSection"):
        for element in children(section, "Configuration"):
            default = go_bool(attr(element, "default"), "Configuration default")
            configurations.append((attr(element, "id") or "", bool(default)))
    system_element = first(root, "VirtualSystem")
    system = None
    if system_element is not None:
        system = _virtual_system(system_element, [])
    else:
        collection = first(root, "VirtualSystemCollection")
        members = children(collection, "VirtualSystem")
        if members:
            system = _virtual_system(members[0], children(collection, "ProductSection"))
    return Envelope(files=tuple(files), disks=tuple(_disks(root)), configurations=tuple(configurations), system=system)
