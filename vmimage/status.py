"""From a descriptor's facts to VirtualMachineImageStatus, per upstream-notes.md."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from vmimage.errors import ImageError
from vmimage.models import (
    READY,
    REASON_NOT_SYNCED,
    Condition,
    Disk,
    ImageStatus,
    KeyValue,
    OSInfo,
    OVFProperty,
    ProductInfo,
)
from vmimage.ovf import Descriptor, parse_descriptor
from vmimage.quantity import binary_quantity

CAPABILITIES_PROPERTY = "capabilities.image.vmoperator.vmware.com"
CLOUD_INIT = "cloud-init"
SYSTEM_PROPERTY_PREFIX = "vmware-system"

# Guest ids of Linux distributions that do not say "linux" themselves.
_LINUX_DISTRIBUTIONS = re.compile(
    r"photon|ubuntu|rhel|redhat|centos|debian|sles|suse|fedora|asianux|mandrake|mandriva|coreos|flatcar",
    re.IGNORECASE,
)


def os_family(guest_id: str) -> str:
    """The OS family of a vSphere guest id: Windows, macOS, Linux or Other."""
    lowered = guest_id.lower()
    if lowered.startswith("win"):
        return "Windows"
    if lowered.startswith("darwin"):
        return "macOS"
    if "linux" in lowered or _LINUX_DISTRIBUTIONS.search(guest_id):
        return "Linux"
    return "Other"


def ready_condition(now: datetime) -> Condition:
    return Condition(type=READY, status="True", reason="True", message="", last_transition_time=now)


def not_ready_condition(reason: str, message: str, now: datetime) -> Condition:
    """Ready=False: ``reason`` is REASON_PROVIDER_NOT_READY or REASON_NOT_SYNCED."""
    return Condition(type=READY, status="False", reason=reason, message=message, last_transition_time=now)


def image_capabilities(descriptor: Descriptor | None, declared: Iterable[str] = ()) -> list[str]:
    """The union, sorted and unique, of declared, descriptor-declared and inferred capabilities."""
    found = {c.strip() for c in declared if c.strip()}
    if descriptor is not None:
        for prop in descriptor.properties:
            if prop.plain_key == CAPABILITIES_PROPERTY:
                found.update(c.strip() for c in prop.value.split(",") if c.strip())
        has_user_data = any(p.user_configurable and p.plain_key == "user-data" for p in descriptor.properties)
        if has_user_data or "guestinfo.userdata" in descriptor.extra_config:
            found.add(CLOUD_INIT)
    return sorted(found)


def _os_info(descriptor: Descriptor) -> OSInfo | None:
    version = descriptor.os_version or (descriptor.product.version if descriptor.product else None)
    info = OSInfo(
        id=descriptor.guest_id,
        type=os_family(descriptor.guest_id) if descriptor.guest_id else None,
        version=version,
    )
    return info if info.wire() else None


def _product_info(descriptor: Descriptor) -> ProductInfo | None:
    if descriptor.product is None:
        return None
    p = descriptor.product
    info = ProductInfo(product=p.product, vendor=p.vendor, version=p.version, full_version=p.full_version)
    return info if info.wire() else None


def _disks(descriptor: Descriptor) -> list[Disk]:
    return [
        Disk(
            capacity=binary_quantity(d.capacity_bytes) if d.capacity_bytes is not None else None,
            size=binary_quantity(d.populated_bytes) if d.populated_bytes is not None else None,
        )
        for d in descriptor.disks
    ]


def _or_none(items: list) -> list | None:
    return items or None


def image_status(
    descriptor: Descriptor | None,
    *,
    name: str,
    now: datetime,
    capabilities: Iterable[str] = (),
    item_id: str | None = None,
    content_version: str | None = None,
) -> ImageStatus:
    """The status of an image whose metadata was read: OVF with its descriptor, ISO without one."""
    status = ImageStatus(
        name=name,
        type="ISO" if descriptor is None else "OVF",
        capabilities=_or_none(image_capabilities(descriptor, capabilities)),
        provider_item_id=item_id,
        provider_content_version=content_version,
        conditions=[ready_condition(now)],
    )
    if descriptor is None:  # ISO items carry no OVF metadata
        return status
    return status.model_copy(update=_descriptor_fields(descriptor))


def _descriptor_fields(descriptor: Descriptor) -> dict:
    return {
        "firmware": "EFI" if (descriptor.firmware or "").strip().lower() == "efi" else "BIOS",
        "hardware_version": max(descriptor.hardware_versions) if descriptor.hardware_versions else None,
        "os_info": _os_info(descriptor),
        "product_info": _product_info(descriptor),
        "disks": _or_none(_disks(descriptor)),
        "ovf_properties": _or_none(
            [
                OVFProperty(key=p.key, type=p.type, default=p.value or None)
                for p in descriptor.properties
                if p.user_configurable
            ]
        ),
        "vmware_system_properties": _or_none(
            [
                KeyValue(key=p.key, value=p.value or None)
                for p in descriptor.properties
                if p.plain_key.startswith(SYSTEM_PROPERTY_PREFIX)
            ]
        ),
    }


def item_status(
    descriptor: bytes | None,
    descriptor_source: str,
    *,
    iso: bool,
    name: str,
    now: datetime,
    capabilities: Iterable[str] = (),
    item_id: str | None = None,
    content_version: str | None = None,
) -> ImageStatus:
    """The status of a library item from its descriptor as vCenter holds it.

    An OVF item whose descriptor is missing or unreadable still gets a status: Ready False,
    VirtualMachineImageNotSynced, with the reason as message.
    """
    common = dict(name=name, now=now, capabilities=capabilities, item_id=item_id, content_version=content_version)
    if iso:
        return image_status(None, **common)
    try:
        if descriptor is None:
            raise ImageError(descriptor_source, "the item has no .ovf descriptor")
        return image_status(parse_descriptor(descriptor, descriptor_source), **common)
    except ImageError as error:
        status = image_status(None, **common)
        return status.model_copy(
            update={"type": "OVF", "conditions": [not_ready_condition(REASON_NOT_SYNCED, str(error), now)]}
        )
