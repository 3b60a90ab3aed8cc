"""What VM Operator takes from an envelope: govmomi's ``Envelope.ToConfigSpec``, reduced to the
parts an image's status is made of (guest id, firmware, hardware version, products, properties,
ExtraConfig, disks and their controllers).

The rules are govmomi's, because VM Operator publishes their result: the default deployment
configuration (else the first) selects Items and properties; only the first VirtualHardwareSection
counts; controllers get bus numbers and devices unit numbers the way ``VirtualDeviceList``
assigns them; an Item govmomi cannot turn into a device fails the whole descriptor with
govmomi's message (ConfigSpecError), which is what VM Operator logs before it marks the image
NotSynced.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from vmimage.descriptor.envelope import Envelope, Item, Property, VirtualSystem, parse_integer
from vmimage.descriptor.guest_os import guest_id_from_cim
from vmimage.descriptor.vapp import PropertyValueError, expression_default, parse_default, property_type

_MAX_INT64 = 2**63 - 1


class ConfigSpecError(ValueError):
    """govmomi refuses the descriptor; the message is govmomi's."""


class VAppProperty(NamedTuple):
    key: str
    type: str
    default: str
    user_configurable: bool


class Product(NamedTuple):
    product: str
    vendor: str
    version: str
    full_version: str


class ConfigDisk(NamedTuple):
    label: str
    capacity_bytes: int
    unit_number: int | None
    controller_type: str | None  # IDE, SCSI, SATA, NVME; None when the disk has no controller
    controller_bus: int | None


class ConfigSpec(NamedTuple):
    guest_id: str = ""
    firmware: str = ""
    version: str = ""
    products: tuple[Product, ...] | None = None  # None: no ProductSection, so no vApp config at all
    properties: tuple[VAppProperty, ...] = ()
    extra_config: tuple[tuple[str, str], ...] = ()
    disks: tuple[ConfigDisk, ...] = ()

    def extra_config_value(self, key: str) -> str:
        """The first ExtraConfig value of ``key`` ("" when absent), as OptionValueList.GetString."""
        return next((value for k, value in self.extra_config if k == key), "")


# ---------------------------------------------------------------------------------------------
# Devices: only what decides the disks' controller type, bus number and unit number.


class _Device:
    """A device of the VM configuration being built: only what decides the disks' controller type,
    bus number and unit number. Controller kinds: IDE, SCSI, SATA, NVME, SIO, USB."""

    __slots__ = ("bus_number", "capacity", "controller_key", "key", "kind", "label", "unit_number")

    def __init__(self, kind: str, key: int = 0) -> None:
        self.kind, self.key = kind, key
        self.controller_key, self.unit_number, self.bus_number = 0, None, 0
        self.label, self.capacity = "", 0

    @property
    def is_controller(self) -> bool:
        return self.kind in ("IDE", "SCSI", "SATA", "NVME", "SIO", "USB")


class _Devices:
    """The device list, with govmomi's VirtualDeviceList rules for keys, buses and units."""

    def __init__(self) -> None:
        self.items: list[_Device] = []

    def new_key(self) -> int:
        return min([-200, *(d.key for d in self.items)]) - 1

    def new_bus(self, kind: str) -> int:
        used = sorted(d.bus_number for d in self.items if d.kind == kind and d.bus_number >= 0)
        for index, bus in enumerate(range(4)):
            if index == len(used) or bus != used[index]:
                return bus
        return -1

    def new_unit(self, controller: _Device) -> int:
        units = [False] * 30
        if controller.kind == "SCSI":
            units[7] = True  # the SCSI controller's own unit
        for device in self.items:
            unit = device.unit_number
            if device.controller_key == controller.key and unit is not None and 0 <= unit < 30:
                units[unit] = True
        return next((unit for unit, used in enumerate(units) if not used), -1)

    def attach(self, device: _Device, controller: _Device | None) -> _Device:
        if controller is not None:
            device.controller_key = controller.key
            device.unit_number = self.new_unit(controller)
        return device

    def controller(self, kind: str) -> _Device:
        device = _Device(kind, key=self.new_key())
        if kind in ("SCSI", "SATA", "NVME"):
            device.bus_number = self.new_bus(kind)
        return device


class _Unsupported(Exception):
    """An error for one Item; ``subtype`` marks the ones govmomi skips silently."""

    def __init__(self, message: str = "", subtype: bool = False, localized: str = "") -> None:
        super().__init__(message)
        self.subtype = subtype
        self.localized = localized


_SCSI_TYPES = ("buslogic", "lsilogic", "lsilogic-sas", "lsilogicsas", "pvscsi", "scsi", "virtualscsi")
_SCSI_KNOWN = ("lsilogic", "buslogic", "pvscsi", "lsilogic-sas")
_SCSI_ALIASES = {"": "lsilogic", "scsi": "lsilogic", "virtualscsi": "pvscsi", "lsilogicsas": "lsilogic-sas"}
_NIC_TYPES = ("e1000", "e1000e", "vmxnet2", "vmxnet3", "pcnet32", "sriovethernetcard")


def _scsi_type(sub_type: str) -> str:
    for token in sub_type.replace(",", " ").split():
        if token.strip().lower() in _SCSI_TYPES:
            return token.strip().lower()
    return sub_type


def _go_quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _item_error(index: int, item: Item, sub_type: str, error: _Unsupported) -> ConfigSpecError:
    name, instance = _go_quote(item.element_name), _go_quote(item.instance_id)
    message = f"unsupported item name={name}, index={index}, instanceID={instance}"
    if item.resource_type:
        message += f", resourceType={item.resource_type}"
    if sub_type:
        message += f", resourceSubType={sub_type}"
    if error.localized:
        message += f", msg={_go_quote(error.localized)}"
    if str(error):
        message += f", {error}"
    return ConfigSpecError(message)


# ---------------------------------------------------------------------------------------------
# Capacities.

_BLANK = "[ \t]"
_VALID_CAPACITY = re.compile(
    rf"^{_BLANK}*((([1-9][0-9]*\^[1-9][0-9]*)|([1-9][0-9]*))($|{_BLANK}*\*{_BLANK}*))*"
    rf"(([a-zA-Z]*(b|B)(y|Y)(t|T)(e|E)(s|S)?)($|({_BLANK}*\*{_BLANK}*(([1-9][0-9]*\^[1-9][0-9]*)|([1-9][0-9]*)))*))?$"
)
_UNIT_PREFIXES = {
    "byte": 1, "kilobyte": 1000, "kibibyte": 1024, "megabyte": 1000**2, "mebibyte": 1024**2,
    "gigabyte": 1000**3, "gibibyte": 1024**3,
}  # fmt: skip


def allocation_units(text: str) -> int:
    """Bytes per unit of ``byte * 2^30``, ``MegaBytes``… (govmomi's ParseCapacityAllocationUnits); 0 if invalid."""
    if not _VALID_CAPACITY.match(text) or text.endswith("*"):
        return 0
    product = 1
    for token in re.sub(_BLANK, "", text).lower().split("*"):
        if not token:
            continue
        if re.search(r"(^|kilo|kibi|mega|mebi|giga|gibi)bytes?$", token) and token.removesuffix("s") in _UNIT_PREFIXES:
            product *= _UNIT_PREFIXES[token.removesuffix("s")]
        elif re.fullmatch(r"[1-9][0-9]*\^[1-9][0-9]*", token):
            base, exponent = (parse_integer(part, 1, _MAX_INT64) or 0 for part in token.split("^"))
            product *= base ** min(exponent, 64) if base > 1 else 1
        elif re.fullmatch(r"[1-9][0-9]*", token):
            product *= parse_integer(token, 1, _MAX_INT64) or 0  # Go's ParseInt fails: 0
        else:
            return 0
        product %= 2**64  # Go's int64 arithmetic wraps; keep the numbers bounded as it does
    return product


def _property_defaults(system: VirtualSystem, configuration: str) -> dict[str, str]:
    """Property key → default for the selected configuration, for ``${key}`` capacities."""
    defaults: dict[str, str] = {}
    for product in system.products:
        for prop in product.properties:
            if prop.configuration is not None and prop.configuration != configuration:
                continue
            value = prop.default or ""
            for candidate in prop.values:
                if candidate.configuration is not None and candidate.configuration == configuration:
                    value = candidate.value
                    break
            defaults[prop.key] = value.strip()
    return defaults


def _disk(envelope: Envelope, host_resource: str):
    """The DiskSection disk an Item's HostResource (``ovf:/disk/ID``) names: by its whole ID, else
    (older descriptors) the first whose ID ends the reference."""
    exact = (d for d in envelope.disks if host_resource == d.disk_id or host_resource.endswith("/" + d.disk_id))
    suffix = (d for d in envelope.disks if host_resource.endswith(d.disk_id))
    return next(exact, None) or next(suffix, None)


def _disk_capacity(envelope: Envelope, item: Item, defaults: dict[str, str]) -> int:
    if not item.host_resource:
        quantity = item.virtual_quantity if item.virtual_quantity is not None else 1
        capacity = allocation_units(item.allocation_units or "") * quantity
    elif len(item.host_resource) == 1:
        disk_id = item.host_resource[0]
        disk = _disk(envelope, disk_id)
        if disk is None:
            raise _Unsupported(f"missing diskID {_go_quote(disk_id)}")
        capacity = allocation_units(disk.capacity_allocation_units or "")
        size = disk.capacity
        if size:
            if size.startswith("${") and size.endswith("}"):
                key = size[2:-1].strip()
                if not key:
                    raise _Unsupported(f"disk={disk_id} has empty property reference in capacity={_go_quote(size)}")
                value = defaults.get(key, "")
                if not value:
                    raise _Unsupported(
                        f"disk={disk_id} capacity references property {_go_quote(key)} which is not defined "
                        "or has no value for this configuration"
                    )
                number = parse_integer(value, 0, 2**64 - 1) if value.isascii() and value.isdigit() else None
                if number is None:
                    raise _Unsupported(
                        f"disk={disk_id} capacity property {_go_quote(key)} value {_go_quote(value)} "
                        "is not a valid integer"
                    )
                capacity *= number
            else:
                number = parse_integer(size, 0, 2**64 - 1) if size.isascii() and size.isdigit() else None
                if number is None:
                    raise _Unsupported(f"disk={disk_id} has invalid capacity={_go_quote(size)}")
                capacity *= number
    else:
        raise _Unsupported("multiple HostResource elements")
    capacity %= 2**64
    if capacity > _MAX_INT64:
        raise _Unsupported(f"capacityInBytes={capacity} exceeds math.MaxInt64")
    return capacity


def _go_int32(text: str | None, what: str) -> int | None:
    if text is None or text == "":
        return None
    number = parse_integer(text, -(2**31), 2**31 - 1)
    if number is None:
        raise _Unsupported(f"invalid {what}={_go_quote(text)}")
    return number


# ---------------------------------------------------------------------------------------------
# The hardware section.


def _device(envelope: Envelope, item: Item, sub_type: str, devices: _Devices, resources: dict, defaults: dict):
    """The device an Item becomes (None for the kinds govmomi leaves alone)."""
    kind = item.resource_type

    def parent_controller() -> _Device | None:
        parent = resources.get(item.parent) if item.parent is not None else None
        return parent if parent is not None and parent.is_controller else None

    def controller(kind_name: str) -> _Device:
        device = devices.controller(kind_name)
        bus = _go_int32(item.address, "Address")
        if bus is not None:
            device.bus_number = bus
        resources[item.instance_id] = device
        return device

    if kind == 1:  # Other
        if sub_type != "vmware.vmci":
            raise _Unsupported(subtype=True)
        return _Device("vmci", key=devices.new_key())
    if kind in (3, 4):  # Processor, Memory
        if item.virtual_quantity is None and item.reservation is None:
            raise _Unsupported(localized="nil VirtualQuantity and Reservation")
        return None
    if kind == 5:
        return controller("IDE")
    if kind == 6:
        name = _scsi_type(sub_type)
        name = _SCSI_ALIASES.get(name, name)
        if name not in _SCSI_KNOWN:
            raise _Unsupported(f"unknown SCSI controller type '{name}'")
        return controller("SCSI")
    if kind == 10:
        name = sub_type or _NIC_TYPES[0]
        if name not in _NIC_TYPES:
            raise _Unsupported(f"unknown ethernet card type '{name}'")
        return _Device("nic", key=-1)
    if kind == 14:  # Floppy: on the SIO controller, created when missing
        sio = next((d for d in devices.items if d.kind == "SIO"), None)
        if sio is None:
            sio = devices.controller("SIO")
            devices.items.append(sio)
        floppy = devices.attach(_Device("floppy", key=-1), sio)
        resources[item.instance_id] = floppy
        return floppy
    if kind in (15, 16):  # CD or DVD drive
        if item.parent is None:
            raise _Unsupported("missing Parent")
        parent = resources.get(item.parent)
        if parent is None:
            return None
        if not parent.is_controller:
            raise _Unsupported("expectedType=*types.VirtualIDEController, actualType=*types.VirtualFloppy")
        return devices.attach(_Device("cdrom", key=-1), parent)
    if kind == 17:
        capacity = _disk_capacity(envelope, item, defaults)
        disk = devices.attach(_Device("disk", key=-1), parent_controller())
        disk.label, disk.capacity = item.element_name, capacity
        return disk
    if kind == 20:  # Other storage: SATA (AHCI) and NVMe controllers
        if sub_type in ("vmware.sata.ahci", "ahci"):
            return controller("SATA")
        if sub_type == "vmware.nvme.controller":
            return controller("NVME")
        raise _Unsupported(subtype=True)
    if kind == 23:
        if sub_type not in ("vmware.usb.ehci", "vmware.usb.xhci"):
            raise _Unsupported(subtype=True)
        device = _Device("USB", key=devices.new_key())
        bus = _go_int32(item.address, "Address")
        device.bus_number = bus if bus is not None else 0
        resources[item.instance_id] = device
        return device
    if kind == 24:  # Graphics: its numeric settings must parse
        for key, value in item.config:
            if key in ("graphicsMemorySizeInKB", "videoRamSizeInKB", "numDisplays") and not re.fullmatch(
                r"[+-]?[0-9]+", value
            ):
                raise _Unsupported(f"invalid {_go_quote(key)}={value}")
        return _Device("video", key=devices.new_key())
    return None


def _hardware(envelope: Envelope, system: VirtualSystem, configuration: str) -> tuple[ConfigDisk, ...]:
    hardware = system.hardware
    if hardware is None:
        return ()
    devices, resources = _Devices(), {}
    defaults = _property_defaults(system, configuration)
    for index, item in enumerate(hardware.items):
        if item.configuration is not None and item.configuration != configuration:
            continue
        if item.resource_type is None:
            raise _item_error(index, item, "", _Unsupported(localized="nil ResourceType"))
        sub_type = (item.resource_sub_type or "").lower()
        try:
            device = _device(envelope, item, sub_type, devices, resources, defaults)
            if device is None:
                continue
            unit = _go_int32(item.address_on_parent, "AddressOnParent")
            if unit is not None:
                device.unit_number = unit
            slot = next((value for key, value in item.config if key == "slotInfo.pciSlotNumber"), "")
            if slot and not re.fullmatch(r"[+-]?[0-9]+", slot):
                raise _Unsupported(f"invalid pci slot number {slot}")
        except _Unsupported as error:
            if error.subtype:
                continue
            raise _item_error(index, item, sub_type, error) from None
        devices.items.append(device)
    controllers = {d.key: d for d in devices.items if d.kind in ("IDE", "SCSI", "SATA", "NVME")}
    disks = []
    for device in devices.items:
        if device.kind != "disk":
            continue
        owner = controllers.get(device.controller_key) if device.controller_key else None
        disks.append(
            ConfigDisk(
                label=device.label,
                capacity_bytes=device.capacity,
                unit_number=device.unit_number,
                controller_type=owner.kind if owner else None,
                controller_bus=owner.bus_number if owner else None,
            )
        )
    return tuple(disks)


# ---------------------------------------------------------------------------------------------
# The vApp configuration.


def _vapp_property(prop: Property, configuration: str) -> VAppProperty:
    value = prop.default or ""
    for candidate in prop.values:
        if candidate.configuration is None or candidate.configuration == configuration:
            value = candidate.value
            break
    vapp_type = property_type(prop)
    value = value.strip()
    if value:
        try:
            value = parse_default(prop.key, vapp_type, value)
        except PropertyValueError as error:
            raise ConfigSpecError(str(error)) from None
    elif vapp_type == "expression" and prop.qualifiers is not None:
        value = expression_default(prop.qualifiers) or value
    return VAppProperty(key=prop.key, type=vapp_type, default=value, user_configurable=bool(prop.user_configurable))


def _configuration(envelope: Envelope) -> str:
    """The deployment configuration: the default one, else the first, else none."""
    for name, default in envelope.configurations:
        if default:
            return name
    return envelope.configurations[0][0] if envelope.configurations else ""


def config_spec(envelope: Envelope) -> ConfigSpec:
    """What VM Operator's ToConfigSpec call yields for the envelope; ConfigSpecError where it fails."""
    system = envelope.system
    if system is None:
        return ConfigSpec()
    configuration = _configuration(envelope)
    guest_id = ""
    if system.os_id is not None:  # an OperatingSystemSection: vmw:osType, else mapped from ovf:id
        guest_id = system.os_type
        if guest_id is None:
            guest_id = guest_id_from_cim(system.os_id, system.os_version or "")
    hardware = system.hardware
    firmware = ""
    if hardware is not None:
        for key, value in hardware.config:
            if key == "firmware":
                firmware = value
    disks = _hardware(envelope, system, configuration)
    products = None
    properties: list[VAppProperty] = []
    if system.products:
        products = tuple(Product(p.product, p.vendor, p.version, p.full_version) for p in system.products)
        for product in system.products:
            for prop in product.properties:
                if prop.configuration is not None and prop.configuration != configuration:
                    continue
                properties.append(_vapp_property(prop, configuration))
    return ConfigSpec(
        guest_id=guest_id,
        firmware=firmware,
        version=(hardware.system_type or "") if hardware is not None else "",
        products=products,
        properties=tuple(properties),
        extra_config=hardware.extra_config if hardware is not None else (),
        disks=disks,
    )
