"""Uploading an image file into a library item through one update session.

Every file is streamed (an OVA member by member, never extracted), hashed on the way,
and checked against the package's manifest and the user's SHA-256 before the session
is completed. Any failure cancels the session, so vCenter keeps the item as it was.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import posixpath
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from vmimage.descriptor.manifest import (
    ALGORITHMS,
    MAX_MANIFEST_BYTES,
    Digest,
    check_digest,
    parse_manifest,
    several_manifests_message,
    unlisted_message,
)
from vmimage.descriptor.ova import duplicate_message, iter_members, read_member, tar_errors
from vmimage.descriptor.ovf import MAX_DESCRIPTOR_BYTES, parse_descriptor
from vmimage.descriptor.signature import MAX_CERT_BYTES
from vmimage.descriptor.source import (
    certificate_beside,
    content_type,
    declared_sha256_problem,
    open_regular,
    package_contents,
    read_descriptor_file,
    read_manifest_beside,
    referenced_file,
    require_regular,
)
from vmimage.errors import ImageError
from vmimage.vsphere.content_library import ContentLibraryClient, read_chunks, read_chunks_at
from vmimage.vsphere.rest import NotFoundError, VSphereError

ProgressFn = Callable[[int, int], None]  # (bytes sent, bytes in all; 0 while vCenter gives no size)
# How often a running upload tells vCenter its update session is in use. vCenter expires an
# update session after five minutes without a call (its default), and an API session after
# its idle timeout: a multi-hour transfer makes no API call of its own.
KEEPALIVE_SECONDS = float(os.environ.get("VMIMAGE_KEEPALIVE_SECONDS", "60"))
log = logging.getLogger("vmimage.upload")


class _KeptAlive:
    """A thread that calls the update session's keep-alive every ``every`` seconds while an
    upload (or a pull) runs, with the progress so far. A failed call is logged and tried again
    at the next tick: the API session renews itself on the next call after a 401."""

    def __init__(self, client: ContentLibraryClient, session_id: str, progress: Callable[[], int], every: float):
        self.client, self.session_id, self.progress, self.every = client, session_id, progress, every
        self.stop = threading.Event()
        self.calls = 0
        self.thread = threading.Thread(target=self._run, name=f"keep-alive-{session_id}", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                self.client.keep_alive_update_session(self.session_id, self.progress())
                self.calls += 1
            except Exception as error:  # a keep-alive never fails the upload; the transfer says what is wrong
                log.warning("keep-alive of update session %s failed: %s", self.session_id, error)

    def __enter__(self) -> _KeptAlive:
        if self.every > 0:
            self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)


@dataclass
class UploadResult:
    files: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    descriptor: bytes | None = None
    descriptor_name: str | None = None
    source_sha256: str | None = None
    removed: list[str] = field(default_factory=list)  # the item's earlier files the new source does not have


def is_url(source: str) -> bool:
    return source.lower().startswith("https://")


class _Progress:
    def __init__(self, total: int, report: ProgressFn | None) -> None:
        self.total, self.sent, self.report = total, 0, report

    def add(self, n: int) -> None:
        self.sent += n
        if self.report is not None:
            self.report(self.sent, self.total)


class _HashingReader:
    """Hashes everything read through it (the whole .ova, when the user declared its sha256)."""

    def __init__(self, stream: IO[bytes], enabled: bool) -> None:
        self.stream = stream
        self.hasher = hashlib.sha256() if enabled else None

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        if self.hasher is not None:
            self.hasher.update(data)
        return data

    def hexdigest(self) -> str | None:
        return self.hasher.hexdigest() if self.hasher is not None else None


def _hashers(algorithms: tuple[str, ...]) -> dict[str, hashlib._Hash]:
    return {a: hashlib.new(a.lower()) for a in algorithms}


def _hashed(chunks: Iterator[bytes], hashers: dict[str, hashlib._Hash], progress: _Progress) -> Iterator[bytes]:
    """Hash each chunk just before it is sent, while it is still in the CPU's cache."""
    for chunk in chunks:
        for hasher in hashers.values():
            hasher.update(chunk)
        progress.add(len(chunk))
        yield chunk


class _Uploader:
    def __init__(self, client: ContentLibraryClient, session_id: str, source: str, progress: _Progress) -> None:
        self.client, self.session_id, self.source, self.progress = client, session_id, source, progress
        self.result = UploadResult()
        self.manifest: dict[str, Digest] | None = None
        self.manifest_name: str | None = None
        self.manifest_bytes: bytes | None = None
        self.digests: dict[str, dict[str, str]] = {}  # file → algorithm → hex, for checks once the manifest is known

    def put_bytes(self, name: str, data: bytes) -> None:
        def chunks() -> Iterator[bytes]:
            return iter([data]) if data else iter(())

        self.put_stream(name, len(data), chunks(), again=chunks)

    def put_stream(
        self, name: str, size: int, chunks: Iterator[bytes], again: Callable[[], Iterator[bytes]] | None = None
    ) -> None:
        """Announce and send one file, hashing it on the way. ``again`` gives its bytes anew when
        vCenter ends the session mid-transfer (a file read from its start; not an OVA member)."""
        if name in self.result.files:
            raise ImageError(self.source, duplicate_message(name))
        if self.manifest is not None and name not in self.manifest and not _unlisted_by_design(name):
            raise ImageError(self.source, unlisted_message(name))
        expected = self.manifest.get(name) if self.manifest is not None else None
        if expected is not None:
            algorithms: tuple[str, ...] = (expected.algorithm,)
        elif self.manifest is not None:  # listed nowhere: SHA-256 for the record
            algorithms = ("SHA256",)
        else:  # the manifest may still come: keep every digest it could ask for
            algorithms = ALGORITHMS
        hashers = _hashers(algorithms)
        sent_before = self.progress.sent

        def resend() -> Iterator[bytes]:
            assert again is not None
            hashers.update(_hashers(algorithms))  # the first attempt's digests count for nothing
            self.progress.sent = sent_before
            return _hashed(again(), hashers, self.progress)

        uri = self.client.add_file(self.session_id, name, size)
        self.client.upload(uri, _hashed(chunks, hashers, self.progress), size, resend if again else None)
        self.result.files.append(name)
        self.result.bytes_sent += size
        self.digests[name] = {a: h.hexdigest() for a, h in hashers.items()}
        if expected is not None:
            check_digest(expected, self.digests[name][expected.algorithm], name, self.source)

    def take_manifest(self, name: str, data: bytes) -> None:
        if self.manifest is not None:
            raise ImageError(self.source, several_manifests_message([self.manifest_name or "?", name]))
        self.manifest, self.manifest_name = parse_manifest(data, f"{self.source}:{name}"), name
        self.manifest_bytes = data  # what a declared sha256 of a bare .ovf pins
        for uploaded, digests in self.digests.items():
            expected = self.manifest.get(uploaded)
            if expected is None:
                if not _unlisted_by_design(uploaded):
                    raise ImageError(self.source, unlisted_message(uploaded))
            elif expected.algorithm not in digests:
                raise ImageError(
                    self.source, f"cannot check {uploaded!r}: the manifest's {expected.algorithm} came late"
                )
            else:
                check_digest(expected, digests[expected.algorithm], uploaded, self.source)

    def finish(self) -> None:
        """The package must be whole: descriptor present, its references and the manifest's entries uploaded."""
        if self.result.descriptor is None:
            raise ImageError(self.source, "the package has no .ovf descriptor")
        descriptor = parse_descriptor(self.result.descriptor, f"{self.source}:{self.result.descriptor_name}")
        missing = [f.href for f in descriptor.files if f.href not in self.result.files]
        if missing:
            raise ImageError(
                self.source, f"the descriptor references {', '.join(map(repr, missing))}, which the package lacks"
            )
        if self.manifest is not None:
            unlisted = [n for n in self.manifest if n not in self.result.files]
            if unlisted:
                raise ImageError(
                    self.source, f"the manifest lists {', '.join(map(repr, unlisted))}, which the package lacks"
                )


def _rewound(stream: IO[bytes], size: int) -> Callable[[], Iterator[bytes]]:
    """The file's bytes from its start again, for a second attempt at its transfer."""

    def chunks() -> Iterator[bytes]:
        stream.seek(0)
        return read_chunks(stream, size)

    return chunks


def _unlisted_by_design(name: str) -> bool:
    """The manifest itself and the signature's certificate, which no manifest lists."""
    return name.lower().endswith((".mf", ".cert"))


def _upload_ova(up: _Uploader, stream: IO[bytes], fd: int) -> None:
    """Member by member; ``fd`` is the archive's open file, from which a member whose transfer
    vCenter cut short (its session ended: HTTP 401) is read again by position."""
    for info, reader in iter_members(stream, up.source):
        name = posixpath.basename(info.name)
        lowered = name.lower()
        if lowered.endswith(".mf"):
            data = read_member(reader, info, MAX_MANIFEST_BYTES, "manifest", up.source)
            up.take_manifest(name, data)
            up.put_bytes(name, data)
        elif lowered.endswith(".ovf") and up.result.descriptor is None:
            data = read_member(reader, info, MAX_DESCRIPTOR_BYTES, "descriptor", up.source)
            up.result.descriptor, up.result.descriptor_name = data, name
            up.put_bytes(name, data)
        else:
            again = functools.partial(read_chunks_at, fd, info.offset_data, info.size)
            up.put_stream(name, info.size, read_chunks(reader, info.size), again=again)


def _upload_ovf(up: _Uploader, path: str) -> None:
    data = read_descriptor_file(path)
    up.result.descriptor, up.result.descriptor_name = data, os.path.basename(path)
    beside = read_manifest_beside(path)
    if beside is not None:
        manifest_name, manifest = beside
        up.take_manifest(manifest_name, manifest)
        up.put_bytes(manifest_name, manifest)
    certificate = certificate_beside(path)
    if certificate is not None:  # the signature vCenter verifies: without it the item is unsigned
        with open_regular(certificate, follow=False) as stream:
            signature = stream.read(MAX_CERT_BYTES + 1)
        if len(signature) > MAX_CERT_BYTES:
            raise ImageError(certificate, f"over the {MAX_CERT_BYTES} byte limit for a certificate file")
        up.put_bytes(os.path.basename(certificate), signature)
    beside = [
        (reference.href, referenced_file(path, reference.href)) for reference in parse_descriptor(data, path).files
    ]
    up.progress.total += sum(require_regular(file_path, follow=False).st_size for _, file_path in beside)
    up.put_bytes(os.path.basename(path), data)
    for name, file_path in beside:
        with open_regular(file_path, follow=False) as stream:  # raw reads: buffered ones cost a copy per MiB
            size = os.fstat(stream.fileno()).st_size
            up.put_stream(name, size, read_chunks(stream, size), again=_rewound(stream, size))


def upload_source(
    client: ContentLibraryClient,
    item_id: str,
    source: str,
    *,
    expected_sha256: str | None = None,
    progress: ProgressFn | None = None,
    pull_timeout: float = 3600.0,
) -> UploadResult:
    """Replace the item's content with ``source`` in one update session, or leave it untouched."""
    old_files = [] if is_url(source) else [f.name for f in client.item_files(item_id)]
    session_id = client.create_update_session(item_id)
    percent = [0]

    def report(sent: int, total: int) -> None:
        percent[0] = 100 * sent // total if total else 100
        if progress is not None:
            progress(sent, total)

    try:
        with _KeptAlive(client, session_id, lambda: percent[0], KEEPALIVE_SECONDS):
            if is_url(source):
                result = _pull(client, session_id, source, pull_timeout, expected_sha256, progress)
            else:
                removed = _remove_others(client, session_id, source, old_files)
                result = _push(client, session_id, source, expected_sha256, report)
                result.removed = removed
        client.complete_update_session(session_id)
        _wait_done(client, session_id, source)
        return result
    except BaseException:
        # vCenter expires an abandoned session anyway; the item keeps its old content either way
        with contextlib.suppress(VSphereError):
            client.cancel_update_session(session_id)
        raise


def _remove_others(client: ContentLibraryClient, session_id: str, path: str, old_files: list[str]) -> list[str]:
    """The item's files the new source does not have (an earlier version's differently named
    disk, say) are removed in the same session, so the item holds the new package only. They
    are asked for first, so a server that refuses leaves nothing uploaded."""
    new = {os.path.basename(path)} if content_type(path) == "ISO" else set(package_contents(path).sizes)
    others = sorted(name for name in old_files if name not in new)
    for name in others:
        client.remove_file(session_id, name)
        try:
            alive = bool(client.get_update_session(session_id))
        except NotFoundError:
            alive = False
        if not alive:
            raise ImageError(
                path,
                f"vCenter dropped the update session when asked to remove {name!r}, which the new source does not "
                "have (govmomi's simulator does this); the item is unchanged: remove the file in the vSphere Client, "
                "or keep file names stable across versions",
            )
    return others


def _push(
    client: ContentLibraryClient, session_id: str, path: str, expected_sha256: str | None, report: ProgressFn | None
) -> UploadResult:
    kind = content_type(path)
    try:
        total = require_regular(path).st_size
        up = _Uploader(client, session_id, path, _Progress(total, report))
        if kind == "ISO":
            name = os.path.basename(path)
            with open_regular(path) as raw:
                up.put_stream(name, total, read_chunks(raw, total), again=_rewound(raw, total))
            up.result.source_sha256 = up.digests[name].get("SHA256")
        elif path.lower().endswith(".ova"):
            with open_regular(path) as raw, tar_errors(path):
                stream = _HashingReader(raw, enabled=expected_sha256 is not None)
                _upload_ova(up, stream, raw.fileno())
                while stream.read(1 << 20):  # the tar's end blocks, so the digest covers the whole file
                    pass
            up.result.source_sha256 = stream.hexdigest()
            up.finish()
        else:
            if expected_sha256 and (problem := declared_sha256_problem(path)):
                raise ImageError(path, problem)
            _upload_ovf(up, path)
            manifest = up.manifest_bytes
            up.result.source_sha256 = hashlib.sha256(manifest).hexdigest() if manifest is not None else None
            up.finish()
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    except EOFError as exc:
        raise ImageError(path, f"truncated package: {exc}") from None
    check_declared_sha256(path, up.result.source_sha256, expected_sha256)
    return up.result


def check_declared_sha256(path: str, actual: str | None, declared: str | None) -> None:
    if declared and actual and actual != declared.lower():
        raise ImageError(path, f"SHA-256 is {actual}, not the declared sha256 {declared.lower()}")


def holds_source(client: ContentLibraryClient, item_id: str, source: str) -> bool:
    """Whether the item already holds this local OVF package, so taking it over needs no upload.

    Only a package with a manifest can tell: the item must have the same file names, and the
    same descriptor and manifest bytes — the manifest's digests then stand for the disks, which
    vCenter checked against them when they were uploaded. Disk sizes are not compared: a server
    may store a streamOptimized disk converted (govmomi's simulator keeps the disk without its
    VMDK header). Reads the package's headers and two small files on each side.
    """
    if is_url(source) or content_type(source) != "OVF":
        return False
    package = package_contents(source)
    if package.manifest is None or package.manifest_name is None:
        return False
    sizes = {f.name: f.size for f in client.item_files(item_id)}
    if set(sizes) != set(package.sizes):
        return False
    small = [(package.descriptor_name, package.descriptor), (package.manifest_name, package.manifest)]
    for name, data in [*small, *package.certificates]:  # a signature by another key is other content
        if sizes[name] and sizes[name] != len(data):  # another file (a longer one is over the download's limit)
            return False
        if client.download(item_id, name, len(data)) != data:
            return False
    return True


def preflight(url: str, verify: ssl.SSLContext | bool = True) -> None:
    """Ask the URL for its headers before vCenter pulls it, to turn a typo into a clear error.

    The certificate is checked with the trust everything else uses (vsphere:caFile, else the
    system's CAs): an untrusted one is refused here, before vCenter is asked. Otherwise
    advisory: a URL this machine cannot reach may still be reachable from vCenter, so
    connection errors are left to vCenter.
    """
    import httpx

    try:
        response = httpx.head(url, verify=verify, follow_redirects=True, timeout=15)
    except httpx.ConnectError as exc:
        if isinstance(exc.__cause__, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise ImageError(
                url,
                "its TLS certificate is not trusted (add its CA to vsphere:caFile, or serve it with a trusted one)",
            ) from None
        return
    except httpx.HTTPError:
        return
    if response.status_code in (401, 403, 404, 410):
        raise ImageError(
            url, f"the URL answers HTTP {response.status_code}; check it, vCenter could not pull it either"
        )


def _pull(
    client: ContentLibraryClient,
    session_id: str,
    url: str,
    timeout: float,
    expected_sha256: str | None = None,
    progress: ProgressFn | None = None,
) -> UploadResult:
    """vCenter fetches the URL itself; a declared sha256 goes with the file spec, so vCenter
    checks what it fetched and fails the transfer on a mismatch (nothing is published). Each
    poll reports vCenter's ``bytes_transferred`` of ``size`` (0 of 0 where it gives none:
    govmomi's simulator never does)."""
    preflight(url, client.session.settings.ssl_context())
    name = posixpath.basename(url.split("?", 1)[0]) or "image"
    client.add_file(session_id, name, source_url=url, sha256=expected_sha256)
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        files = client.session_files(session_id)
        states = {f.get("name"): f.get("status") for f in files}
        if progress is not None:
            progress(sum(_count(f, "bytes_transferred") for f in files), sum(_count(f, "size") for f in files))
        if states and all(state == "READY" for state in states.values()):
            return UploadResult(files=list(states), source_sha256=expected_sha256.lower() if expected_sha256 else None)
        if any(state == "ERROR" for state in states.values()):
            session = client.get_update_session(session_id)
            message = ((session or {}).get("error_message") or {}).get("default_message", "")
            if expected_sha256 and "checksum" in message.lower():
                declared = expected_sha256.lower()
                raise ImageError(url, f"what vCenter fetched does not have the declared sha256 {declared}")
            raise ImageError(url, f"vCenter could not fetch it{': ' + message if message else ''}")
        if time.monotonic() > deadline:
            raise ImageError(url, f"vCenter did not finish fetching it within {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _count(file: dict, key: str) -> int:
    value = file.get(key)
    return value if isinstance(value, int) and value > 0 else 0


def _wait_done(client: ContentLibraryClient, session_id: str, source: str, timeout: float = 600.0) -> None:
    """vCenter finishes a session asynchronously; wait for DONE, fail on ERROR."""
    deadline = time.monotonic() + timeout
    while True:
        session = client.get_update_session(session_id) or {}
        state = session.get("state")
        if state in ("DONE", None):
            return
        if state in ("ERROR", "CANCELED"):
            message = (session.get("error_message") or {}).get("default_message", "")
            raise ImageError(source, f"vCenter rejected the upload ({state}{': ' + message if message else ''})")
        if time.monotonic() > deadline:
            raise ImageError(source, "vCenter did not finish the upload session in time")
        time.sleep(0.5)
