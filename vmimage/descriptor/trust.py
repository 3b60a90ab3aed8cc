"""The stack's trusted certificates: PEM files read into one entry per distinct certificate.

vCenter's trusted-certificates API holds one certificate per entry and knows it by nothing but its
text, so the stack names each by its fingerprint (SHA-256 of the DER certificate): the same
certificate written another way (line wrapping, text around it, in a bundle) is the same entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from vmimage.descriptor.signing import load_trust_bundle
from vmimage.errors import ImageError


@dataclass(frozen=True)
class TrustedCertificate:
    path: str  # the file it was read from (the first, for a certificate in several)
    pem: str  # the certificate alone, PEM as vCenter's API takes it
    sha256: str  # fingerprint of the DER certificate: what identifies it
    subject: str  # RFC 4514

    @classmethod
    def of(cls, certificate: x509.Certificate, path: str) -> TrustedCertificate:
        return cls(
            path=path,
            pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
            sha256=certificate.fingerprint(hashes.SHA256()).hex(),
            subject=certificate.subject.rfc4514_string(),
        )


def trusted_certificates(paths: Sequence[str]) -> list[TrustedCertificate]:
    """Every distinct certificate of the PEM files, in order; an unreadable file is an ImageError
    naming it. A certificate in two files (a bundle and the CA on its own) is one entry."""
    found: dict[str, TrustedCertificate] = {}
    for path in paths:
        for certificate in load_trust_bundle([path]):
            entry = TrustedCertificate.of(certificate, path)
            found.setdefault(entry.sha256, entry)
    return list(found.values())


def pem_fingerprint(text: str) -> str | None:
    """The fingerprint of the first certificate of a PEM text (as vCenter lists one); None when it
    holds none that can be read: such an entry matches no certificate of the stack."""
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        return None
    return certificates[0].fingerprint(hashes.SHA256()).hex() if certificates else None


def require_readable(paths: Sequence[str], key: str) -> list[TrustedCertificate]:
    """trusted_certificates, with an error that names the config key and the file."""
    try:
        return trusted_certificates(paths)
    except ImageError as error:
        raise ImageError(key, f"{error}: list PEM certificate files") from None
