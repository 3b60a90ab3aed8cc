"""Reading OVA archives as a stream: never extracted, never seeked.

An OVA is a plain tar whose first member is the OVF descriptor, optionally followed by
the manifest, then the disks. `read_ova_descriptor` stops right after the descriptor
(and the manifest when it comes next), so inspecting a 50 GB OVA reads a few KB.
`iter_members` walks every member for uploads.
"""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from vmimage.errors import ImageError
from vmimage.manifest import MAX_MANIFEST_BYTES, Digest, parse_manifest, verify_digest
from vmimage.ovf import MAX_DESCRIPTOR_BYTES


@dataclass(frozen=True)
class OvaDescriptor:
    name: str  # the descriptor's member name
    data: bytes
    manifest: dict[str, Digest] | None  # present when the manifest came right after the descriptor


def check_member(info: tarfile.TarInfo, source: str) -> None:
    """Refuse members that could escape a directory or are not plain files."""
    name = info.name
    if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        raise ImageError(source, f"member {name!r} has an absolute path; OVA members must be relative")
    if ".." in name.replace("\\", "/").split("/"):
        raise ImageError(source, f"member {name!r} contains '..'; OVA members must stay inside the package")
    if not info.isreg():
        what = "a link" if info.issym() or info.islnk() else "not a regular file"
        raise ImageError(source, f"member {name!r} is {what}; OVA members must be regular files")


@contextmanager
def tar_errors(source: str) -> Iterator[None]:
    """Tar's own errors, as an ImageError naming the archive."""
    try:
        yield
    except tarfile.TarError as exc:
        message = str(exc) or type(exc).__name__
        if "unexpected end" in message or "truncated" in message:
            raise ImageError(source, f"truncated OVA archive ({message})") from None
        raise ImageError(source, f"not a valid OVA (tar) archive: {message}") from None
    except EOFError:
        raise ImageError(source, "truncated OVA archive (unexpected end of data)") from None


def iter_members(stream: IO[bytes], source: str) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """Every member with a reader over its bytes, in archive order, checked for safety."""
    with tar_errors(source), tarfile.open(fileobj=stream, mode="r|") as archive:
        for info in archive:
            check_member(info, source)
            reader = archive.extractfile(info)
            assert reader is not None  # a regular file always has a reader
            yield info, reader


def _read_member(reader: IO[bytes], info: tarfile.TarInfo, limit: int, what: str, source: str) -> bytes:
    if info.size > limit:
        raise ImageError(source, f"{what} {info.name!r} is {info.size} bytes, over the {limit} byte limit")
    data = reader.read()
    if len(data) != info.size:
        raise ImageError(source, f"truncated OVA archive: {info.name!r} ends early")
    return data


def read_ova_descriptor(stream: IO[bytes], source: str) -> OvaDescriptor:
    """The descriptor (first member) and, when it follows at once, the checked manifest."""
    members = iter_members(stream, source)
    with tar_errors(source):
        first = next(members, None)
        if first is None:
            raise ImageError(source, "the OVA archive is empty; expected an .ovf descriptor first")
        info, reader = first
        if not info.name.lower().endswith(".ovf"):
            raise ImageError(
                source,
                f"the first member is {info.name!r}, not the .ovf descriptor; an OVA must start with it "
                "(repack with ovftool or tar, descriptor first)",
            )
        descriptor = _read_member(reader, info, MAX_DESCRIPTOR_BYTES, "descriptor", source)
        manifest = None
        following = next(members, None)
        if following is not None and following[0].name.lower().endswith(".mf"):
            manifest_info, manifest_reader = following
            data = _read_member(manifest_reader, manifest_info, MAX_MANIFEST_BYTES, "manifest", source)
            manifest = parse_manifest(data, f"{source}:{manifest_info.name}")
            listed = info.name if info.name in manifest else posixpath.basename(info.name)
            verify_digest(manifest, listed, descriptor, source)
        members.close()
    return OvaDescriptor(name=info.name, data=descriptor, manifest=manifest)
