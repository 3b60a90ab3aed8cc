"""The catalog's rules, as the policy pack (policies/) applies them: pure functions over what the
engine shows of a resource, each returning the problems it finds (empty when none)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vmimage.errors import redact

UNVERIFIED_SSL_KEY = "vsphere:allowUnverifiedSsl"


def missing_sha256(item: Mapping[str, Any]) -> list[str]:
    """A library item whose content nothing pins: production images declare `sha256`."""
    if item.get("sha256") or item.get("adopt_id"):
        return []
    source = redact(str(item.get("source") or "?"))
    return [
        f"image {item.get('name')!r} ({source}) declares no sha256: production images pin their content "
        "(add `sha256:` to the image in the stack config; for a bare .ovf, its manifest's SHA-256)"
    ]


def unverified_ssl(config: Mapping[str, Any]) -> list[str]:
    """vsphere:allowUnverifiedSsl set: TLS to vCenter is not verified."""
    value = config.get(UNVERIFIED_SSL_KEY)
    if str(value).lower() != "true":
        return []
    return [
        f"{UNVERIFIED_SSL_KEY} is true: TLS to vCenter is not verified outside a dev stack "
        "(set vsphere:caFile to vCenter's CA instead, and remove allowUnverifiedSsl)"
    ]


def below_floors(
    name: str,
    status: Mapping[str, Any],
    *,
    min_hardware_version: int | None = None,
    require_efi: bool = False,
    allowed_os_types: Sequence[str] = (),
) -> list[str]:
    """An OVF image under the platform's floors: hardware version, firmware, OS type."""
    if status.get("type") != "OVF":
        return []
    problems = []
    hardware = status.get("hardwareVersion")
    min_hardware_version = int(min_hardware_version) if min_hardware_version is not None else None  # JSON: 21.0
    if min_hardware_version is not None and (not isinstance(hardware, int) or hardware < min_hardware_version):
        problems.append(
            f"image {name!r} has hardware version {hardware or 'unknown'}, under the floor vmx-{min_hardware_version} "
            "(upgrade the VM's compatibility before exporting it)"
        )
    firmware = str(status.get("firmware") or "").upper()
    if require_efi and firmware != "EFI":
        problems.append(f"image {name!r} boots with {firmware or 'unknown'} firmware, and EFI is required")
    os_type = (status.get("osInfo") or {}).get("type")
    if allowed_os_types and os_type not in allowed_os_types:
        problems.append(f"image {name!r} has OS type {os_type or 'unknown'}, not one of {', '.join(allowed_os_types)}")
    return problems


def duplicate_display_names(entries: Iterable[tuple[str | None, str, str]]) -> list[str]:
    """The same display name twice in one scope makes resolution ambiguous: name both entries.
    ``entries``: (namespace, or None for cluster scope; display name; where it comes from)."""
    first: dict[tuple[str | None, str], str] = {}
    problems = []
    for namespace, display_name, origin in entries:
        key = (namespace, display_name)
        if key in first:
            scope = "cluster scope" if namespace is None else f"namespace {namespace}"
            problems.append(f"display name {display_name!r} appears twice in {scope}: {first[key]} and {origin}")
        else:
            first[key] = origin
    return problems


TRUSTED_CERTIFICATES_KEY = "vmimage:trustedCertificates"
_WHAT_TO_DO = {
    "unsigned": "is not signed: sign it with `vmimage sign` (a key whose certificate chains to one in {trust})",
    "untrusted": (
        "is signed by {signer}, whose certificate chains to none in {trust}: add the issuing CA's certificate "
        "(PEM) to {trust}, or sign it again with `vmimage sign` and a certificate that chains to one there"
    ),
    "expired": (
        "is signed by {signer} with a certificate chain outside its validity period: sign it again with "
        "`vmimage sign` and a current certificate"
    ),
}
_BROKEN = ("tampered", "wrong-key", "unsupported", "malformed")  # vmimage/descriptor/signature.py's failures


def signature_cause(signature: Any) -> str | None:
    """Why vCenter's OVF security policy would hold an item with this signature (``becomes.signature``:
    status, signer, trusted) not compliant, in one word: ``unsigned``, ``untrusted``, ``tampered``, …
    None for a signature verified against a certificate the stack trusts; ``not checked`` without one."""
    if not isinstance(signature, Mapping) or not isinstance(signature.get("status"), str):
        return "not checked"
    status = signature["status"]
    if status == "verified":
        return None if signature.get("trusted") is True else "untrusted"
    return status


def printable(signer: Any, limit: int = 200) -> str:
    """A signer's name (a certificate's subject, which a package's author writes) on one line, bounded."""
    text = " ".join(str(signer or "").split())
    return (text[:limit] + "…" if len(text) > limit else text) or "an unnamed certificate"


def unsigned_image(name: str, source: Any, facts: Any) -> list[str]:
    """A production image not signed by a certificate the stack trusts: in a library with an OVF
    security policy vCenter holds it not compliant, and VM Operator publishes it NotReady. ``facts``:
    the item's ``becomes`` (vmimage/review/facts.py); one without a signature is never a pass."""
    iso = str(source or "").split("?", 1)[0].lower().endswith(".iso")  # a URL source's, before its upload
    if iso or (isinstance(facts, Mapping) and facts.get("type") == "ISO"):
        return []  # an ISO has no OVF signature, and vCenter's OVF security policy does not judge it
    signature = facts.get("signature") if isinstance(facts, Mapping) else None
    cause = signature_cause(signature)
    if cause is None:
        return []
    image = f"image {name!r} ({redact(str(source or '?'))})"
    signer = printable(signature.get("signer")) if isinstance(signature, Mapping) else ""
    if cause in _WHAT_TO_DO:
        return [f"{image} {_WHAT_TO_DO[cause].format(signer=signer, trust=TRUSTED_CERTIFICATES_KEY)}"]
    if cause in _BROKEN:
        return [
            f"{image} has a signature that does not verify ({cause}): `vmimage lint` says what failed; sign it "
            "again with `vmimage sign` from the files as built"
        ]
    why = (
        "the preview has no signature for it: a URL source vmimage could not read, or a state or preview without it"
        if cause == "not checked"
        else f"its signature's status is {cause!r}"
    )
    return [
        f"{image}: its signature could not be checked ({why}); a production image must be signed by a "
        f"certificate in {TRUSTED_CERTIFICATES_KEY}: publish it from a package vmimage can read, signed with "
        "`vmimage sign`, and preview again"
    ]


def library_without_security_policy(name: str, security_policy: Any) -> list[str]:
    """A production library the stack creates without an OVF security policy: vCenter would hold any
    package in it compliant, signed or not, and VM Operator would publish it Ready."""
    if isinstance(security_policy, str) and security_policy.strip():
        return []
    return [
        f"library {name!r} has no security policy, so vCenter accepts unsigned and untrusted packages in it: set "
        "`securityPolicy:` on it in vmimage:libraries (vCenter's OVF security policy, by name or id)"
    ]
