"""OVF package signatures (DSP0243's certificate file, ``.cert``): read, verify and make them.

A signed package holds, beside its manifest ``name.mf``, a certificate file ``name.cert``: one line
``SHA256(name.mf)= <hex signature>`` (the manifest's bytes signed with the key of an X.509
certificate, as ``openssl dgst -sha256 -sign KEY name.mf`` does) followed by that certificate and
any intermediates, PEM. The manifest holds every other file's digest, so the signature covers the
disks. vCenter accepts SHA1, SHA256 and SHA512 signatures; keys are RSA (PKCS #1 v1.5, what
ovftool writes) or ECDSA.

Everything here is pure: bytes in, a `SignatureReport` out. Callers read the package (lint hashes
every member on its one pass; inspect only its descriptor) and give the trust bundle: the
certificates vCenter trusts (``--trust``, later the stack's trusted certificates).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from pydantic import BaseModel, ConfigDict

from vmimage.descriptor.manifest import Digest, parse_manifest
from vmimage.errors import ImageError

MAX_CERT_BYTES = 256 * 2**10  # a leaf and a few intermediates are a few KB
MAX_CERTIFICATES = 16  # in one .cert file
MAX_CHAIN_DEPTH = 8  # certificates from the signer to a trusted root
MAX_BUNDLE_BYTES = 4 * 2**20  # a trust bundle file (a system CA bundle is ~250 KB)
MAX_BUNDLE_CERTIFICATES = 1000

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256, "SHA512": hashes.SHA512}
ALGORITHMS = tuple(_HASHES)
_LINE = re.compile(r"^([A-Za-z0-9-]+)\s*\((.+)\)\s*=\s*(\S*)$")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
_BEGIN_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


class SignatureStatus(StrEnum):
    VERIFIED = "verified"  # signature, manifest, chain to a trusted root, validity and key usage all hold
    UNSIGNED = "unsigned"  # no certificate file
    TAMPERED = "tampered"  # the manifest or a file changed after signing (or, ECDSA, another key signed it)
    WRONG_KEY = "wrong-key"  # the signature was made with a key other than the certificate's (RSA tells)
    EXPIRED = "expired"  # a certificate of the chain is outside its validity period at the time checked
    UNTRUSTED = "untrusted"  # the chain reaches no certificate of the trust bundle, or may not sign
    UNSUPPORTED = "unsupported"  # a digest or key algorithm vCenter does not verify
    MALFORMED = "malformed"  # the certificate file cannot be read


# What vCenter's item reports (certificate_verification_info.status) for a package in each state,
# once it is in a library with the OVF security policy: NOT_AVAILABLE for an unsigned item (the
# recorded fixture), UNTRUSTED for an untrusted chain, VERIFICATION_FAILURE for what does not verify.
VCENTER_STATUS = {
    SignatureStatus.VERIFIED: "VERIFIED",
    SignatureStatus.UNSIGNED: "NOT_AVAILABLE",
    SignatureStatus.UNTRUSTED: "UNTRUSTED",
    SignatureStatus.EXPIRED: "VERIFICATION_FAILURE",
    SignatureStatus.TAMPERED: "VERIFICATION_FAILURE",
    SignatureStatus.WRONG_KEY: "VERIFICATION_FAILURE",
    SignatureStatus.UNSUPPORTED: "VERIFICATION_FAILURE",
    SignatureStatus.MALFORMED: "VERIFICATION_FAILURE",
}


class CertificateSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str  # RFC 4514
    issuer: str
    not_before: datetime
    not_after: datetime
    sha256: str  # fingerprint of the DER certificate

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateSummary:
        return cls(
            subject=certificate.subject.rfc4514_string(),
            issuer=certificate.issuer.rfc4514_string(),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        )


class SignatureReport(BaseModel):
    """What a package's signature says, checked; ``message`` names what failed and what to do."""

    model_config = ConfigDict(frozen=True)

    status: SignatureStatus
    message: str
    certificate_file: str | None = None
    manifest_file: str | None = None
    algorithm: str | None = None  # SHA1, SHA256 or SHA512
    key: str | None = None  # "RSA 2048", "ECDSA secp256r1"
    signer: str | None = None  # the signing certificate's subject
    chain: list[CertificateSummary] = []  # the signer first, then its issuers, as far as they were found
    not_after: datetime | None = None  # the chain's earliest expiry: when the signature stops verifying
    trusted_by: str | None = None  # the trust bundle's certificate the chain ends at
    unchecked: list[str] = []  # files whose digests the caller did not compute (inspect reads no disks)

    @property
    def vcenter_status(self) -> str:
        """The certificate_verification_info.status vCenter is expected to report for the item."""
        return VCENTER_STATUS[self.status]

    def details(self) -> list[str]:
        """Who signed, the issuers above, and until when: the parts of a summary past its status."""
        parts = []
        if self.signer:
            parts.append(f"signed by {self.signer}")
        if len(self.chain) > 1:
            parts.append("issued by " + " <- ".join(c.subject for c in self.chain[1:]))
        if self.not_after is not None:
            parts.append(f"valid until {self.not_after.isoformat()}")
        return parts

    def summary(self) -> str:
        """One line for a terminal."""
        if self.status == SignatureStatus.UNSIGNED:
            return self.message
        parts = [str(self.status), *self.details()]
        if self.status == SignatureStatus.VERIFIED:
            parts.append(f"trusted by {self.trusted_by}")
            if self.unchecked:
                parts.append(f"digests of {', '.join(self.unchecked)} not checked (vmimage lint checks them)")
            return "; ".join(parts)
        return "; ".join(parts) + f": {self.message}"


class _Failure(Exception):
    """One check failed: its status and message, ending the verification."""

    def __init__(self, status: SignatureStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CertificateFile(BaseModel):
    """A parsed ``.cert``: the signature line and the certificates (the signer first)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    algorithm: str
    manifest_name: str
    signature: bytes
    certificates: list[x509.Certificate]


def parse_certificate_file(data: bytes, name: str) -> CertificateFile:
    """The signature line and certificates of a ``.cert``; raises _Failure (malformed or
    unsupported) naming ``name`` and what to do."""
    hint = "the file must be one 'SHA256(name.mf)= <hex signature>' line and PEM certificates (re-sign the package)"
    if len(data) > MAX_CERT_BYTES:
        raise _Failure(SignatureStatus.MALFORMED, f"{name} is {len(data)} bytes, over the {MAX_CERT_BYTES} byte limit")
    count = data.count(_BEGIN_CERTIFICATE)
    if count > MAX_CERTIFICATES:
        raise _Failure(
            SignatureStatus.MALFORMED, f"{name} holds {count} certificates, over the limit of {MAX_CERTIFICATES}"
        )
    blocks = [match.group(1).decode() for match in _PEM_BLOCK.finditer(data)]
    if any("PRIVATE KEY" in kind for kind in blocks):
        raise _Failure(
            SignatureStatus.MALFORMED,
            f"{name} holds a private key: remove it, and replace the key, which the package has published",
        )
    try:
        text = _PEM_BLOCK.sub(b"", data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _Failure(SignatureStatus.MALFORMED, f"{name} is not text: {hint}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        found = "no" if not lines else f"{len(lines)} lines of"
        raise _Failure(SignatureStatus.MALFORMED, f"{name} has {found} text outside its certificates: {hint}")
    match = _LINE.match(lines[0])
    if not match:
        raise _Failure(SignatureStatus.MALFORMED, f"{name}'s signature line is not of the form: {hint}")
    algorithm, manifest_name, hexsignature = match.group(1).upper(), match.group(2).strip(), match.group(3)
    if algorithm not in _HASHES:
        raise _Failure(
            SignatureStatus.UNSUPPORTED,
            f"{name} is signed with {algorithm}, which vCenter does not verify: sign with SHA256 (or SHA512, SHA1)",
        )
    if not hexsignature or len(hexsignature) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", hexsignature):
        raise _Failure(SignatureStatus.MALFORMED, f"{name}'s signature is not hexadecimal bytes: {hint}")
    if count == 0:
        raise _Failure(SignatureStatus.MALFORMED, f"{name} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise _Failure(SignatureStatus.MALFORMED, f"{name} holds a certificate that cannot be read ({error})") from None
    return CertificateFile(
        algorithm=algorithm,
        manifest_name=manifest_name,
        signature=bytes.fromhex(hexsignature),
        certificates=certificates,
    )


def _describe_key(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    return type(key).__name__.removeprefix("_")


def _check_signature(parsed: CertificateFile, manifest: bytes, cert_name: str, manifest_name: str) -> None:
    """The signature over the manifest's bytes, with the signer's key; raises _Failure."""
    signer = parsed.certificates[0]
    key = signer.public_key()
    algorithm = _HASHES[parsed.algorithm]()
    subject = signer.subject.rfc4514_string()
    if isinstance(key, rsa.RSAPublicKey):
        if len(parsed.signature) != (key.key_size + 7) // 8:
            raise _Failure(
                SignatureStatus.WRONG_KEY,
                f"{cert_name}'s signature has {len(parsed.signature)} bytes, but {subject}'s {key.key_size}-bit key "
                "makes signatures of another length: another key signed the manifest",
            )
        try:
            key.verify(parsed.signature, manifest, padding.PKCS1v15(), algorithm)
            return
        except InvalidSignature:
            pass
        try:  # the key opens the signature: it signed another manifest; else another key signed this one
            key.recover_data_from_signature(parsed.signature, padding.PKCS1v15(), None)
        except (InvalidSignature, ValueError):
            raise _Failure(
                SignatureStatus.WRONG_KEY,
                f"{cert_name}'s signature was not made with the key of {subject}: sign {manifest_name} with the "
                "key of the certificate the .cert holds (its first certificate is the signer's)",
            ) from None
        raise _Failure(
            SignatureStatus.TAMPERED,
            f"{manifest_name} changed after it was signed: the signature in {cert_name} is over other bytes "
            "(re-sign the package, or restore its manifest)",
        )
    if isinstance(key, ec.EllipticCurvePublicKey):
        try:
            decode_dss_signature(parsed.signature)
        except ValueError:
            raise _Failure(
                SignatureStatus.MALFORMED, f"{cert_name}'s signature is not an ECDSA (DER) signature"
            ) from None
        try:
            key.verify(parsed.signature, manifest, ec.ECDSA(algorithm))
            return
        except InvalidSignature:
            raise _Failure(
                SignatureStatus.TAMPERED,
                f"the signature in {cert_name} does not verify {manifest_name} with the key of {subject}: the "
                "manifest changed after it was signed, or another key signed it (an ECDSA signature cannot tell "
                "which); re-sign the package",
            ) from None
    raise _Failure(
        SignatureStatus.UNSUPPORTED,
        f"{subject} has a {_describe_key(key)} key; vCenter verifies RSA and ECDSA signatures: sign with one",
    )


def _check_coverage(
    digests: Mapping[str, Digest], members: Mapping[str, Mapping[str, str] | None], manifest_name: str
) -> list[str]:
    """Every file of the package is in the signed manifest with its digest; the names not hashed."""
    unchecked = []
    for name in sorted(members):
        expected = digests.get(name)
        if expected is None:
            raise _Failure(
                SignatureStatus.TAMPERED,
                f"{manifest_name} does not list {name!r}, so the signature does not cover it: the file was added "
                "after signing (remove it, or re-sign the package)",
            )
        actual = members[name]
        if actual is None or expected.algorithm not in actual:
            unchecked.append(name)
        elif actual[expected.algorithm] != expected.hexdigest:
            raise _Failure(
                SignatureStatus.TAMPERED,
                f"{name!r} changed after signing: its {expected.algorithm} is {actual[expected.algorithm]}, "
                f"but the signed {manifest_name} says {expected.hexdigest}",
            )
    for name in sorted(set(digests) - set(members)):
        raise _Failure(
            SignatureStatus.TAMPERED,
            f"the signed {manifest_name} lists {name!r}, which the package lacks: a file was removed after signing",
        )
    return unchecked


def _issued(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


def _may_issue(issuer: x509.Certificate, below: int) -> str | None:
    """Why ``issuer`` may not have issued a chain with ``below`` CA certificates under it, if it may not."""
    subject = issuer.subject.rfc4514_string()
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return f"{subject} issued a certificate of the chain but is not a CA (no basicConstraints CA:TRUE)"
    if not constraints.ca:
        return f"{subject} issued a certificate of the chain but is not a CA (basicConstraints CA:FALSE)"
    if constraints.path_length is not None and below > constraints.path_length:
        return f"{subject} allows {constraints.path_length} CA certificates below it, the chain has {below}"
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not usage.key_cert_sign:
        return f"{subject}'s key usage does not include keyCertSign: it may not issue certificates"
    return None


def _build_chain(
    signer: x509.Certificate, intermediates: Sequence[x509.Certificate], trust: Sequence[x509.Certificate]
) -> tuple[list[x509.Certificate], x509.Certificate | None, str | None]:
    """The chain from the signer up through the intermediates to a trust-bundle certificate: the
    chain, the anchor it ends at (None: none), and why it may not be used (None: it may)."""
    chain = [signer]
    current = signer
    for _ in range(MAX_CHAIN_DEPTH):
        if current in trust:
            return chain, current, None
        anchor = next((c for c in trust if c.subject == current.issuer and _issued(current, c)), None)
        if anchor is not None:
            chain.append(anchor)
            return chain, anchor, _may_issue(anchor, len(chain) - 2)
        issuer = next(
            (c for c in intermediates if c not in chain and c.subject == current.issuer and _issued(current, c)),
            None,
        )
        if issuer is None:
            return chain, None, None
        problem = _may_issue(issuer, len(chain) - 1)
        chain.append(issuer)
        if problem:
            return chain, None, problem
        current = issuer
    return chain, None, f"the chain is longer than {MAX_CHAIN_DEPTH} certificates"


def _signer_problem(signer: x509.Certificate) -> str | None:
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not usage.digital_signature:
        subject = signer.subject.rfc4514_string()
        return f"{subject}'s key usage does not include digitalSignature: it may not sign packages"
    return None


def verify_signature(
    *,
    manifest: tuple[str, bytes] | None,
    certificates: Sequence[tuple[str, bytes]],
    members: Mapping[str, Mapping[str, str] | None],
    trust: Sequence[x509.Certificate],
    now: datetime,
) -> SignatureReport:
    """Check a package's signature; never raises for what the package holds.

    ``manifest`` is the package's (name, bytes); ``certificates`` its ``.cert`` files (name, bytes),
    none when unsigned; ``members`` every other file by the name the manifest lists, with its
    digests by algorithm (None: not computed, listed as unchecked in the report); ``trust`` the
    certificates vCenter trusts (empty: nothing is trusted); ``now`` the time of the check.
    Checks, in order: the file's form, the signature over the manifest's bytes, that the manifest
    lists every file with matching digests, then the chain (each certificate within its
    validity period, issuers CAs, the signer's key usage, ending at a trusted certificate).
    """
    if not certificates:
        return SignatureReport(
            status=SignatureStatus.UNSIGNED,
            message="unsigned (no .cert): sign it with `vmimage sign` if a library must verify it",
            manifest_file=manifest[0] if manifest else None,
        )
    cert_name, cert_data = certificates[0]
    fields: dict = {"certificate_file": cert_name, "manifest_file": manifest[0] if manifest else None}
    try:
        if len(certificates) > 1:
            names = ", ".join(repr(name) for name, _ in certificates)
            raise _Failure(
                SignatureStatus.MALFORMED,
                f"the package holds {len(certificates)} certificate files "
                f"({names}); keep the one that signs its manifest",
            )
        parsed = parse_certificate_file(cert_data, cert_name)
        signer = parsed.certificates[0]
        fields.update(
            algorithm=parsed.algorithm,
            key=_describe_key(signer.public_key()),
            signer=signer.subject.rfc4514_string(),
            chain=[CertificateSummary.of(signer)],
            not_after=signer.not_valid_after_utc,
        )
        if manifest is None:
            raise _Failure(
                SignatureStatus.MALFORMED,
                f"{cert_name} signs {parsed.manifest_name}, but the package has no manifest: sign it again",
            )
        manifest_name, manifest_data = manifest
        if parsed.manifest_name != manifest_name:
            raise _Failure(
                SignatureStatus.MALFORMED,
                f"{cert_name} signs {parsed.manifest_name!r}, but the package's manifest is {manifest_name!r}",
            )
        _check_signature(parsed, manifest_data, cert_name, manifest_name)
        try:
            digests = parse_manifest(manifest_data, manifest_name)
        except ImageError as error:
            raise _Failure(SignatureStatus.MALFORMED, str(error)) from None
        fields["unchecked"] = _check_coverage(digests, members, manifest_name)
        chain, anchor, problem = _build_chain(signer, parsed.certificates[1:], trust)
        fields.update(
            chain=[CertificateSummary.of(c) for c in chain],
            not_after=min(c.not_valid_after_utc for c in chain),
            trusted_by=anchor.subject.rfc4514_string() if anchor is not None and problem is None else None,
        )
        for certificate in chain:
            subject = certificate.subject.rfc4514_string()
            if now > certificate.not_valid_after_utc:
                raise _Failure(
                    SignatureStatus.EXPIRED,
                    f"{subject} expired on {certificate.not_valid_after_utc.isoformat()}: re-sign with a valid "
                    "certificate",
                )
            if now < certificate.not_valid_before_utc:
                raise _Failure(
                    SignatureStatus.EXPIRED,
                    f"{subject} is not valid until {certificate.not_valid_before_utc.isoformat()} (is this "
                    "machine's clock right?)",
                )
        if problem:
            raise _Failure(SignatureStatus.UNTRUSTED, problem)
        if anchor is None:
            top = chain[-1]
            if not trust:
                reason = "no trust bundle was given to check it against (--trust)"
            elif top.subject == top.issuer:
                reason = f"its root {top.subject.rfc4514_string()} is not in the trust bundle"
            else:
                reason = (
                    f"the issuer of {top.subject.rfc4514_string()}, {top.issuer.rfc4514_string()}, is neither in "
                    f"{cert_name} nor in the trust bundle"
                )
            raise _Failure(SignatureStatus.UNTRUSTED, f"the chain is not trusted: {reason}")
        problem = _signer_problem(signer)
        if problem:
            raise _Failure(SignatureStatus.UNTRUSTED, problem)
    except _Failure as failure:
        return SignatureReport(status=failure.status, message=failure.message, **fields)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:  # what the library refuses of hostile input
        message = f"{cert_name} could not be checked ({type(error).__name__}: {error}): re-sign the package"
        return SignatureReport(status=SignatureStatus.MALFORMED, message=message, **fields)
    return SignatureReport(status=SignatureStatus.VERIFIED, message="verified", **fields)


# --- making signatures ------------------------------------------------------------------------


def load_private_key(
    data: bytes, source: str, password: bytes | None = None
) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """An RSA or ECDSA private key from PEM; anything else an ImageError naming ``source``."""
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        what = "is encrypted: give its passphrase" if password is None else "is not encrypted: give no passphrase"
        raise ImageError(source, f"the key {what}") from None
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ImageError(source, f"not a PEM private key, or a wrong passphrase ({error})") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ImageError(source, f"a {_describe_key(key.public_key())} key; vCenter verifies RSA and ECDSA signatures")
    return key


def load_certificates(data: bytes, source: str, limit: int = MAX_CERTIFICATES) -> list[x509.Certificate]:
    """PEM certificates (at least one, at most ``limit``); anything else an ImageError naming ``source``."""
    count = data.count(_BEGIN_CERTIFICATE)
    if count == 0:
        raise ImageError(source, "holds no PEM certificate (-----BEGIN CERTIFICATE-----): give PEM files")
    if count > limit:
        raise ImageError(source, f"holds {count} certificates, over the limit of {limit}")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise ImageError(source, f"holds a certificate that cannot be read ({error}): give PEM files") from None


def key_mismatch(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> str | None:
    """Why ``key`` cannot sign for ``certificate`` (its public key is another), if it cannot."""
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    mine = key.public_key().public_bytes(serialization.Encoding.PEM, public)
    if certificate.public_key().public_bytes(serialization.Encoding.PEM, public) != mine:
        subject = certificate.subject.rfc4514_string()
        return f"the key is not the one of the certificate ({subject}): give the certificate of the key"
    return None


def certificate_file(
    manifest: bytes,
    manifest_name: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    certificates: Sequence[x509.Certificate],
    algorithm: str = "SHA256",
) -> bytes:
    """The ``.cert`` for ``manifest``: its signature line, the signer's certificate, then the chain.
    The key must be the first certificate's."""
    if algorithm not in _HASHES:
        raise ImageError("--algorithm", f"{algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    problem = key_mismatch(key, certificates[0])
    if problem:
        raise ImageError(certificates[0].subject.rfc4514_string(), problem)
    digest = _HASHES[algorithm]()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(manifest, padding.PKCS1v15(), digest)
    else:
        signature = key.sign(manifest, ec.ECDSA(digest))
    pems = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
    return f"{algorithm}({manifest_name})= {signature.hex()}\n".encode() + pems
