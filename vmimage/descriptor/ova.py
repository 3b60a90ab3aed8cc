"""Reading OVA archives as a stream: never extracted.

An OVA is a plain tar whose first member is the OVF descriptor, optionally followed by
the manifest, then the disks. `read_ova_descriptor` stops right after the descriptor
(and the manifest when it comes next), so inspecting a 50 GB OVA reads a few KB.
`iter_members` walks every member for uploads; given a file, it can seek past the
data nobody read, so listing a 50 GB OVA reads its headers only.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from vmimage.descriptor.manifest import MAX_MANIFEST_BYTES, Digest, parse_manifest, verify_digest
from vmimage.descriptor.ovf import MAX_DESCRIPTOR_BYTES
from vmimage.errors import ImageError


@dataclass(frozen=True)
class OvaDescriptor:
    name: str  # the descriptor's member name
    data: bytes
    manifest: dict[str, Digest] | None  # present when the manifest came right after the descriptor


def duplicate_message(name: str) -> str:
    """The one wording for a file name an OVA holds twice: vCenter keys a library item's files
    by name alone, so two members of one name (in any folders) cannot both be uploaded."""
    return f"the package holds {name!r} twice (in any folder): rename one, or leave it out"


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


def read_fully(stream: IO[bytes], size: int) -> bytes:
    """``size`` bytes, or fewer only at the end of the stream (raw files and pipes may return less)."""
    data = stream.read(size)
    if data is None or len(data) == size or not data:
        return data or b""
    parts = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


_MAX_HEADER_READ = 1 << 20  # PAX and GNU long-name headers are a few hundred bytes


class _HeaderReader:
    """The little of a TarFile that `TarInfo.fromtarfile` reads: a position-counting
    stream, its encodings and the global PAX headers. Member data never goes through
    tarfile's own stream buffer, which costs several copies per MiB."""

    def __init__(self, stream: IO[bytes], source: str, end: int | None = None) -> None:
        self.stream = stream
        self.source = source
        self.end = end  # the file's size when member data is skipped by seeking
        self.position = 0
        self.encoding = tarfile.ENCODING
        self.errors = "surrogateescape"
        self.pax_headers: dict[str, str] = {}
        self.offset = 0
        self.fileobj = self  # fromtarfile reads through tarfile.fileobj

    def read(self, size: int) -> bytes:
        if size > _MAX_HEADER_READ:
            raise ImageError(self.source, f"a tar header claims {size} bytes; refusing an oversized header")
        data = read_fully(self.stream, size)
        self.position += len(data)
        return data

    def tell(self) -> int:
        return self.position


class _MemberReader:
    """Exactly one member's bytes from the archive stream; a short stream is a truncated archive."""

    def __init__(self, headers: _HeaderReader, info: tarfile.TarInfo) -> None:
        self._headers = headers
        self._info = info
        self.remaining = info.size

    def read(self, size: int = -1) -> bytes:
        wanted = self.remaining if size is None or size < 0 else min(size, self.remaining)
        if wanted == 0:
            return b""
        data = read_fully(self._headers.stream, wanted)
        self._headers.position += len(data)
        self.remaining -= len(data)
        if len(data) < wanted:
            raise ImageError(self._headers.source, f"truncated OVA archive: {self._info.name!r} ends early")
        return data

    def skip_rest(self) -> None:
        """Read (or seek) past what the consumer left and the padding to the next 512-byte block."""
        headers = self._headers
        if headers.end is not None and self.remaining:
            if headers.position + self.remaining > headers.end:
                raise ImageError(headers.source, f"truncated OVA archive: {self._info.name!r} ends early")
            headers.stream.seek(self.remaining, os.SEEK_CUR)
            headers.position += self.remaining
            self.remaining = 0
        while self.remaining:
            self.read(min(self.remaining, 1 << 20))
        padding = -self._info.size % tarfile.BLOCKSIZE
        if padding and len(self._headers.read(padding)) < padding:
            raise ImageError(self._headers.source, "truncated OVA archive (unexpected end of data)")


def iter_members(
    stream: IO[bytes], source: str, seek_past_data: bool = False
) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """Every member with a reader over its bytes, in archive order, checked for safety.

    Headers are parsed by the standard library (ustar, GNU and PAX); a member's reader
    must be used before asking for the next member. With ``seek_past_data`` (``stream``
    must be a file read from its start), data left unread is seeked over, not read.
    """
    end = os.fstat(stream.fileno()).st_size if seek_past_data else None
    headers = _HeaderReader(stream, source, end)
    first = True
    while True:
        with tar_errors(source):
            try:
                info = tarfile.TarInfo.fromtarfile(headers)  # type: ignore[arg-type]
            except tarfile.EOFHeaderError:
                return  # the end-of-archive blocks
            except tarfile.EmptyHeaderError:
                if first:
                    raise ImageError(source, "not a valid OVA (tar) archive: the file is empty") from None
                return  # the stream ends after the last member, without end-of-archive blocks
            except tarfile.TruncatedHeaderError:
                raise ImageError(source, "truncated OVA archive (a header ends early)") from None
            except tarfile.HeaderError as exc:
                what = "not a valid OVA (tar) archive" if first else "corrupt OVA archive"
                raise ImageError(source, f"{what}: {exc}") from None
        first = False
        info.offset_data = headers.position  # where its data starts in the file, to read it again
        check_member(info, source)
        if info.type == tarfile.GNUTYPE_SPARSE:
            raise ImageError(source, f"member {info.name!r} is a GNU sparse file; OVA members must be plain files")
        reader = _MemberReader(headers, info)
        yield info, reader  # type: ignore[misc]
        reader.skip_rest()


def read_member(reader: IO[bytes], info: tarfile.TarInfo, limit: int, what: str, source: str) -> bytes:
    """A small member (descriptor, manifest) whole, refusing one over ``limit`` before reading it."""
    if info.size > limit:
        raise ImageError(source, f"{what} {info.name!r} is {info.size} bytes, over the {limit} byte limit")
    data = reader.read()
    if len(data) != info.size:
        raise ImageError(source, f"truncated OVA archive: {info.name!r} ends early")
    return data


def read_ova_descriptor(stream: IO[bytes], source: str, whole: bool = False) -> OvaDescriptor:
    """The descriptor (first member) and, when it follows at once, the checked manifest.

    ``whole`` (``stream`` a file read from its start) then walks every later member's header,
    seeking over the data, so a truncated archive is an error while a 50 GB OVA still costs
    a few reads: a member that claims more bytes than the file has left ends early."""
    members = iter_members(stream, source, seek_past_data=whole)
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
        descriptor = read_member(reader, info, MAX_DESCRIPTOR_BYTES, "descriptor", source)
        manifest = None
        following = next(members, None)
        if following is not None and following[0].name.lower().endswith(".mf"):
            manifest_info, manifest_reader = following
            data = read_member(manifest_reader, manifest_info, MAX_MANIFEST_BYTES, "manifest", source)
            manifest = parse_manifest(data, f"{source}:{manifest_info.name}")
            listed = info.name if info.name in manifest else posixpath.basename(info.name)
            verify_digest(manifest, listed, descriptor, source)
        if whole and following is not None:
            for _ in members:
                pass
        members.close()
    return OvaDescriptor(name=info.name, data=descriptor, manifest=manifest)
