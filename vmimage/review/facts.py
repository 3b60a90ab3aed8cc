"""What an image is, in a reviewer's terms: the few facts of its status a preview shows.

One projection of an image status (the wire form VM Operator publishes), used wherever a person
reads what an image becomes or was: the item's and image's preview input ``becomes`` (from the
local descriptor, before any upload), and `vmimage preview-summary` (old → new). Pure.
"""

from __future__ import annotations

from typing import Any

from vmimage.contract.models import REASON_SECURITY_NOT_COMPLIANT
from vmimage.contract.status import NOT_COMPLIANT_MESSAGE
from vmimage.descriptor.signature import SignatureReport, SignatureStatus

FIELDS = ("type", "os", "version", "hardware", "firmware", "disks", "capabilities", "ready")
NOT_COMPLIANT = "not security compliant"  # how a reviewer reads VM Operator's SecurityNotCompliant
# the ``ready`` fact of an image VM Operator publishes NotReady for its item's security compliance:
# ready() of that status, in VM Operator's words (vmimage/review/summary.py says why, from the signature)
NOT_COMPLIANT_READY = f"False: {REASON_SECURITY_NOT_COMPLIANT}: {NOT_COMPLIANT_MESSAGE}"


def _disk(disk: dict[str, Any]) -> str:
    size = disk.get("requested") or disk.get("limit") or "size unknown"
    where = ""
    if disk.get("controllerType"):
        where = f" ({disk['controllerType']} {disk.get('controllerBusNumber', '?')}:{disk.get('unitNumber', '?')})"
    return f"{disk.get('name') or 'disk'} {size}{where}"


def ready(status: dict[str, Any]) -> str:
    """Ready as "True", or "False: reason: message", in the words of VM Operator's condition."""
    condition = next(
        (c for c in status.get("conditions") or () if isinstance(c, dict) and c.get("type") == "Ready"), None
    )
    if condition is None:
        return "unknown"
    if condition.get("status") == "True":
        return "True"
    detail = ": ".join(str(part) for part in (condition.get("reason"), condition.get("message")) if part)
    return f"{condition.get('status', 'False')}: {detail}" if detail else str(condition.get("status", "False"))


def image_facts(status: dict[str, Any]) -> dict[str, Any]:
    """The facts of a status (keys of FIELDS; those it does not have are left out)."""
    os_info = status.get("osInfo") or {}
    product = status.get("productInfo") or {}
    facts: dict[str, Any] = {
        "type": status.get("type"),
        "os": os_info.get("type"),
        "version": product.get("version"),
        "hardware": f"vmx-{status['hardwareVersion']}" if status.get("hardwareVersion") else None,
        "firmware": status.get("firmware"),
        "disks": [_disk(d) for d in status.get("disks") or () if isinstance(d, dict)],
        "capabilities": sorted(status.get("capabilities") or ()),
        "ready": ready(status) if status.get("conditions") else None,
    }
    return {key: value for key, value in facts.items() if value not in (None, "", [])}


def signature_facts(report: SignatureReport) -> dict[str, Any]:
    """What a reviewer (and the policy pack) reads of a package's signature: its status, the
    signer's common name, and whether its chain ends at a certificate of the stack's trust bundle."""
    signer = report.chain[0].subject if report.chain else report.signer
    common_name = None
    for part in (signer or "").split(","):  # RFC 4514, most specific first: CN=…,O=…
        key, _, value = part.partition("=")
        if key.strip().upper() == "CN":
            common_name = value.strip()
            break
    return {"status": str(report.status), "signer": common_name or signer, "trusted": report.trusted_by is not None}


def with_compliance(facts: dict[str, Any], signature: dict[str, Any] | None, policy: bool) -> dict[str, Any]:
    """The facts of an item's image with its signature (``signature_facts``); in a library with a
    security policy (``policy``) an OVF package whose signature does not verify against the trust
    bundle is predicted NotReady, as vCenter and VM Operator will leave it: ``ready`` is that
    status's (NOT_COMPLIANT_READY; the signature says why) and the descriptor's facts go (VM
    Operator stops before the descriptor)."""
    if signature is None:
        return facts
    facts = {**facts, "signature": signature}
    if not policy or signature["status"] == SignatureStatus.VERIFIED:
        return facts
    kept = {key: facts[key] for key in ("type", "capabilities", "signature") if key in facts}
    return {**kept, "ready": NOT_COMPLIANT_READY}


# vCenter's certificate_verification_info.status in a reviewer's words (the local statuses'
# counterparts: vmimage.descriptor.signature.VCENTER_STATUS)
VCENTER_WORDS = {
    "NOT_AVAILABLE": "unsigned",
    "UNTRUSTED": "untrusted",
    "VERIFICATION_FAILURE": "signature not verified",
}


def not_compliant_line(certificate_status: str | None) -> str:
    """ "NotReady: not security compliant (unsigned)", from what vCenter reports of the item."""
    why = VCENTER_WORDS.get(str(certificate_status), str(certificate_status or "not reported").lower())
    return f"NotReady: {NOT_COMPLIANT} ({why})"


def predicted_not_compliant(facts: dict[str, Any]) -> str | None:
    """ "NotReady: not security compliant (unsigned)" for facts ``with_compliance`` predicts NotReady
    (the local signature's status as the why); None otherwise."""
    if facts.get("ready") != NOT_COMPLIANT_READY:
        return None
    signature = facts.get("signature") if isinstance(facts.get("signature"), dict) else {}
    return f"NotReady: {NOT_COMPLIANT} ({signature.get('status') or 'not checked'})"


def with_capabilities(facts: dict[str, Any], declared: list[str]) -> dict[str, Any]:
    """The facts of an item's image as one scope publishes it: the descriptor's capabilities and the
    entry's declared ones, as VM Operator's status lists them (sorted, once)."""
    capabilities = sorted(set(facts.get("capabilities") or ()) | set(declared))
    return {**facts, **({"capabilities": capabilities} if capabilities else {})}


def moves(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One "field: old → new" line for each fact that differs (a fact one side lacks shows as —)."""
    lines = []
    for key in FIELDS:
        old, new = before.get(key), after.get(key)
        if old != new:
            lines.append(f"{key}: {_shown(old)} → {_shown(new)}")
    return lines


def _shown(value: Any) -> str:
    if value is None or value == []:
        return "—"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
