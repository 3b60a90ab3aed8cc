"""Deterministic image names, as VM Operator computes them (pkg/util/hash.go upstream)."""

from __future__ import annotations

import hashlib
import re
import uuid

from vmimage.errors import ImageError

VMI_ID_PATTERN = re.compile(r"^vmi-[0-9a-f]{17}$")


def _hash17(item_uuid: str) -> str:
    try:
        canonical = uuid.UUID(item_uuid.strip()).hex  # lower-case, no hyphens
    except (ValueError, AttributeError, TypeError):
        raise ImageError(repr(item_uuid), "not a UUID (expected e.g. e1968c25-dd84-4506-8dc7-9beacb6b688e)") from None
    return hashlib.sha1(canonical.encode("ascii")).hexdigest()[:17]


def vmi_id(item_uuid: str) -> str:
    """The VMI ID of a content library item: ``vmi-`` + 17 hex of SHA-1 of the bare UUID."""
    return "vmi-" + _hash17(item_uuid)


def library_item_name(item_uuid: str) -> str:
    """The name of the image registry's ContentLibraryItem object for the same item.

    Upstream derives the VMI name from this one by swapping the ``clitem-`` prefix,
    so both share the hash.
    """
    return "clitem-" + _hash17(item_uuid)


def is_vmi_id(name: str) -> bool:
    """Whether ``name`` has the form of a VMI ID (and so is looked up by name, not display name)."""
    return bool(VMI_ID_PATTERN.match(name))


def content_library_name(library_id: str) -> str:
    """The name of the image registry's (Cluster)ContentLibrary object for a library: ``cl-`` and
    the same 17 hex, as its item objects are named."""
    return "cl-" + _hash17(library_id)
