"""Planning a catalog: which image objects the stack config asks for, and whether they clash.

Pure: the listing of synced libraries comes in as data, so the plan can be checked at
preview time and in tests without vCenter or Pulumi.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vmimage.config import NAMESPACE, CatalogConfig, scopes
from vmimage.contract.models import CLUSTER_KIND, NAMESPACED_KIND
from vmimage.review.governance import duplicate_display_names


@dataclass(frozen=True)
class SyncedItem:
    """An item found in a synced library."""

    id: str
    name: str
    content_version: str | None


@dataclass(frozen=True)
class PlannedImage:
    display_name: str
    namespace: str | None  # None: a ClusterVirtualMachineImage
    origin: str  # the config entry that asks for it, for messages
    capabilities: tuple[str, ...]
    image_index: int | None = None  # vmimage:images[i] (an item this stack publishes)
    synced: SyncedItem | None = None  # or an item found in a synced library
    renamed_from: tuple[str, ...] = ()  # the display names it had before (renamedFrom)

    @property
    def kind(self) -> str:
        return CLUSTER_KIND if self.namespace is None else NAMESPACED_KIND

    @property
    def scope(self) -> str:
        return "cluster scope" if self.namespace is None else f"namespace {self.namespace}"


def named_with_aliases(*parts: Sequence[str]) -> tuple[str, list[str]]:
    """The resource name of each part's current value (its first), and the names of every other
    combination of current and former values: the aliases that keep a renamed resource itself."""
    names = [resource_name(*combination) for combination in itertools.product(*parts)]
    return names[0], [name for name in dict.fromkeys(names[1:]) if name != names[0]]


def resource_name(*parts: str) -> str:
    """A stable Pulumi name from free text: a readable slug plus a short hash of the exact text."""
    text = "/".join(parts)
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]
    return f"{slug}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def plan(config: CatalogConfig, synced: dict[int, list[SyncedItem]]) -> list[PlannedImage]:
    """Every image object to declare: per image entry and scope, per synced item and scope."""
    planned = [
        PlannedImage(
            image.display_name,
            namespace,
            f"{NAMESPACE}:images[{index}]",
            tuple(image.capabilities),
            image_index=index,
            renamed_from=tuple(image.renamed_from),
        )
        for index, image in enumerate(config.images)
        for namespace in scopes(image.scope)
    ]
    for index, sync in enumerate(config.sync):
        for item in synced.get(index, []):
            origin = f"{NAMESPACE}:sync[{index}] (item {item.name!r} of library {sync.library!r})"
            planned.extend(
                PlannedImage(item.name, namespace, origin, tuple(sync.capabilities), synced=item)
                for namespace in scopes(sync.scope)
            )
    return planned


def supervisor_associations(config: CatalogConfig) -> dict[str, list[str]]:
    """Supervisor mode: namespace → the libraries (by name) whose images are scoped to it, from
    the images' and the synced libraries' scopes. Cluster scope associates nothing here."""
    wanted: dict[str, list[str]] = {}
    entries = [(image.library, image.scope) for image in config.images] + [(s.library, s.scope) for s in config.sync]
    for library, scope in entries:
        for namespace in scopes(scope):
            if namespace is not None and library not in wanted.setdefault(namespace, []):
                wanted[namespace].append(library)
    return dict(sorted(wanted.items()))


def display_name_conflicts(planned: list[PlannedImage]) -> list[str]:
    """The same display name twice in one scope makes resolution ambiguous: name both entries."""
    return duplicate_display_names((image.namespace, image.display_name, image.origin) for image in planned)
