"""Signing packages and reading their signatures from files: the I/O around vmimage.descriptor.signature.

`sign_package` writes what ovftool's ``--privateKey`` writes: the manifest (when the package has
none; one it has is checked against every file first, so a changed disk is never signed) and the
``.cert`` beside it, or for an OVA a new archive ordered descriptor, manifest, certificate, then
the other files, as DSP0243 orders them. Nothing is changed in place: each file is written to a
temporary file beside its target and renamed over it once whole.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from vmimage.descriptor.manifest import (
    ALGORITHMS,
    MAX_MANIFEST_BYTES,
    Digest,
    parse_manifest,
    stream_digests,
    unlisted_message,
)
from vmimage.descriptor.ova import duplicate_message, iter_members, read_member, tar_errors
from vmimage.descriptor.ovf import MAX_DESCRIPTOR_BYTES, parse_descriptor
from vmimage.descriptor.signature import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_CERTIFICATES,
    MAX_CERT_BYTES,
    SignatureReport,
    SignatureStatus,
    certificate_file,
    key_mismatch,
    load_certificates,
    load_private_key,
    verify_signature,
)
from vmimage.descriptor.source import (
    certificate_beside,
    content_type,
    manifest_beside,
    open_regular,
    package_contents,
    read_descriptor_file,
    read_manifest_beside,
    referenced_file,
)
from vmimage.errors import ImageError

_CHUNK = 1 << 20
_MAX_KEY_BYTES = 64 * 2**10


def read_limited(path: str, limit: int, what: str) -> bytes:
    """A small file whole (a key, a certificate), refused past ``limit`` bytes."""
    try:
        with open_regular(path) as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    if len(data) > limit:
        raise ImageError(path, f"over the {limit} byte limit for {what}")
    return data


def load_trust_bundle(paths: Sequence[str]) -> list[x509.Certificate]:
    """The certificates of PEM files (CA bundles, or a signer's certificate trusted directly)."""
    trust: list[x509.Certificate] = []
    for path in paths:
        data = read_limited(path, MAX_BUNDLE_BYTES, "a trust bundle")
        if b"PRIVATE KEY-----" in data:  # a signer's key+certificate PEM given as the CA, likely committed
            raise ImageError(
                path, "holds a private key: give a file of certificates only, and keep the key out of the stack"
            )
        trust.extend(load_certificates(data, path, MAX_BUNDLE_CERTIFICATES))
    return trust


def read_certificate_beside(path: str) -> list[tuple[str, bytes]]:
    """The .cert of a bare .ovf (``name.cert`` beside ``name.ovf``), to one byte past the cap."""
    beside = certificate_beside(path)
    if beside is None:
        return []
    with open_regular(beside, follow=False) as stream:
        return [(os.path.basename(beside), stream.read(MAX_CERT_BYTES + 1))]


def package_signature(path: str, trust: Sequence[x509.Certificate], now: datetime) -> SignatureReport | None:
    """The signature of a local .ova or .ovf as `inspect` reports it: read from its headers and
    small files only, so the disks' digests are left unchecked (lint checks them). None: an ISO."""
    if content_type(path) != "OVF":
        return None
    try:
        if path.lower().endswith(".ova"):
            package = package_contents(path)
            descriptor, descriptor_name, certificates = (
                package.descriptor,
                package.descriptor_name,
                package.certificates,
            )
            names = [n for n in package.sizes if not n.lower().endswith((".mf", ".cert"))]
            manifest = (package.manifest_name, package.manifest) if package.manifest_name and package.manifest else None
        else:  # the disks need not be there: inspect reads the descriptor only
            descriptor, descriptor_name = read_descriptor_file(path), os.path.basename(path)
            names = [descriptor_name, *(r.href for r in parse_descriptor(descriptor, path).files)]
            manifest = read_manifest_beside(path)
            certificates = read_certificate_beside(path)
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    members: dict[str, dict[str, str] | None] = dict.fromkeys(names)
    members[descriptor_name] = {a: hashlib.new(a.lower(), descriptor).hexdigest() for a in ALGORITHMS}
    return verify_signature(manifest=manifest, certificates=certificates, members=members, trust=trust, now=now)


# --- signing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    written: list[str]  # the files written, in order
    manifest_created: bool
    report: SignatureReport  # the new signature, checked against no trust bundle


def load_signer(
    key_path: str, cert_path: str, chain_paths: Sequence[str], password: bytes | None = None
) -> tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, list[x509.Certificate]]:
    """The private key, and the certificates for the .cert: the key's certificate first, then the chain."""
    key = load_private_key(read_limited(key_path, _MAX_KEY_BYTES, "a private key"), key_path, password)
    certificates = load_certificates(read_limited(cert_path, MAX_CERT_BYTES, "a certificate"), cert_path)
    problem = key_mismatch(key, certificates[0])
    if problem:
        raise ImageError(key_path, f"{problem} ({cert_path} holds it first)")
    for chain_path in chain_paths:
        certificates.extend(load_certificates(read_limited(chain_path, MAX_CERT_BYTES, "a chain"), chain_path))
    return key, certificates


def _manifest_for(
    source: str, order: list[str], digests: dict[str, dict[str, str]], existing: tuple[str, bytes] | None
) -> bytes:
    """The package's manifest: the one it has, checked against every file, or a new SHA256 one."""
    if existing is None:
        return "".join(f"SHA256({name})= {digests[name]['SHA256']}\n" for name in order).encode()
    name, data = existing
    listed = parse_manifest(data, f"{source}:{name}")
    for file_name in order:
        expected: Digest | None = listed.get(file_name)
        if expected is None:
            raise ImageError(source, unlisted_message(file_name) + "; or remove the manifest to have a new one made")
        actual = digests[file_name].get(expected.algorithm)
        if actual != expected.hexdigest:
            raise ImageError(
                source,
                f"{expected.algorithm} of {file_name!r} is {actual}, but {name} says {expected.hexdigest}: the file "
                "changed after packing; a signature would vouch for it (restore the file, or remove the manifest "
                "to have a new one made)",
            )
    for missing in sorted(set(listed) - set(order)):
        raise ImageError(source, f"{name} lists {missing!r}, which the package lacks")
    return data


@contextmanager
def _replacing(target: str) -> Iterator[IO[bytes]]:
    """A temporary file beside ``target``, renamed over it only when the block ends without an error."""
    directory = os.path.dirname(os.path.abspath(target))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def _check_own(report: SignatureReport, source: str) -> SignatureReport:
    """The signature just made verifies over what was written; an untrusted or expired chain is
    the caller's to report (no trust bundle is known here)."""
    if report.status not in (SignatureStatus.UNTRUSTED, SignatureStatus.EXPIRED):
        raise ImageError(source, f"the new signature does not verify ({report.status}: {report.message})")
    return report


def _add_member(out: IO[bytes], name: str, data: bytes, mtime: float) -> None:
    header = tarfile.TarInfo(name)
    header.size, header.mode, header.mtime = len(data), 0o644, int(mtime)
    out.write(header.tobuf(format=tarfile.PAX_FORMAT))
    out.write(data)
    out.write(bytes(-len(data) % tarfile.BLOCKSIZE))


def _sign_ova(source: str, out: str, key, certificates, algorithm: str, now: datetime) -> Signed:
    order: list[str] = []  # every file but the manifest and certificates, by its name in the manifest
    digests: dict[str, dict[str, str]] = {}
    descriptor: tuple[str, bytes, float] | None = None
    manifest: tuple[str, bytes] | None = None
    seen: set[str] = set()
    wanted: Sequence[str] = ALGORITHMS  # until the manifest names its algorithms
    with open_regular(source) as raw, io.BufferedReader(raw) as stream, tar_errors(source):
        for index, (info, reader) in enumerate(iter_members(stream, source)):
            name = posixpath.basename(info.name)
            if name in seen:
                raise ImageError(source, duplicate_message(name))
            seen.add(name)
            lowered = name.lower()
            if index == 0:
                if not lowered.endswith(".ovf"):
                    raise ImageError(source, f"the first member is {info.name!r}, not the .ovf descriptor")
                data = read_member(reader, info, MAX_DESCRIPTOR_BYTES, "descriptor", source)
                descriptor = (info.name, data, info.mtime)
                order.append(name)
                digests[name] = {a: hashlib.new(a.lower(), data).hexdigest() for a in ALGORITHMS}
            elif lowered.endswith(".mf"):
                if manifest is not None:
                    raise ImageError(source, f"the package holds two manifests ({manifest[0]!r}, {name!r}); keep one")
                manifest = (name, read_member(reader, info, MAX_MANIFEST_BYTES, "manifest", source))
                listed = parse_manifest(manifest[1], f"{source}:{name}")
                wanted = sorted({d.algorithm for d in listed.values()} | {"SHA256"})
            elif lowered.endswith(".cert"):
                continue  # replaced by the new signature
            else:
                order.append(name)
                digests[name] = stream_digests(reader.read, info.size, wanted, "sign")
    if descriptor is None:
        raise ImageError(source, "the OVA archive is empty; expected an .ovf descriptor first")
    descriptor_path, descriptor_data, mtime = descriptor
    stem = posixpath.splitext(posixpath.basename(descriptor_path))[0]
    manifest_data = _manifest_for(source, order, digests, manifest)
    manifest_name = manifest[0] if manifest else f"{stem}.mf"
    cert_name = f"{posixpath.splitext(manifest_name)[0]}.cert"
    cert_data = certificate_file(manifest_data, manifest_name, key, certificates, algorithm)
    report = _check_own(
        verify_signature(
            manifest=(manifest_name, manifest_data),
            certificates=[(cert_name, cert_data)],
            members=digests,
            trust=[],
            now=now,
        ),
        source,
    )
    with _replacing(out) as target:
        _add_member(target, descriptor_path, descriptor_data, mtime)
        _add_member(target, manifest_name, manifest_data, mtime)
        _add_member(target, cert_name, cert_data, mtime)
        copied = [order[0]]
        with open_regular(source) as raw, io.BufferedReader(raw) as stream, tar_errors(source):
            for index, (info, reader) in enumerate(iter_members(stream, source)):
                name = posixpath.basename(info.name)
                if index == 0 or name.lower().endswith((".mf", ".cert")):
                    continue
                copied.append(name)
                header = tarfile.TarInfo(info.name)
                header.size, header.mode, header.mtime = info.size, 0o644, int(info.mtime)
                target.write(header.tobuf(format=tarfile.PAX_FORMAT))
                hasher = hashlib.sha256()
                remaining = info.size
                while remaining:  # copied and hashed again: what was signed is what is written
                    chunk = reader.read(min(_CHUNK, remaining))
                    hasher.update(chunk)
                    target.write(chunk)
                    remaining -= len(chunk)
                target.write(bytes(-info.size % tarfile.BLOCKSIZE))
                if hasher.hexdigest() != digests.get(name, {}).get("SHA256"):
                    raise ImageError(source, f"{name!r} changed while it was being signed; sign it again")
        for gone in [name for name in order if name not in copied]:  # the manifest would list what is not there
            raise ImageError(source, f"{gone!r} went while it was being signed; sign it again")
        target.write(bytes(2 * tarfile.BLOCKSIZE))
        target.write(bytes(-target.tell() % tarfile.RECORDSIZE))
    return Signed([out], manifest is None, report)


def _sign_ovf(source: str, key, certificates, algorithm: str, now: datetime) -> Signed:
    descriptor = read_descriptor_file(source)
    name = os.path.basename(source)
    order = [name]
    digests = {name: {a: hashlib.new(a.lower(), descriptor).hexdigest() for a in ALGORITHMS}}
    for reference in parse_descriptor(descriptor, source).files:
        path = referenced_file(source, reference.href)
        with open_regular(path, follow=False) as stream:
            size = os.fstat(stream.fileno()).st_size
            order.append(reference.href)
            digests[reference.href] = stream_digests(stream.read, size, ALGORITHMS, "sign")
    beside = manifest_beside(source)
    existing = None
    if beside is not None:
        with open_regular(beside, follow=False) as stream:
            existing = (os.path.basename(beside), stream.read(MAX_MANIFEST_BYTES + 1))
    manifest_data = _manifest_for(source, order, digests, existing)
    stem = os.path.splitext(source)[0]
    manifest_path, cert_path = f"{stem}.mf", f"{stem}.cert"
    manifest_name = os.path.basename(manifest_path)
    cert_data = certificate_file(manifest_data, manifest_name, key, certificates, algorithm)
    report = _check_own(
        verify_signature(
            manifest=(manifest_name, manifest_data),
            certificates=[(os.path.basename(cert_path), cert_data)],
            members=digests,
            trust=[],
            now=now,
        ),
        source,
    )
    written = []
    if existing is None:
        with _replacing(manifest_path) as target:
            target.write(manifest_data)
        written.append(manifest_path)
    with _replacing(cert_path) as target:
        target.write(cert_data)
    written.append(cert_path)
    return Signed(written, existing is None, report)


def sign_package(
    path: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    certificates: Sequence[x509.Certificate],
    now: datetime,
    out: str | None = None,
    algorithm: str = "SHA256",
) -> Signed:
    """Sign a local .ova (into ``out``, default: the .ova itself, replaced once the new one is
    whole) or .ovf (its .mf, when missing, and .cert beside it)."""
    if content_type(path) != "OVF":
        raise ImageError(path, "an ISO has no manifest to sign; only OVF packages (.ova, .ovf) are signed")
    try:
        if path.lower().endswith(".ova"):
            return _sign_ova(path, out or path, key, certificates, algorithm, now)
        if out is not None:
            raise ImageError(path, "an .ovf is signed in place: its .mf and .cert go beside it (leave out -o)")
        return _sign_ovf(path, key, certificates, algorithm, now)
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
