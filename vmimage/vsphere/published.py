"""What a stack's libraries would publish, read from vCenter (`vmimage get --from-vcenter`,
`vmimage verify`), and what the stack declares that vCenter does not hold.

Only vCenter's answer "no library of this name" makes a library absent: any other failure of
the lookup (a refused connection or login, TLS, a server error) raises, so a check built on
this never reads an error as "nothing there"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vmimage.catalog import SyncedItem, plan
from vmimage.config import NAMESPACE, CatalogConfig, Scope, scopes
from vmimage.contract.image import image_object
from vmimage.contract.models import CLUSTER_KIND, NAMESPACED_KIND
from vmimage.contract.status import item_status, with_compliance
from vmimage.vsphere.descriptors import DescriptorCache
from vmimage.vsphere.listing import VCenterListing

NO_ITEM = "declared but vCenter has no item: not published yet, or deleted"


@dataclass(frozen=True)
class Absent:
    """Something the stack declares that vCenter does not hold: one line of a report."""

    subject: str  # what, and where the stack declares it
    reason: str
    namespaces: tuple[str | None, ...]  # where it would publish (None: cluster scope); () for nowhere

    def __str__(self) -> str:
        return f"{self.subject}: {self.reason}"

    def concerns(self, kinds: tuple[str, ...], namespace: str | None) -> bool:
        """Whether a listing of these kinds (in this namespace; None: every one) would show it."""
        if not self.namespaces:
            return True
        return any(
            CLUSTER_KIND in kinds if where is None else NAMESPACED_KIND in kinds and namespace in (None, where)
            for where in self.namespaces
        )


@dataclass(frozen=True)
class Published:
    objects: list[dict[str, Any]]  # the image objects the items vCenter holds now would become
    absent: list[Absent]
    # VMI ID → vCenter's certificate verification status, for an item it holds not security compliant
    not_compliant: dict[str, str] = field(default_factory=dict)


def _scope_text(scope: Scope) -> str:
    if scope == "cluster":
        return "cluster scope"
    return ("namespace " if len(scope) == 1 else "namespaces ") + ", ".join(scope)


def declared_but_absent(
    config: CatalogConfig, libraries: Mapping[str, list[SyncedItem] | None], server: str
) -> list[Absent]:
    """What the stack declares that vCenter does not hold, one entry each: a library vCenter has
    no library of that name for, an image with no item of its display name, a synced library
    with no item at all (nothing of it could be checked). ``libraries``: each declared library's
    items, None where vCenter answered that it has no library of that name."""
    uses: dict[str, list[str | None]] = {library.name: [] for library in config.libraries}
    for entry in [*config.images, *config.sync]:
        where = uses.setdefault(entry.library, [])
        where.extend(namespace for namespace in scopes(entry.scope) if namespace not in where)
    absent = [
        Absent(
            f"library {library.name!r} ({NAMESPACE}:libraries[{index}])",
            f"vCenter {server} has no content library of this name: "
            + (
                "it must exist before the stack uses it (existing: true)"
                if library.existing
                else "not created yet (run `pulumi up`), or deleted"
            ),
            tuple(uses[library.name]),
        )
        for index, library in enumerate(config.libraries)
        if libraries.get(library.name) is None
    ]
    for index, image in enumerate(config.images):
        items = libraries.get(image.library)
        if items is not None and any(item.name == image.display_name for item in items):
            continue
        absent.append(
            Absent(
                f"image {image.display_name!r} ({NAMESPACE}:images[{index}], library {image.library!r}, "
                f"{_scope_text(image.scope)})",
                NO_ITEM if items is not None else "declared but vCenter has no item: its library does not exist",
                tuple(scopes(image.scope)),
            )
        )
    for index, sync in enumerate(config.sync):
        if libraries.get(sync.library) == []:
            absent.append(
                Absent(
                    f"library {sync.library!r} ({NAMESPACE}:sync[{index}], {_scope_text(sync.scope)})",
                    "synced, but it holds no item: nothing of it to publish or verify "
                    "(a subscribed library that has not synced yet?)",
                    tuple(scopes(sync.scope)),
                )
            )
    return absent


def published_images(config: CatalogConfig, listing: VCenterListing, cache: DescriptorCache) -> Published:
    """The image objects for the items the catalog's libraries hold now, in the catalog's scopes,
    and what the stack declares that vCenter does not hold. vCenter's errors propagate."""
    client = listing.client
    used = {entry.library for entry in [*config.images, *config.sync]}
    libraries: dict[str, list[SyncedItem] | None] = {}
    for library in config.libraries:
        library_id = listing.find_library(library.name)
        if library_id is None or library.name not in used:  # an unused library: whether it exists is enough
            libraries[library.name] = None if library_id is None else []
        else:
            libraries[library.name] = [SyncedItem(i.id, i.name, i.content_version) for i in listing.items(library_id)]
    absent = declared_but_absent(config, libraries, listing.settings.server)
    synced = {index: libraries.get(sync.library) or [] for index, sync in enumerate(config.sync)}
    objects = []
    not_compliant: dict[str, str] = {}
    now = datetime.now(UTC).replace(microsecond=0)
    for planned in plan(config, synced):
        if planned.synced is not None:
            item = planned.synced
        else:
            image = config.images[planned.image_index or 0]
            items = libraries.get(image.library) or []
            item = next((i for i in items if i.name == image.display_name), None)
            if item is None:
                continue  # in `absent`
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
        library = config.images[planned.image_index or 0].library if planned.synced is None else None
        policy = library is not None and config.security_policy(library) is not None
        image = with_compliance(image, info.security_compliance, now, info.certificate_status, policy)
        obj = image_object(
            image.status,
            cluster=planned.namespace is None,
            namespace=planned.namespace,
            labels=image.labels,
            library_id=info.library_id or None,
        )
        objects.append(obj.wire())
        if image.not_compliant:
            not_compliant[obj.metadata.name or ""] = image.not_compliant
    return Published(objects, absent, not_compliant)
