"""Local image files (.ova, .ovf, .iso): what kind they are and what their descriptor says."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from vmimage.descriptor.manifest import MAX_MANIFEST_BYTES, parse_manifest, verify_digest
from vmimage.descriptor.ova import duplicate_message, iter_members, read_member, read_ova_descriptor, tar_errors
from vmimage.descriptor.ovf import MAX_DESCRIPTOR_BYTES, Descriptor, parse_descriptor
from vmimage.descriptor.signature import MAX_CERT_BYTES
from vmimage.errors import ImageError

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


def read_bounded_text(path: str, limit: int, what: str = "", hint: str = "") -> str:
    """A UTF-8 text file of at most ``limit`` bytes (a stack file, an images file): every problem is
    an ImageError naming the file; ``hint`` follows an OS error (what to do about a missing file)."""
    try:
        size = Path(path).stat().st_size
        if size > limit:
            raise ImageError(path, f"{size} bytes, over the {limit} byte limit{what}")
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ImageError(path, "not UTF-8 text") from None
    except OSError as exc:
        raise ImageError(path, f"{exc.strerror or exc}{hint}") from None


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
    manifest when there is one), or a check that an ISO is one. An OVA's later member
    headers are walked too, their data seeked over: a truncated OVA is an error here as in
    `lint`, without reading its disks."""
    kind = content_type(path)
    try:
        if kind == "ISO":
            _check_iso(path)
            return ImageFile(path, kind, None)
        if path.lower().endswith(".ova"):
            with open_regular(path) as raw, io.BufferedReader(raw) as stream:
                ova = read_ova_descriptor(stream, path, whole=True)
            data, name = ova.data, ova.name
            source = f"{path}:{ova.name}"
        else:
            data, name, source = read_descriptor_file(path), os.path.basename(path), path
            if manifest_path is None:
                manifest_path = manifest_beside(path)
        if manifest_path is not None:
            with open_regular(manifest_path) as stream:  # to one byte past what parse_manifest accepts
                manifest = parse_manifest(stream.read(MAX_MANIFEST_BYTES + 1), manifest_path)
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
    certificates: list[tuple[str, bytes]] = field(default_factory=list)  # an OVA's .cert members, to past the cap


def package_contents(path: str) -> PackageContents:
    """What a local .ova or .ovf package holds, without reading its disks: an OVA's member
    headers (its data seeked over), or the descriptor's references beside an .ovf."""
    sizes: dict[str, int] = {}
    descriptor = manifest = None
    descriptor_name = manifest_name = None
    certificates: list[tuple[str, bytes]] = []
    try:
        if path.lower().endswith(".ova"):
            with open_regular(path) as raw, io.BufferedReader(raw) as stream, tar_errors(path):
                for info, reader in iter_members(stream, path, seek_past_data=True):
                    name = posixpath.basename(info.name)
                    if name in sizes:
                        raise ImageError(path, duplicate_message(name))
                    sizes[name] = info.size
                    lowered = name.lower()
                    if lowered.endswith(".ovf") and descriptor is None:
                        descriptor_name = name
                        descriptor = read_member(reader, info, MAX_DESCRIPTOR_BYTES, "descriptor", path)
                    elif lowered.endswith(".mf") and manifest is None:
                        manifest_name = name
                        manifest = read_member(reader, info, MAX_MANIFEST_BYTES, "manifest", path)
                    elif lowered.endswith(".cert"):  # to one byte past what the verification accepts
                        certificates.append((name, reader.read(MAX_CERT_BYTES + 1)))
        else:
            descriptor, descriptor_name = read_descriptor_file(path), os.path.basename(path)
            sizes[descriptor_name] = len(descriptor)
            beside = read_manifest_beside(path)
            if beside is not None:
                manifest_name, manifest = beside
                sizes[manifest_name] = len(manifest)
            certificate = certificate_beside(path)
            if certificate is not None:  # to one byte past what the verification accepts
                with open_regular(certificate, follow=False) as stream:
                    certificates.append((os.path.basename(certificate), stream.read(MAX_CERT_BYTES + 1)))
                sizes[certificates[0][0]] = require_regular(certificate, follow=False).st_size
            for reference in parse_descriptor(descriptor, path).files:
                sizes[reference.href] = require_regular(referenced_file(path, reference.href), follow=False).st_size
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    if descriptor is None or descriptor_name is None:
        raise ImageError(path, "the package has no .ovf descriptor")
    return PackageContents(sizes, descriptor, descriptor_name, manifest, manifest_name, certificates)


_A_LINK = "is a symbolic link; a package's files must be regular files beside its descriptor"
_NOT_A_FILE = "is not a regular file (a FIFO, a device or a directory); vmimage reads files only"


def require_regular(path: str, follow: bool = True) -> os.stat_result:
    """The file's stat, when it is a regular file. ``follow=False`` (files a package names)
    refuses a symbolic link too: a package must not reach files outside itself."""
    try:
        info = os.stat(path) if follow else os.lstat(path)
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    if not follow and stat.S_ISLNK(info.st_mode):
        raise ImageError(path, _A_LINK)
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(path, _NOT_A_FILE)
    return info


@contextmanager
def open_regular(path: str, follow: bool = True) -> Iterator[BinaryIO]:
    """Open a source file for reading, unbuffered, only if it is a regular file.

    O_NONBLOCK keeps a FIFO from blocking the open itself, O_NOFOLLOW (``follow=False``)
    refuses a symbolic link, and fstat checks what was opened, so nothing can be swapped in
    between the check and the read."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise ImageError(path, _A_LINK) from None
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ImageError(path, _NOT_A_FILE)
        os.set_blocking(fd, True)
        stream = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream


def manifest_beside(path: str) -> str | None:
    """The .mf that goes with a bare .ovf, when there is one (a regular file, never a link)."""
    beside = os.path.splitext(path)[0] + ".mf"
    if not os.path.lexists(beside):
        return None
    require_regular(beside, follow=False)
    return beside


def certificate_beside(path: str) -> str | None:
    """The .cert that signs a bare .ovf's manifest, when there is one (a regular file, never a
    link): part of the package as its manifest is, uploaded and fingerprinted with it."""
    beside = os.path.splitext(path)[0] + ".cert"
    if not os.path.lexists(beside):
        return None
    require_regular(beside, follow=False)
    return beside


def read_manifest_beside(path: str) -> tuple[str, bytes] | None:
    """That manifest's file name and bytes, read to one byte past the limit that
    `parse_manifest` enforces, so an oversized one is refused without reading it all."""
    beside = manifest_beside(path)
    if beside is None:
        return None
    with open_regular(beside, follow=False) as stream:
        return os.path.basename(beside), stream.read(MAX_MANIFEST_BYTES + 1)


def file_sha256(path: str, follow: bool = True) -> str:
    """A local file's SHA-256, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with open_regular(path, follow) as stream:
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


def cached_file_sha256(path: str, cache_dir: Path | None = None, follow: bool = True) -> str:
    """file_sha256, remembered per (file, size, mtime, inode): a file is read again only when it
    may have changed, and a touched file (new mtime, same bytes) gives the same digest."""
    info = require_regular(path, follow)
    key = f"{os.path.realpath(path)}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ino}\0{info.st_dev}"
    entry = (cache_dir or cache_root() / "digests") / hashlib.sha256(key.encode()).hexdigest()
    try:
        cached = entry.read_text()
        if len(cached) == 64 and all(c in "0123456789abcdef" for c in cached):
            return cached
    except OSError:
        pass
    digest = file_sha256(path, follow)
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
    .ovf, of the package (the descriptor, its manifest, certificate and every file it references, by name)."""
    if not path.lower().endswith(".ovf"):
        return cached_file_sha256(path, cache_dir)
    files = {path: cached_file_sha256(path, cache_dir)}
    for beside in (manifest_beside(path), certificate_beside(path)):  # a signature added is new content
        if beside is not None:
            files[beside] = cached_file_sha256(beside, cache_dir, follow=False)
    descriptor = parse_descriptor(read_descriptor_file(path), path)
    for reference in descriptor.files:
        referenced = referenced_file(path, reference.href)
        files[referenced] = cached_file_sha256(referenced, cache_dir, follow=False)
    lines = "".join(f"{os.path.basename(f)} {digest}\n" for f, digest in sorted(files.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def pinned_file(path: str) -> str | None:
    """The file a declared ``sha256`` is the digest of: the .ova or .iso itself; for a bare .ovf,
    its manifest, whose digests pin the descriptor and every disk (None: it has no manifest,
    so nothing could pin the disks)."""
    return manifest_beside(path) if path.lower().endswith(".ovf") else path


def declared_sha256_problem(path: str) -> str | None:
    """Why a ``sha256`` cannot be declared for this local source, if it cannot."""
    if pinned_file(path) is None:
        return (
            "a bare .ovf is pinned through its manifest and this one has none: declare sha256 for the .ova, "
            f"or put a manifest beside it ({os.path.splitext(os.path.basename(path))[0]}.mf) and give its SHA-256"
        )
    return None


def referenced_file(path: str, href: str) -> str:
    """The file a descriptor's reference names, which must be a plain file beside it."""
    if "/" in href or "\\" in href or href.startswith(".."):
        raise ImageError(path, f"file reference {href!r} is not a plain file name beside the descriptor")
    file_path = os.path.join(os.path.dirname(path), href)
    if not os.path.lexists(file_path):
        raise ImageError(path, f"references {href!r}, which is not beside it ({file_path})")
    require_regular(file_path, follow=False)
    return file_path


def read_descriptor_file(path: str) -> bytes:
    """A bare .ovf, refused past MAX_DESCRIPTOR_BYTES without reading further."""
    with open_regular(path) as stream:
        data = stream.read(MAX_DESCRIPTOR_BYTES + 1)
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise ImageError(path, f"descriptor is over the {MAX_DESCRIPTOR_BYTES} byte limit")
    return data


def _check_iso(path: str) -> None:
    with open_regular(path) as stream:
        stream.seek(_ISO_DESCRIPTOR_OFFSET)
        identifier = stream.read(5)
    if identifier not in _ISO_IDENTIFIERS:
        raise ImageError(path, "not an ISO 9660 or UDF image (no volume descriptor at sector 16)")
