"""From a library item to the status VM Operator publishes for it.

Field by field this follows what VM Operator's content-library controllers write (recorded in
tests/fixtures/vm-operator; docs/reference.md has the table): the guest id and its CIM number,
the firmware as written, the hardware version of a single ``vmx-N``, the first product, the vApp
properties, the disks of the selected configuration, and Ready or NotSynced. Capabilities are
vmimage's addition, as the CRD documents them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from vmimage.contract.labels import EXTRA_CONFIG_LABELS, extra_config_labels
from vmimage.contract.models import (
    READY,
    REASON_NOT_SYNCED,
    REASON_SECURITY_NOT_COMPLIANT,
    V1ALPHA1_COMPATIBLE,
    Condition,
    Disk,
    ImageStatus,
    KeyValue,
    OSInfo,
    OVFProperty,
    ProductInfo,
)
from vmimage.descriptor.configspec import ConfigSpec
from vmimage.descriptor.envelope import parse_integer
from vmimage.descriptor.guest_os import cim_os_type
from vmimage.descriptor.ovf import Descriptor, parse_descriptor
from vmimage.descriptor.quantity import disk_quantity
from vmimage.errors import ImageError

# The VM Operator whose objects vmimage reproduces (tests/fixtures/vm-operator). Resources keep it
# as an input: when it moves, the next `up` rewrites every image and item status in place.
CONTRACT = "vm-operator 506dc5dc"
CAPABILITIES_PROPERTY = "capabilities.image.vmoperator.vmware.com"
SYSTEM_PROPERTY_PREFIX = "vmware-system"
DEFER_CLOUD_INIT = "guestinfo.vmservice.defer-cloud-init"  # ExtraConfig: "ready" marks V1Alpha1 compatibility
NOT_SYNCED_MESSAGE = "Failed to sync to the latest content version from provider"
NOT_COMPLIANT_MESSAGE = "Provider item is not security compliant"

_VMX = re.compile(r"(?i)^vmx-([0-9]+)$|^([0-9]+)$")


def true_condition(kind: str, now: datetime) -> Condition:
    return Condition(type=kind, status="True", reason="True", message="", last_transition_time=now)


def not_ready_condition(reason: str, message: str, now: datetime) -> Condition:
    """Ready=False: ``reason`` is one of models' REASON_* (provider not ready, not synced, not compliant)."""
    return Condition(type=READY, status="False", reason=reason, message=message, last_transition_time=now)


def hardware_version(version: str) -> int | None:
    """N of ``vmx-N`` (or ``N``) up to 255, as govmomi parses it; None for a list or anything else."""
    match = _VMX.match(version)
    if not match:
        return None
    number = parse_integer(match.group(1) or match.group(2), 1, 255)
    return number


def image_capabilities(config: ConfigSpec | None, declared: Iterable[str] = ()) -> list[str]:
    """Sorted and unique: the stack's declared capabilities and those of the descriptor's
    ``capabilities.image.vmoperator.vmware.com`` property (comma-separated), nothing inferred."""
    found = {c.strip() for c in declared if c.strip()}
    for prop in config.properties if config else ():
        if prop.key == CAPABILITIES_PROPERTY:
            found.update(c.strip() for c in prop.default.split(",") if c.strip())
    return sorted(found)


def _disks(config: ConfigSpec) -> list[Disk] | None:
    """One per disk device; a repeated name gets VM Operator's ``_1`` suffix."""
    used: dict[str, int] = {}
    disks = []
    for disk in config.disks:
        name = disk.label
        suffix = 0
        if name in used:
            suffix = used[name] + 1
            name = f"{name}_{suffix}"
        used[name] = suffix
        quantity = disk_quantity(disk.capacity_bytes)
        disks.append(
            Disk(
                name=name,
                limit=quantity,
                requested=quantity,
                unit_number=disk.unit_number,
                controller_type=disk.controller_type,
                controller_bus_number=disk.controller_bus,
            )
        )
    return disks or None


def _config_fields(config: ConfigSpec) -> dict:
    products = config.products
    product = products[0] if products else None
    system = [p for p in config.properties if p.key.startswith(SYSTEM_PROPERTY_PREFIX)]
    user = [p for p in config.properties if not p.key.startswith(SYSTEM_PROPERTY_PREFIX) and p.user_configurable]
    return {
        "firmware": config.firmware or None,
        "hardware_version": hardware_version(config.version),
        "os_info": OSInfo(id=str(cim_os_type(config.guest_id)), type=config.guest_id or None),
        "product_info": ProductInfo(
            product=product.product or None,
            vendor=product.vendor or None,
            version=product.version or None,
            full_version=product.full_version or None,
        )
        if product
        else ProductInfo(),
        "disks": _disks(config),
        "ovf_properties": [OVFProperty(key=p.key, type=p.type, default=p.default or None) for p in user] or None,
        "vmware_system_properties": [KeyValue(key=p.key, value=p.default or None) for p in system] or None,
    }


def image_status(
    descriptor: Descriptor | None,
    *,
    name: str,
    now: datetime,
    capabilities: Iterable[str] = (),
    item_id: str | None = None,
    content_version: str | None = None,
) -> ImageStatus:
    """The status of an image whose metadata was read: OVF with its descriptor, ISO without one.

    An OVF descriptor VM Operator cannot turn into a VM configuration gives its NotSynced status
    (``descriptor.config_error`` says why)."""
    config = descriptor.config if descriptor is not None else None
    status = ImageStatus(
        name=name,
        type="ISO" if descriptor is None else "OVF",
        capabilities=image_capabilities(config, capabilities) or None,
        provider_item_id=item_id,
        provider_content_version=content_version,
        conditions=[true_condition(READY, now)],
    )
    if descriptor is None:  # ISO items carry no OVF metadata
        return status
    if config is None:
        return not_synced_status(status, now)
    if config.extra_config_value(DEFER_CLOUD_INIT) == "ready":
        status.conditions.append(true_condition(V1ALPHA1_COMPATIBLE, now))
    return status.model_copy(update=_config_fields(config))


def not_synced_status(status: ImageStatus, now: datetime) -> ImageStatus:
    """What VM Operator leaves when the sync fails: name, type, item id, empty OS and product."""
    return ImageStatus(
        name=status.name,
        type=status.type,
        capabilities=status.capabilities,
        provider_item_id=status.provider_item_id,
        conditions=[not_ready_condition(REASON_NOT_SYNCED, NOT_SYNCED_MESSAGE, now)],
    )


def not_compliant_status(status: ImageStatus, now: datetime) -> ImageStatus:
    """What VM Operator publishes for an item vCenter holds not security compliant (a library with
    an OVF security policy, a package not signed by a certificate vCenter trusts): it stops before
    the descriptor, so name, type, item id and empty OS and product only, and no content version
    (tests/fixtures/vm-operator/security-policy)."""
    return ImageStatus(
        name=status.name,
        type=status.type,
        capabilities=status.capabilities,
        provider_item_id=status.provider_item_id,
        conditions=[not_ready_condition(REASON_SECURITY_NOT_COMPLIANT, NOT_COMPLIANT_MESSAGE, now)],
    )


def with_compliance(
    image: ItemImage,
    compliant: bool | None,
    now: datetime,
    certificate_status: str | None = None,
    policy: bool = False,
) -> ItemImage:
    """The image of an item as vCenter's ``security_compliance`` leaves it: False (an item of a
    library with a security policy that vCenter did not verify) gives the NotReady status, with no
    labels and no sync error (VM Operator never reads the descriptor); True, and None outside a
    policy library, leave it as it is, as the Image Registry Operator reads an item without the
    field compliant. ``policy``: the library has a security policy, where an OVF item vCenter
    reports nothing of is not compliant (VM Operator reads a missing field as not compliant, and
    an unanswered check never passes). ``certificate_status``: vCenter's
    certificate_verification_info.status, kept as the why."""
    if compliant is True or (compliant is None and not (policy and image.status.type == "OVF")):
        return image
    return ItemImage(not_compliant_status(image.status, now), not_compliant=certificate_status or "not reported")


def sync_error(descriptor: Descriptor | None) -> str | None:
    """Why VM Operator would not sync this descriptor, in its own words (None when it would)."""
    if descriptor is None or descriptor.config_error is None:
        return None
    return f"failed to update vmi from ovf: failed to transform ovf to configSpec: {descriptor.config_error}"


def descriptor_labels(descriptor: Descriptor | None) -> dict[str, str]:
    """The labels a descriptor asks for in its ``vmservice.vmi.labels`` ExtraConfig (none unless synced)."""
    if descriptor is None or descriptor.config is None:
        return {}
    return extra_config_labels(descriptor.config.extra_config_value(EXTRA_CONFIG_LABELS))


class ItemImage(NamedTuple):
    """What a library item gives its image: the status, the descriptor's labels, why VM Operator
    would not sync it (None when it would), and why vCenter holds it not security compliant."""

    status: ImageStatus
    labels: dict[str, str] | None = None
    sync_error: str | None = None
    not_compliant: str | None = None  # vCenter's certificate verification status of a non-compliant item


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
) -> ItemImage:
    """The image of a library item from its descriptor as vCenter holds it. An OVF item whose
    descriptor is missing, unreadable or refused gets VM Operator's NotSynced status."""
    common = dict(name=name, now=now, capabilities=capabilities, item_id=item_id, content_version=content_version)
    if iso:
        return ItemImage(image_status(None, **common))
    try:
        if descriptor is None:
            raise ImageError(descriptor_source, "the item has no .ovf descriptor")
        parsed = parse_descriptor(descriptor, descriptor_source)
    except ImageError as error:
        status = image_status(None, **common).model_copy(update={"type": "OVF"})
        return ItemImage(not_synced_status(status, now), sync_error=str(error))
    return ItemImage(image_status(parsed, **common), descriptor_labels(parsed), sync_error(parsed))
