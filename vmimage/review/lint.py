"""Lint a package before anyone waits for its upload: what vCenter or VM Operator would reject,
ignore or get wrong, found locally by reading the package once.

Every file is hashed on one pass (an OVA member by member, as the upload streams it), so a
50 GB OVA costs the time of one SHA-256 of it. A finding has a stable code, a severity
(``error``: the upload or the image would fail; ``warning``: it works, but not as meant)
and a message that names the file and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from vmimage.contract.status import CAPABILITIES_PROPERTY, SYSTEM_PROPERTY_PREFIX, image_status
from vmimage.descriptor.configspec import allocation_units
from vmimage.descriptor.envelope import Disk as EnvelopeDisk
from vmimage.descriptor.envelope import Envelope
from vmimage.descriptor.guest_os import cim_os_type
from vmimage.descriptor.manifest import (
    ALGORITHMS,
    MAX_MANIFEST_BYTES,
    Digest,
    parse_manifest,
    several_manifests_message,
    stream_digests,
    unlisted_message,
)
from vmimage.descriptor.ova import duplicate_message, iter_members, read_member, tar_errors
from vmimage.descriptor.ovf import MAX_DESCRIPTOR_BYTES, Descriptor, parse_descriptor
from vmimage.descriptor.signature import MAX_CERT_BYTES, SignatureReport, SignatureStatus, verify_signature
from vmimage.descriptor.signing import read_certificate_beside
from vmimage.descriptor.source import (
    cache_root,
    content_type,
    file_sha256,
    manifest_beside,
    open_regular,
    pinned_file,
    read_descriptor_file,
    referenced_file,
    require_regular,
)
from vmimage.errors import ImageError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "error" or "warning"
    message: str


@dataclass
class LintReport:
    path: str
    findings: list[Finding] = field(default_factory=list)
    status: dict[str, Any] | None = None  # the image's status as it would be published
    sha256: str | None = None  # what a declared `sha256` must be (source.pinned_file), None: nothing to pin
    pinned: str | None = None  # the file it is the digest of (the package, or a bare .ovf's manifest)
    signature: SignatureReport | None = None  # None for an ISO

    @property
    def clean(self) -> bool:
        return not self.findings

    def add(self, code: str, severity: str, message: str) -> None:
        self.findings.append(Finding(code, severity, message))

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "findings": [asdict(f) for f in self.findings],
            "status": self.status,
            "sha256": self.sha256,
            "pinned": self.pinned,
            "signature": self.signature.model_dump(mode="json") if self.signature else None,
        }


@dataclass
class _Package:
    """What one pass over a package saw: its files' sizes and digests, descriptor and manifest."""

    sizes: dict[str, int] = field(default_factory=dict)
    digests: dict[str, dict[str, str]] = field(default_factory=dict)
    descriptor: bytes | None = None
    descriptor_name: str | None = None
    manifests: list[tuple[str, bytes]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)  # names an OVA holds more than once
    certificates: list[tuple[str, bytes]] = field(default_factory=list)  # .cert files, to a byte past the cap
    sha256: str | None = None  # of the whole .ova, on the same pass


class _HashingReader:
    """A file whose every byte read also goes into a SHA-256: the OVA's own digest (what a
    declared `sha256` pins) on lint's one pass over it."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._digest.update(data)
        return data

    def hexdigest(self) -> str:
        """The digest of the whole file: what the tar walk left (end blocks, record padding) read too."""
        while self.read(_CHUNK):
            pass
        return self._digest.hexdigest()


def _all_digests(data: bytes) -> dict[str, str]:
    """A small file (a descriptor) read before any manifest: every digest a manifest may ask for."""
    return {a: hashlib.new(a.lower(), data).hexdigest() for a in ALGORITHMS}


def _wanted(package: _Package) -> tuple[str, ...]:
    """The algorithms to hash the next file with: the manifest's once it is known, else all."""
    if not package.manifests:
        return ALGORITHMS
    algorithms = {d.algorithm for d in _manifest_digests(package).values()}
    return tuple(sorted(algorithms)) or ("SHA256",)


def _manifest_digests(package: _Package) -> dict[str, Digest]:
    name, data = package.manifests[0]
    return parse_manifest(data, name)


def _read_ova(path: str) -> _Package:
    package = _Package()
    with open_regular(path) as raw, tar_errors(path):
        stream = _HashingReader(raw)
        for info, reader in iter_members(stream, path):  # type: ignore[arg-type]
            name = posixpath.basename(info.name)
            if name in package.sizes:  # the upload refuses the package: report it, read on
                package.duplicates.append(name)
                continue
            package.sizes[name] = info.size
            lowered = name.lower()
            if lowered.endswith(".mf"):
                data = read_member(reader, info, MAX_MANIFEST_BYTES, "manifest", path)
                package.manifests.append((name, data))
            elif lowered.endswith(".cert"):
                package.certificates.append((name, reader.read(MAX_CERT_BYTES + 1)))
            elif lowered.endswith(".ovf") and package.descriptor is None:
                data = read_member(reader, info, MAX_DESCRIPTOR_BYTES, "descriptor", path)
                package.descriptor, package.descriptor_name = data, name
                package.digests[name] = _all_digests(data)
            else:
                package.digests[name] = stream_digests(reader.read, info.size, _wanted(package), "lint")
        package.sha256 = stream.hexdigest()
    return package


def _read_ovf(path: str, report: LintReport) -> _Package:
    package = _Package()
    data = read_descriptor_file(path)
    name = os.path.basename(path)
    package.descriptor, package.descriptor_name = data, name
    package.sizes[name] = len(data)
    package.digests[name] = _all_digests(data)
    beside = manifest_beside(path)
    if beside is not None:
        with open_regular(beside, follow=False) as stream:
            package.manifests.append((os.path.basename(beside), stream.read(MAX_MANIFEST_BYTES + 1)))
    package.certificates = read_certificate_beside(path)
    for reference in parse_descriptor(data, path).files:
        try:
            file_path = referenced_file(path, reference.href)
        except ImageError as error:
            report.add("missing-file", "error", str(error))
            continue
        size = require_regular(file_path, follow=False).st_size
        package.sizes[reference.href] = size
        with open_regular(file_path, follow=False) as stream:
            package.digests[reference.href] = stream_digests(stream.read, size, _wanted(package), "lint")
    return package


def _check_manifest(package: _Package, report: LintReport) -> None:
    if not package.manifests:
        report.add(
            "no-manifest",
            "warning",
            "the package has no manifest (.mf): nothing pins its disks, and a declared sha256 cannot cover "
            "a bare .ovf (make one with ovftool, or `sha256sum` in `SHA256(file)= digest` lines)",
        )
        return
    if len(package.manifests) > 1:
        report.add("two-manifests", "error", several_manifests_message([n for n, _ in package.manifests]))
    name, _ = package.manifests[0]
    digests = _manifest_digests(package)
    if any(d.algorithm == "SHA1" for d in digests.values()):
        report.add(
            "sha1",
            "warning",
            f"{name} uses SHA1, which vCenter 8 accepts but flags as weak: "
            "repack with SHA256 (ovftool --shaAlgorithm=SHA256)",
        )
    for file_name in sorted(package.sizes):
        if file_name.lower().endswith((".mf", ".cert")):
            continue
        expected = digests.get(file_name)
        if expected is None:
            report.add("unlisted-file", "error", unlisted_message(file_name))
        elif expected.algorithm not in package.digests.get(file_name, {}):
            report.add("digest-unchecked", "warning", f"{file_name!r} was read before {name} named its algorithm")
        elif package.digests[file_name][expected.algorithm] != expected.hexdigest:
            report.add(
                "digest-mismatch",
                "error",
                f"{expected.algorithm} of {file_name!r} is {package.digests[file_name][expected.algorithm]}, "
                f"but {name} says {expected.hexdigest}: the file is corrupt or was changed after packing",
            )
    for listed in sorted(set(digests) - set(package.sizes)):
        report.add("missing-file", "error", f"{name} lists {listed!r}, which the package lacks")


def _check_descriptor(descriptor: Descriptor, package: _Package, report: LintReport) -> None:
    for reference in descriptor.files:
        actual = package.sizes.get(reference.href)
        if actual is None:
            if not any(f.code == "missing-file" and reference.href in f.message for f in report.findings):
                report.add(
                    "missing-file", "error", f"the descriptor references {reference.href!r}, which the package lacks"
                )
        elif reference.size is not None and reference.size != actual:
            report.add(
                "size-mismatch",
                "error",
                f"the descriptor gives {reference.href!r} ovf:size={reference.size}, but the file has {actual} bytes",
            )
    envelope = descriptor.envelope
    if envelope is not None:
        _check_disks_and_properties(envelope, report)
    if descriptor.config is None:
        report.add(
            "not-synced",
            "error",
            f"VM Operator would not sync this package (its image would stay Ready=False, "
            f"VirtualMachineImageNotSynced): {descriptor.config_error}",
        )
    elif not descriptor.config.guest_id:
        report.add(
            "unknown-os",
            "warning",
            "the descriptor names no guest id (OperatingSystemSection vmw:osType, or an ovf:id vSphere maps to one): "
            "the image's osInfo.type and its os.image.vmoperator.vmware.com/type label stay empty",
        )
    elif cim_os_type(descriptor.config.guest_id) == 0:
        report.add(
            "unknown-os",
            "warning",
            f"guest id {descriptor.config.guest_id!r} has no CIM OS type VM Operator knows: osInfo.id will be 0",
        )


def _capacity_known(disk: EnvelopeDisk, defaults: dict[str, str]) -> bool:
    """Whether govmomi can compute the disk's capacity: known units, and a number (or a property
    reference whose default is one)."""
    if allocation_units(disk.capacity_allocation_units or "") == 0:
        return False
    capacity = disk.capacity.strip()
    if capacity.startswith("${") and capacity.endswith("}"):
        capacity = defaults.get(capacity[2:-1].strip(), "")
    return capacity.isascii() and capacity.isdigit()


def _check_disks_and_properties(envelope: Envelope, report: LintReport) -> None:
    products = envelope.system.products if envelope.system else ()
    properties = [prop for product in products for prop in product.properties]
    defaults = {prop.key: (prop.default or "").strip() for prop in properties}
    for index, disk in enumerate(envelope.disks):
        if not _capacity_known(disk, defaults):
            report.add(
                "capacity-unknown",
                "warning",
                f"disk {index + 1}: its capacity cannot be computed (ovf:capacity and capacityAllocationUnits); "
                "VM Operator counts it as 0 bytes",
            )
    for prop in {prop.key: prop for prop in properties}.values():  # a key declared twice, once
        if (
            not prop.user_configurable
            and not prop.key.startswith(SYSTEM_PROPERTY_PREFIX)
            and prop.key != CAPABILITIES_PROPERTY  # read by VM Operator itself, not passed to the VM
        ):
            report.add(
                "hidden-property",
                "warning",
                f"property {prop.key!r} is not user-configurable: VM Operator does not pass it to the VM "
                '(set ovf:userConfigurable="true" if VMs should set it)',
            )


_BROKEN = (
    SignatureStatus.TAMPERED,
    SignatureStatus.WRONG_KEY,
    SignatureStatus.MALFORMED,
    SignatureStatus.UNSUPPORTED,
)


def signature_severity(status: SignatureStatus, trust_given: bool, require_signed: bool) -> str | None:
    """The finding a signature status is (None: none, the signature line says it).

    A signature that is there but broken is an error: the package changed after signing, or its
    .cert is wrong. Short of that, ``require_signed`` makes anything but verified an error;
    otherwise an expired chain is a warning, an untrusted one a warning once a trust bundle was
    given (without one nothing could be trusted: the line says so), and unsigned is no finding."""
    if status == SignatureStatus.VERIFIED:
        return None
    if status in _BROKEN or require_signed:
        return "error"
    if status == SignatureStatus.EXPIRED or (status == SignatureStatus.UNTRUSTED and trust_given):
        return "warning"
    return None


def _check_signature(
    package: _Package,
    report: LintReport,
    trust: Sequence[x509.Certificate] | None,
    require_signed: bool,
    now: datetime,
) -> None:
    members = {n: package.digests.get(n) for n in package.sizes if not n.lower().endswith((".mf", ".cert"))}
    report.signature = verify_signature(
        manifest=package.manifests[0] if package.manifests else None,
        certificates=package.certificates,
        members=members,
        trust=trust or (),
        now=now,
    )
    severity = signature_severity(report.signature.status, trust is not None, require_signed)
    if severity is not None:
        report.add(f"signature-{report.signature.status}", severity, report.signature.message)


def cached_lint_errors(path: str, digest: str, cache_dir: Path | None = None) -> list[Finding]:
    """The error findings of lint_package, remembered per content digest: a provider's check asks
    on every preview, and only a package it has not seen costs a read."""
    entry = (cache_dir or cache_root() / "lint") / f"{digest}.v2.json"  # v2: with the signature's errors
    try:
        return [Finding(**finding) for finding in json.loads(entry.read_text())]
    except (OSError, ValueError, TypeError):
        pass
    errors = [finding for finding in lint_package(path).findings if finding.severity == "error"]
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps([asdict(finding) for finding in errors]))
        temporary.replace(entry)
    except OSError:
        pass  # a cache that cannot be written only costs a second read
    return errors


def lint_package(
    path: str,
    name: str | None = None,
    trust: Sequence[x509.Certificate] | None = None,
    require_signed: bool = False,
    now: datetime | None = None,
) -> LintReport:
    """Lint one .ova, .ovf or .iso. Raises ImageError when the file cannot be read at all.

    ``trust``: the certificates a signature must chain to (None: trust is not checked);
    ``require_signed``: a package whose signature does not verify against them is an error."""
    report = LintReport(path)
    display = name or os.path.splitext(os.path.basename(path))[0]
    now = now or datetime.now(UTC).replace(microsecond=0)
    try:
        kind = content_type(path)
        if kind == "ISO":
            from vmimage.descriptor.source import read_image_file

            read_image_file(path)
            report.status = image_status(None, name=display, now=now).wire()
            report.sha256, report.pinned = file_sha256(path), path
            return report
        package = _read_ova(path) if path.lower().endswith(".ova") else _read_ovf(path, report)
    except OSError as exc:
        raise ImageError(exc.filename or path, exc.strerror or str(exc)) from None
    except EOFError as exc:
        raise ImageError(path, f"truncated package: {exc}") from None
    if package.descriptor is None:
        raise ImageError(path, "the package has no .ovf descriptor")
    descriptor = parse_descriptor(package.descriptor, f"{path}:{package.descriptor_name}")
    for duplicate in package.duplicates:
        report.add("duplicate-file", "error", duplicate_message(duplicate))
    _check_manifest(package, report)
    _check_signature(package, report, trust, require_signed, now)
    _check_descriptor(descriptor, package, report)
    report.status = image_status(descriptor, name=display, now=now).wire()
    if package.sha256 is not None:
        report.sha256, report.pinned = package.sha256, path
    elif package.manifests:  # a bare .ovf is pinned through the manifest beside it, read whole above
        report.sha256, report.pinned = hashlib.sha256(package.manifests[0][1]).hexdigest(), pinned_file(path)
    return report
