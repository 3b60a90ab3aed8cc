"""What a library holds, read at program time: the catalog's discovery of synced libraries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from vmimage.errors import ImageError
from vmimage.vsphere.content_library import ContentLibraryClient
from vmimage.vsphere.descriptors import content_version
from vmimage.vsphere.namespaces import NamespacesClient
from vmimage.vsphere.rest import VapiSession
from vmimage.vsphere.settings import ConnectionSettings


@dataclass(frozen=True)
class ListedItem:
    id: str
    name: str
    type: str
    content_version: str | None


class LibraryListing(Protocol):
    def library_id(self, name: str) -> str: ...

    def items(self, library_id: str) -> list[ListedItem]: ...

    def namespace_exists(self, name: str) -> bool: ...


class VCenterListing:
    """Lists libraries and items over the REST API: one request per item, a few at a time."""

    def __init__(self, settings: ConnectionSettings, concurrency: int = 8) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.session = VapiSession(settings)
        self.client = ContentLibraryClient(self.session)

    def close(self) -> None:
        self.session.close()

    def namespace_exists(self, name: str) -> bool:
        """Whether vCenter has this Supervisor namespace (supervisor mode checks at preview)."""
        return NamespacesClient(self.session).get(name) is not None

    def find_library(self, name: str) -> str | None:
        """The library's ID; None only when vCenter answers that it has no library of this name
        (a refused login, a failed connection or a server error raise: they are no answer)."""
        found = self.client.find_libraries(name)
        if len(found) > 1:
            raise ImageError(f"library {name!r}", f"vCenter has {len(found)} libraries with this name: {found}")
        return found[0] if found else None

    def library_id(self, name: str) -> str:
        library_id = self.find_library(name)
        if library_id is None:
            raise ImageError(
                f"library {name!r}", f"vCenter {self.settings.server} has no content library with this name"
            )
        return library_id

    def items(self, library_id: str) -> list[ListedItem]:
        item_ids = self.client.list_items(library_id)

        def describe(item_id: str) -> ListedItem:
            item = self.client.get_item(item_id)
            return ListedItem(item.id, item.name, item.type, content_version(self.client, item))

        if not item_ids:
            return []
        self.session.session_headers()  # log in once before the threads share the session
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="vmimage-list") as pool:
            listed = list(pool.map(describe, item_ids))
        return sorted(listed, key=lambda item: item.name)
