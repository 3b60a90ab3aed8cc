"""Assembling whole VirtualMachineImage / ClusterVirtualMachineImage objects, as VM Operator does."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime

from vmimage.contract.ids import content_library_name, library_item_name, vmi_id
from vmimage.contract.labels import image_labels
from vmimage.contract.models import (
    CLUSTER_KIND,
    GROUP,
    IMAGE_REGISTRY_API_VERSION,
    IMAGE_REGISTRY_GROUP,
    NAMESPACED_KIND,
    VERSION,
    Image,
    ImageSpec,
    ImageStatus,
    ObjectMeta,
    OwnerReference,
    ProviderRef,
)
from vmimage.contract.status import ItemImage, descriptor_labels, image_status, sync_error
from vmimage.descriptor.source import ImageFile

DISPLAY_NAME_ANNOTATION = "vmware.com/display-name"
CONTENT_LIBRARY_ANNOTATION = "vmoperator.vmware.com/conversion-content-lib-ref"


def item_kind(cluster: bool) -> str:
    """The image registry's kind for the library item behind an image of that scope."""
    return "ClusterContentLibraryItem" if cluster else "ContentLibraryItem"


def content_library_ref(library_id: str, cluster: bool) -> str:
    """The annotation VM Operator copies from the item's ``contentLibraryRef``, compact JSON."""
    ref = {
        "apiGroup": IMAGE_REGISTRY_GROUP,
        "kind": "ClusterContentLibrary" if cluster else "ContentLibrary",
        "name": content_library_name(library_id),
    }
    return json.dumps(ref, separators=(",", ":"))


def image_object(
    status: ImageStatus,
    *,
    cluster: bool = False,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    extra_labels: dict[str, str] | None = None,
    library_id: str | None = None,
    item_uid: str | None = None,
    version: str = VERSION,
) -> Image:
    """The object VM Operator publishes for ``status``: named by VMI ID, owned by and pointing at the
    image registry's item object, with the display-name and content-library annotations and the
    labels of its status (``labels``: the descriptor's; ``extra_labels``: the stack's own).

    ``item_uid`` is the uid of the item object in the cluster; without one (no image registry
    there) the object has no owner reference."""
    item_id = status.provider_item_id
    provider_ref = owners = None
    if item_id is not None:
        provider_ref = ProviderRef(
            api_version=IMAGE_REGISTRY_API_VERSION, kind=item_kind(cluster), name=library_item_name(item_id)
        )
        if item_uid:
            owners = [
                OwnerReference(
                    api_version=IMAGE_REGISTRY_API_VERSION,
                    kind=item_kind(cluster),
                    name=library_item_name(item_id),
                    uid=item_uid,
                    controller=True,
                    block_owner_deletion=True,
                )
            ]
    annotations = {DISPLAY_NAME_ANNOTATION: status.name} if status.name else {}
    if library_id:
        annotations[CONTENT_LIBRARY_ANNOTATION] = content_library_ref(library_id, cluster)
    return Image(
        api_version=f"{GROUP}/{version}",
        kind=CLUSTER_KIND if cluster else NAMESPACED_KIND,
        metadata=ObjectMeta(
            name=vmi_id(item_id) if item_id is not None else None,
            namespace=None if cluster else namespace,
            labels=image_labels(status, labels, extra_labels) or None,
            annotations=annotations or None,
            owner_references=owners,
        ),
        spec=ImageSpec(provider_ref=provider_ref),
        status=status,
    )


def file_image(
    image_file: ImageFile,
    *,
    name: str,
    capabilities: Iterable[str] = (),
    item_id: str | None = None,
    content_version: str | None = None,
    now: datetime | None = None,
) -> ItemImage:
    """The image of a local image file, as it would be once uploaded as that item."""
    status = image_status(
        image_file.descriptor,
        name=name,
        now=now or datetime.now(UTC).replace(microsecond=0),
        capabilities=capabilities,
        item_id=item_id,
        content_version=content_version,
    )
    return ItemImage(status, descriptor_labels(image_file.descriptor), sync_error(image_file.descriptor))
