"""Reading OVF descriptors into the facts an image's status is made of.

The reader is namespace-agnostic on purpose: real descriptors use OVF 0.9, 1.x, 2.0 or
unknown envelope namespaces, and qualify attributes (``ovf:key``) or not (``key``).
Elements are matched by local name; OVF 0.9's ``<Section xsi:type="ovf:X_Type">`` is
read as ``<X>``. Missing data leaves a fact out; it never raises. Only input that is
not a safe, well-formed XML envelope raises, as an ImageError.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from vmimage.configspec import ConfigSpec, ConfigSpecError, config_spec
from vmimage.envelope import EnvelopeError, read_envelope
from vmimage.errors import ImageError

# A descriptor is metadata: the largest real one we know is under 0.5 MB.
# Bounds on what parsing a descriptor may cost: the largest real ones seen (VMware appliances)
# are ~0.5 MB with ~2,100 elements; parse time and memory grow with both.
MAX_DESCRIPTOR_BYTES = 4 * 2**20
MAX_DESCRIPTOR_ELEMENTS = 50_000


@dataclass(frozen=True)
class Property:
    """A ProductSection property, with ``key`` qualified as vSphere shows it."""

    key: str
    plain_key: str
    type: str
    value: str
    user_configurable: bool


@dataclass(frozen=True)
class DescriptorDisk:
    capacity_bytes: int | None
    populated_bytes: int | None


@dataclass(frozen=True)
class FileReference:
    """A file the package carries beside its descriptor (References/File)."""

    href: str
    size: int | None


@dataclass(frozen=True)
class Product:
    product: str | None = None
    vendor: str | None = None
    version: str | None = None
    full_version: str | None = None


@dataclass(frozen=True)
class Descriptor:
    """What an OVF descriptor says about the image (first VirtualSystem only)."""

    guest_id: str | None = None
    os_version: str | None = None
    product: Product | None = None
    hardware_versions: tuple[int, ...] = ()
    firmware: str | None = None
    properties: tuple[Property, ...] = ()
    extra_config: dict[str, str] = field(default_factory=dict)
    disks: tuple[DescriptorDisk, ...] = ()
    files: tuple[FileReference, ...] = ()
    # What VM Operator makes of it (vmimage.configspec), or why it refuses it, in govmomi's words.
    config: ConfigSpec | None = None
    config_error: str | None = None


def parse_descriptor(data: bytes, source: str) -> Descriptor:
    """Parse descriptor bytes; ``source`` names the file in any error."""
    root = _parse_xml(data, source)
    if _kind(root) != "Envelope":
        raise ImageError(source, f"not an OVF descriptor: the root element is <{_local(root.tag)}>, not <Envelope>")
    system = next(_descendants(root, "VirtualSystem"), None)
    products = list(_children(system, "ProductSection")) if system is not None else []
    properties = tuple(p for section in products for p in _properties(section))
    hardware = list(_children(system, "VirtualHardwareSection")) if system is not None else []
    os_section = next(_children(system, "OperatingSystemSection"), None) if system is not None else None
    try:
        config, config_error = config_spec(read_envelope(root)), None
    except (EnvelopeError, ConfigSpecError) as error:
        config, config_error = None, str(error)
    return Descriptor(
        guest_id=_attr(os_section, "osType") if os_section is not None else None,
        os_version=_attr(os_section, "version") if os_section is not None else None,
        product=_product(products[0]) if products else None,
        hardware_versions=tuple(sorted({v for section in hardware for v in _hardware_versions(section)})),
        firmware=_config_value(hardware, "Config", "firmware"),
        properties=properties,
        extra_config=_extra_config(hardware),
        disks=tuple(_disks(root, properties)),
        files=tuple(_files(root)),
        config=config,
        config_error=config_error,
    )


def _parse_xml(data: bytes, source: str) -> Element:
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise ImageError(source, f"descriptor is {len(data)} bytes, over the {MAX_DESCRIPTOR_BYTES} byte limit")
    try:
        events = SafeET.iterparse(
            io.BytesIO(data), events=("start",), forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
        root: Element | None = None
        for count, (_, element) in enumerate(events, start=1):
            if count > MAX_DESCRIPTOR_ELEMENTS:
                raise ImageError(
                    source, f"descriptor has over {MAX_DESCRIPTOR_ELEMENTS} XML elements; real ones have a few thousand"
                )
            if root is None:
                root = element
        if root is None:
            raise ImageError(source, "not well-formed XML (no root element)")
        return root
    except defusedxml.DTDForbidden:
        raise ImageError(source, "descriptor has a DTD (<!DOCTYPE>), which is refused for safety") from None
    except defusedxml.EntitiesForbidden:
        raise ImageError(source, "descriptor declares XML entities, which are refused for safety") from None
    except defusedxml.DefusedXmlException as exc:
        raise ImageError(source, f"descriptor refused for safety: {exc}") from None
    except ParseError as exc:
        raise ImageError(source, f"not well-formed XML ({exc})") from None
    except (UnicodeError, ValueError, LookupError) as exc:
        raise ImageError(source, f"not readable as XML text ({exc})") from None


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1] if isinstance(name, str) else ""


def _kind(element: Element) -> str:
    """The element's local name; for OVF 0.9's generic Section/Content, its xsi:type."""
    name = _local(element.tag)
    if name in ("Section", "Content"):
        declared = _attr(element, "type")
        if declared:
            name = declared.rsplit(":", 1)[-1].removesuffix("_Type")
    return name


def _attr(element: Element, name: str) -> str | None:
    """An attribute by local name, qualified or not (``ovf:key`` or ``key``)."""
    if name in element.attrib:
        return element.attrib[name]
    for qualified, value in element.attrib.items():
        if _local(qualified) == name:
            return value
    return None


def _children(element: Element, kind: str) -> Iterator[Element]:
    return (child for child in element if _kind(child) == kind)


def _descendants(element: Element, kind: str) -> Iterator[Element]:
    return (child for child in element.iter() if _kind(child) == kind)


def _text(element: Element, kind: str) -> str | None:
    child = next(_children(element, kind), None)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _product(section: Element) -> Product:
    return Product(
        product=_text(section, "Product"),
        vendor=_text(section, "Vendor"),
        version=_text(section, "Version"),
        full_version=_text(section, "FullVersion"),
    )


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1")


def _properties(section: Element) -> Iterator[Property]:
    prefix = _attr(section, "class")
    suffix = _attr(section, "instance")
    for element in _children(section, "Property"):
        plain_key = _attr(element, "key")
        if not plain_key:
            continue
        key = ".".join(part for part in (prefix, plain_key, suffix) if part)
        yield Property(
            key=key,
            plain_key=plain_key,
            type=_attr(element, "type") or "string",
            value=_attr(element, "value") or "",
            user_configurable=_is_true(_attr(element, "userConfigurable")),
        )


_VMX = re.compile(r"^vmx-(\d{1,4})$")  # vmx-4 … vmx-22 today: four digits is room enough


def _hardware_versions(section: Element) -> Iterator[int]:
    for system in _children(section, "System"):
        for element in system:
            if _local(element.tag) == "VirtualSystemType" and element.text:
                for token in re.split(r"[\s,]+", element.text.strip()):
                    match = _VMX.match(token)
                    if match:
                        yield int(match.group(1))


def _config_value(sections: list[Element], kind: str, key: str) -> str | None:
    for section in sections:
        for element in _children(section, kind):
            if _attr(element, "key") == key:
                return _attr(element, "value")
    return None


def _extra_config(sections: list[Element]) -> dict[str, str]:
    entries: dict[str, str] = {}
    for section in sections:
        for element in _children(section, "ExtraConfig"):
            key = _attr(element, "key")
            if key:
                entries.setdefault(key, _attr(element, "value") or "")
    return entries


_UNITS = re.compile(r"^byte(?:\s*\*\s*(\d+)(?:\s*\^\s*(\d+))?)?$")
_REFERENCE = re.compile(r"^\$\{([^}]+)\}$")


# Every number a descriptor gives is bounded before Python's arbitrary-precision integers see it:
# a disk's capacity of more than 2^70 bytes (a zebibyte) is not a disk, it is an attack.
_MAX_DIGITS = 30
_MAX_BYTES = 2**70


def _small_int(text: str | None) -> int | None:
    """A non-negative decimal of at most _MAX_DIGITS digits; None for anything else."""
    if text is None or not text.isdigit() or len(text) > _MAX_DIGITS:
        return None
    return int(text)


def _unit_factor(units: str | None) -> int | None:
    """Bytes per unit for ``byte``, ``byte * 2^30``, ``byte * 1024``; None if unknown or absurd."""
    if not units:
        return 1
    match = _UNITS.match(units.strip())
    if not match:
        return None
    base, exponent = _small_int(match.group(1)), _small_int(match.group(2))
    if match.group(1) is None:
        return 1
    if base is None or (match.group(2) is not None and (exponent is None or exponent > 70)):
        return None
    factor = base**exponent if exponent is not None else base
    return factor if factor <= _MAX_BYTES else None


def _byte_count(value: str | None, factor: int | None = 1) -> int | None:
    if value is None or factor is None:
        return None
    count = _small_int(value.strip())
    if count is None or count * factor > _MAX_BYTES:
        return None
    return count * factor


def _disks(root: Element, properties: tuple[Property, ...]) -> Iterator[DescriptorDisk]:
    defaults = {p.plain_key: p.value for p in properties}
    for section in _children(root, "DiskSection"):
        for disk in _children(section, "Disk"):
            capacity = _attr(disk, "capacity")
            reference = _REFERENCE.match(capacity.strip()) if capacity else None
            if reference:
                capacity = defaults.get(reference.group(1)) or None
            yield DescriptorDisk(
                capacity_bytes=_byte_count(capacity, _unit_factor(_attr(disk, "capacityAllocationUnits"))),
                populated_bytes=_byte_count(_attr(disk, "populatedSize")),
            )


def _files(root: Element) -> Iterator[FileReference]:
    for references in _children(root, "References"):
        for element in _children(references, "File"):
            href = _attr(element, "href")
            if href:
                yield FileReference(href=href, size=_byte_count(_attr(element, "size")))
