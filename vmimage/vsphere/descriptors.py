"""An item's OVF descriptor, downloaded once per content version and kept on disk.

Content versions only move forward, so a descriptor cached under (item UUID, content
version) never goes stale: a second `pulumi up`, or a second image of the same item,
downloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from vmimage.descriptor.ovf import MAX_DESCRIPTOR_BYTES
from vmimage.descriptor.source import cache_root
from vmimage.vsphere.content_library import ContentLibraryClient, ItemFile, ItemInfo

_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def default_cache_dir() -> Path:
    return cache_root() / "descriptors"


def content_version(
    client: ContentLibraryClient,
    item: ItemInfo,
    known: str | None = None,
    uploaded: bool = False,
    files: list[ItemFile] | None = None,
) -> str | None:
    """The item's content version: vCenter's when it reports one.

    A server that does not (older vCenters, the simulator, whose files all stay at "1")
    gets one counted by whoever changes the content: ``known`` is the version recorded so
    far, ``uploaded`` says this call changed the content; else the files' version.
    """
    if item.content_version:
        return item.content_version
    if known is not None and known.isascii() and known.isdigit():  # vCenter's, yet "²".isdigit() too
        return str(int(known) + 1) if uploaded else known
    versions = [f.version for f in (files if files is not None else client.item_files(item.id)) if f.version]
    return max(versions, key=lambda v: (len(v), v)) if versions else None


@dataclass(frozen=True)
class Descriptor:
    name: str
    data: bytes


class DescriptorCache:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_cache_dir()
        self.downloads = 0  # what this process fetched from vCenter, for tests and benchmarks

    def _path(self, item_id: str, version: str) -> Path | None:
        if not (_SAFE.match(item_id) and _SAFE.match(version)):
            return None  # never build a path from something that is not a plain token
        return self.directory / item_id / f"{version}.ovf"

    def fetch(
        self, client: ContentLibraryClient, item: ItemInfo, version: str | None, content_key: str | None = None
    ) -> Descriptor | None:
        """The item's descriptor (None for an ISO item or an item without one).

        Cached per content version; ``content_key`` (what the item was published from) joins the
        key where it is known, for servers that keep the version when the content changes."""
        if item.type.lower() == "iso":
            return None
        if version and content_key:
            version = f"{version}-{hashlib.sha256(content_key.encode()).hexdigest()[:16]}"
        path = self._path(item.id, version) if version else None
        if path is not None and path.is_file():
            name_file = path.with_suffix(".name")
            return Descriptor(name_file.read_text() if name_file.is_file() else path.name, path.read_bytes())
        names = [f.name for f in client.item_files(item.id) if f.name.lower().endswith(".ovf")]
        if not names:
            return None
        data = client.download(item.id, names[0], MAX_DESCRIPTOR_BYTES)
        self.downloads += 1
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer
                temporary.write_bytes(data)
                temporary.replace(path)
                path.with_suffix(".name").write_text(names[0])
            except OSError:
                pass  # a cache that cannot be written only costs a download next time
        return Descriptor(names[0], data)
