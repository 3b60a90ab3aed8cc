"""Assembling whole VirtualMachineImage / ClusterVirtualMachineImage objects."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from vmimage.ids import library_item_name, vmi_id
from vmimage.labels import image_labels
from vmimage.models import (
    CLUSTER_KIND,
    IMAGE_REGISTRY_API_VERSION,
    NAMESPACED_KIND,
    Image,
    ImageSpec,
    ImageStatus,
    ObjectMeta,
    ProviderRef,
)
from vmimage.source import ImageFile
from vmimage.status import image_status

# Which declaration last published an object. Several can publish the same object (a replace
# creates the new declaration before it deletes the old one; a renamed synced item moves to a
# new resource), and only the one named here may delete it.
OWNER_ANNOTATION = "vmimage.io/owner"


def image_object(
    status: ImageStatus,
    *,
    cluster: bool = False,
    namespace: str | None = None,
    extra_labels: dict[str, str] | None = None,
    owner: str | None = None,
) -> Image:
    """The object for ``status``: named by VMI ID when the item is known, labelled from the status."""
    item_id = status.provider_item_id
    provider_ref = None
    if item_id is not None:
        provider_ref = ProviderRef(
            api_version=IMAGE_REGISTRY_API_VERSION,
            kind="ClusterContentLibraryItem" if cluster else "ContentLibraryItem",
            name=library_item_name(item_id),
        )
    labels = {**(extra_labels or {}), **image_labels(status)}
    return Image(
        kind=CLUSTER_KIND if cluster else NAMESPACED_KIND,
        metadata=ObjectMeta(
            name=vmi_id(item_id) if item_id is not None else None,
            namespace=None if cluster else namespace,
            labels=labels or None,
            annotations={OWNER_ANNOTATION: owner} if owner else None,
        ),
        spec=ImageSpec(provider_ref=provider_ref),
        status=status,
    )


def object_owner(obj: dict | None) -> str | None:
    """The owner annotation of a live object (None when it has none)."""
    return (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(OWNER_ANNOTATION)


def file_status(
    image_file: ImageFile,
    *,
    name: str,
    capabilities: Iterable[str] = (),
    item_id: str | None = None,
    content_version: str | None = None,
    now: datetime | None = None,
) -> ImageStatus:
    """The status of a local image file, as it would be once uploaded as that item."""
    return image_status(
        image_file.descriptor,
        name=name,
        now=now or datetime.now(UTC).replace(microsecond=0),
        capabilities=capabilities,
        item_id=item_id,
        content_version=content_version,
    )
