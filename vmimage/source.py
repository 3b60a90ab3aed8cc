"""Local image files (.ova, .ovf, .iso): what kind they are and what their descriptor says."""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vmimage.errors import ImageError
from vmimage.manifest import MAX_MANIFEST_BYTES, parse_manifest, verify_digest
from vmimage.ova import iter_members, read_member, read_ova_descriptor, tar_errors
from vmimage.ovf import MAX_DESCRIPTOR_BYTES, Descriptor, parse_descriptor

ContentType = Literal["OVF", "ISO"]
EXTENSIONS: dict[str, ContentType] = {".ova": "OVF", ".ovf": "OVF", ".iso": "ISO"}

# ISO 9660 / UDF volume descriptors start at sector 16; bytes 1-5 name the standard.
_ISO_DESCRIPTOR_OFFSET = 16 * 2048 + 1
_ISO_IDENTIFIERS = {b"CD001", b"BEA01", b"NSR02", b"NSR03", b"TEA01"}


@dataclass(frozen=True)
class ImageFile:
    path: str
    type: ContentType
    descriptor: Descriptor | None  # None for an ISO


def content_type(path: str) -> ContentType:
    """OVF or ISO, from the file's extension; anything else is an error."""
    extension = os.path.splitext(path)[1].lower()
    try:
        return EXTENSIONS[extension]
    except KeyError:
        found = extension or "(no extension)"
        raise ImageError(path, f"unknown image type {found!r}; expected .ova, .ovf or .iso") from None


def default_display_name(path: str) -> str:
    """The file name without its extension, the display name when the user gives none."""
    return Path(path).stem


def read_image_file(path: str, manifest_path: str | None = None) -> ImageFile:
    """Read what `inspect` needs: the descriptor of an OVA/OVF (checked against its
    manifest when there is one), or a check that an ISO is one."""
    kind = content_type(path)
    try:
        if kind == "ISO":
            _check_iso(path)
            return ImageFile(path, kind, None)
        if path.lower().endswith(".ova"):
            with open(path, "rb") as stream:
                ova = read_ova_descriptor(stream, path)
            data, name = ova.data, ova.name
            source = f"{path}:{ova.name}"
        else:
            data, name, source = read_descriptor_file(path), os.path.basename(path), path
            if manifest_path is None:
                manifest_path = manifest_beside(path)
        if manifest_path is not None:
            with open(manifest_path, "rb") as stream:
                manifest = parse_manifest(stream.read(), manifest_path)
            verify_digest(manifest, os.path.basename(name), data, manifest_path)
        return ImageFile(path, kind, parse_descriptor(data, source))
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None


@dataclass(frozen=True)
class PackageContents:
    """The files an OVF package puts in a library item, by the names an upload gives them."""

    sizes: dict[str, int]
    descriptor: bytes
    descriptor_name: str
    manifest: bytes | None
    manifest_name: str | None


def package_contents(path: str) -> PackageContents:
    """What a local .ova or .ovf package holds, without reading its disks: an OVA's member
    headers (its data seeked over), or the descriptor's references beside an .ovf."""
    sizes: dict[str, int] = {}
    descriptor = manifest = None
    descriptor_name = manifest_name = None
    try:
        if path.lower().endswith(".ova"):
            with open(path, "rb") as stream, tar_errors(path):
                for info, reader in iter_members(stream, path, seek_past_data=True):
                    name = posixpath.basename(info.name)
                    if name in sizes:
                        raise ImageError(path, f"the package holds {name!r} twice")
                    sizes[name] = info.size
                    lowered = name.lower()
                    if lowered.endswith(".ovf") and descriptor is None:
                        descriptor_name = name
                        descriptor = read_member(reader, info, MAX_DESCRIPTOR_BYTES, "descriptor", path)
                    elif lowered.endswith(".mf") and manifest is None:
                        manifest_name = name
                        manifest = read_member(reader, info, MAX_MANIFEST_BYTES, "manifest", path)
        else:
            descriptor, descriptor_name = read_descriptor_file(path), os.path.basename(path)
            sizes[descriptor_name] = len(descriptor)
            beside = read_manifest_beside(path)
            if beside is not None:
                manifest_name, manifest = beside
                sizes[manifest_name] = len(manifest)
            for reference in parse_descriptor(descriptor, path).files:
                sizes[reference.href] = os.path.getsize(referenced_file(path, reference.href))
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    if descriptor is None or descriptor_name is None:
        raise ImageError(path, "the package has no .ovf descriptor")
    return PackageContents(sizes, descriptor, descriptor_name, manifest, manifest_name)


def manifest_beside(path: str) -> str | None:
    """The .mf that goes with a bare .ovf, when there is one."""
    beside = os.path.splitext(path)[0] + ".mf"
    return beside if os.path.exists(beside) else None


def read_manifest_beside(path: str) -> tuple[str, bytes] | None:
    """That manifest's file name and bytes, read to one byte past the limit that
    `parse_manifest` enforces, so an oversized one is refused without reading it all."""
    beside = manifest_beside(path)
    if beside is None:
        return None
    with open(beside, "rb") as stream:
        return os.path.basename(beside), stream.read(MAX_MANIFEST_BYTES + 1)


def file_sha256(path: str) -> str:
    """A local file's SHA-256, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb", buffering=0) as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    return digest.hexdigest()


def cache_root() -> Path:
    """Where vmimage keeps what it can compute again: $VMIMAGE_CACHE_DIR, else ~/.cache/vmimage."""
    base = os.environ.get("VMIMAGE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vmimage"
    )
    return Path(base)


def cached_file_sha256(path: str, cache_dir: Path | None = None) -> str:
    """file_sha256, remembered per (file, size, mtime, inode): a file is read again only when it
    may have changed, and a touched file (new mtime, same bytes) gives the same digest."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    key = f"{os.path.realpath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}\0{stat.st_dev}"
    entry = (cache_dir or cache_root() / "digests") / hashlib.sha256(key.encode()).hexdigest()
    try:
        cached = entry.read_text()
        if len(cached) == 64 and all(c in "0123456789abcdef" for c in cached):
            return cached
    except OSError:
        pass
    digest = file_sha256(path)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        temporary.write_text(digest)
        temporary.replace(entry)
    except OSError:
        pass  # a cache that cannot be written only costs a second read
    return digest


def source_digest(path: str, cache_dir: Path | None = None) -> str:
    """What identifies a local source's content: the SHA-256 of an .ova or .iso file; for a bare
    .ovf, of the package (the descriptor, its manifest and every file it references, by name)."""
    if not path.lower().endswith(".ovf"):
        return cached_file_sha256(path, cache_dir)
    files = [path]
    beside = manifest_beside(path)
    if beside is not None:
        files.append(beside)
    descriptor = parse_descriptor(read_descriptor_file(path), path)
    files.extend(referenced_file(path, reference.href) for reference in descriptor.files)
    lines = "".join(f"{os.path.basename(f)} {cached_file_sha256(f, cache_dir)}\n" for f in sorted(set(files)))
    return hashlib.sha256(lines.encode()).hexdigest()


def referenced_file(path: str, href: str) -> str:
    """The file a descriptor's reference names, which must be a plain file beside it."""
    if "/" in href or "\\" in href or href.startswith(".."):
        raise ImageError(path, f"file reference {href!r} is not a plain file name beside the descriptor")
    file_path = os.path.join(os.path.dirname(path), href)
    if not os.path.isfile(file_path):
        raise ImageError(path, f"references {href!r}, which is not beside it ({file_path})")
    return file_path


def read_descriptor_file(path: str) -> bytes:
    """A bare .ovf, refused past MAX_DESCRIPTOR_BYTES without reading further."""
    with open(path, "rb") as stream:
        data = stream.read(MAX_DESCRIPTOR_BYTES + 1)
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise ImageError(path, f"descriptor is over the {MAX_DESCRIPTOR_BYTES} byte limit")
    return data


def _check_iso(path: str) -> None:
    with open(path, "rb") as stream:
        stream.seek(_ISO_DESCRIPTOR_OFFSET)
        identifier = stream.read(5)
    if identifier not in _ISO_IDENTIFIERS:
        raise ImageError(path, "not an ISO 9660 or UDF image (no volume descriptor at sector 16)")
