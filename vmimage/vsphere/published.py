"""What a stack's libraries would publish, read from vCenter: `vmimage get --from-vcenter`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vmimage.catalog import SyncedItem, plan
from vmimage.config import CatalogConfig
from vmimage.errors import ImageError
from vmimage.image import image_object
from vmimage.status import item_status
from vmimage.vsphere.descriptors import DescriptorCache
from vmimage.vsphere.listing import VCenterListing


def published_images(config: CatalogConfig, listing: VCenterListing, cache: DescriptorCache) -> list[dict[str, Any]]:
    """The image objects for the items the catalog's libraries hold now, in the catalog's scopes."""
    client = listing.client
    library_items: dict[str, list[SyncedItem]] = {}

    def items_of(library: str) -> list[SyncedItem]:
        if library not in library_items:
            try:
                library_id = listing.library_id(library)
            except ImageError:
                library_items[library] = []  # not created yet: it publishes nothing
            else:
                library_items[library] = [
                    SyncedItem(i.id, i.name, i.content_version) for i in listing.items(library_id)
                ]
        return library_items[library]

    synced = {index: items_of(sync.library) for index, sync in enumerate(config.sync)}
    objects = []
    now = datetime.now(UTC).replace(microsecond=0)
    for planned in plan(config, synced):
        if planned.synced is not None:
            item = planned.synced
        else:
            image = config.images[planned.image_index or 0]
            item = next((i for i in items_of(image.library) if i.name == image.display_name), None)
            if item is None:
                continue  # declared but not uploaded yet
        info = client.get_item(item.id)
        descriptor = cache.fetch(client, info, item.content_version)
        image = item_status(
            descriptor.data if descriptor else None,
            f"item {item.id}:{descriptor.name if descriptor else '(no descriptor)'}",
            iso=info.type.lower() == "iso",
            name=planned.display_name,
            now=now,
            capabilities=planned.capabilities,
            item_id=item.id,
            content_version=item.content_version,
        )
        obj = image_object(
            image.status,
            cluster=planned.namespace is None,
            namespace=planned.namespace,
            labels=image.labels,
            library_id=info.library_id or None,
        )
        objects.append(obj.wire())
    return objects
