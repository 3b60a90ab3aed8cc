"""Reading OVF descriptors: safely, into what the package holds and what VM Operator makes of it.

Only input that is not a safe, well-formed XML envelope raises, as an ImageError. Everything
else is read the way VM Operator reads it (vmimage.descriptor.envelope, vmimage.descriptor.configspec): a descriptor
it would refuse still parses, with the reason in ``config_error``.
"""

from __future__ import annotations

import io
from typing import NamedTuple
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from vmimage.descriptor.configspec import ConfigSpec, ConfigSpecError, config_spec
from vmimage.descriptor.envelope import Envelope, EnvelopeError, attr, children, local, parse_integer, read_envelope
from vmimage.errors import ImageError

# Bounds on what parsing a descriptor may cost: the largest real ones seen (VMware appliances)
# are ~0.5 MB with ~2,100 elements; parse time and memory grow with both.
MAX_DESCRIPTOR_BYTES = 4 * 2**20
MAX_DESCRIPTOR_ELEMENTS = 50_000


class FileReference(NamedTuple):
    """A file the package carries beside its descriptor (References/File)."""

    href: str
    size: int | None


class Descriptor(NamedTuple):
    """A parsed descriptor: the files the package carries, the envelope as VM Operator decodes it
    (None where Go's decoder fails), the VM configuration it makes of it (None where govmomi
    refuses), and why not, in their words."""

    files: tuple[FileReference, ...] = ()
    envelope: Envelope | None = None
    config: ConfigSpec | None = None
    config_error: str | None = None


def parse_descriptor(data: bytes, source: str) -> Descriptor:
    """Parse descriptor bytes; ``source`` names the file in any error."""
    root = _parse_xml(data, source)
    if local(root.tag) != "Envelope":
        raise ImageError(source, f"not an OVF descriptor: the root element is <{local(root.tag)}>, not <Envelope>")
    envelope = config = error = None
    try:
        envelope = read_envelope(root)
        config = config_spec(envelope)
    except (EnvelopeError, ConfigSpecError) as refused:
        error = str(refused)
    return Descriptor(files=tuple(_files(root)), envelope=envelope, config=config, config_error=error)


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


def _files(root: Element):
    """The package's files, read leniently: a size that is not a number is no size."""
    for references in children(root, "References"):
        for element in children(references, "File"):
            href = attr(element, "href")
            if href:
                size = attr(element, "size")
                yield FileReference(href=href, size=parse_integer(size.strip(), 0, 2**70) if size else None)
