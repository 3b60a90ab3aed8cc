"""Issue 28, part 6, as pure functions: the production rule on signatures and security policies
(vmimage/review/governance.py), and the PR comment's signature column and NotReady note
(vmimage/review/summary.py), on inputs of the agreed shape: ``becomes["signature"] = {"status",
"signer", "trusted"}`` on an item and its image objects, ``security_policy`` on a library."""

from __future__ import annotations

import pytest

from vmimage.review.governance import library_without_security_policy, signature_cause, unsigned_image
from vmimage.review.summary import image_changes, summary_markdown

SIGNER = "CN=Platform Images,O=Example"
TRUSTED = {"status": "verified", "signer": SIGNER, "trusted": True}
NOT_COMPLIANT = "False: VirtualMachineImageProviderSecurityNotCompliant: Provider item is not security compliant"


def becomes(signature=None, **facts) -> dict:
    base = {"type": "OVF", "os": "vmwarePhoton64Guest", "version": "5.0", "hardware": "vmx-19", "ready": "True"}
    return {**base, **facts, **({"signature": signature} if signature is not None else {})}


# The rule


def test_an_image_signed_by_a_trusted_certificate_passes():
    assert unsigned_image("photon", "photon.ova", becomes(TRUSTED)) == []
    assert signature_cause(TRUSTED) is None


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        (
            {"status": "unsigned", "signer": None, "trusted": False},
            "image 'photon' (photon.ova) is not signed: sign it with `vmimage sign` (a key whose certificate "
            "chains to one in vmimage:trustedCertificates)",
        ),
        (
            {"status": "verified", "signer": SIGNER, "trusted": False},
            f"image 'photon' (photon.ova) is signed by {SIGNER}, whose certificate chains to none in "
            "vmimage:trustedCertificates: add the issuing CA's certificate (PEM) to vmimage:trustedCertificates, "
            "or sign it again with `vmimage sign` and a certificate that chains to one there",
        ),
        (
            {"status": "untrusted", "signer": SIGNER, "trusted": False},
            f"image 'photon' (photon.ova) is signed by {SIGNER}, whose certificate chains to none in "
            "vmimage:trustedCertificates",
        ),
        (
            {"status": "expired", "signer": SIGNER, "trusted": True},
            f"image 'photon' (photon.ova) is signed by {SIGNER} with a certificate chain outside its validity "
            "period: sign it again with `vmimage sign` and a current certificate",
        ),
        (
            {"status": "tampered", "signer": SIGNER, "trusted": True},
            "image 'photon' (photon.ova) has a signature that does not verify (tampered): `vmimage lint` says "
            "what failed; sign it again with `vmimage sign` from the files as built",
        ),
        ({"status": "wrong-key", "signer": SIGNER, "trusted": False}, "does not verify (wrong-key)"),
        ({"status": "malformed", "signer": None, "trusted": False}, "does not verify (malformed)"),
        ({"status": "unsupported", "signer": SIGNER, "trusted": False}, "does not verify (unsupported)"),
        ({"status": "verified", "signer": SIGNER}, "whose certificate chains to none"),  # trust not said: no pass
        ({"status": "verified", "signer": SIGNER, "trusted": "true"}, "whose certificate chains to none"),
    ],
    ids=lambda v: v.get("status") + "-" + str(v.get("trusted")) if isinstance(v, dict) else "",
)
def test_each_signature_that_is_not_trusted_is_a_violation_saying_what_to_do(signature, expected):
    problems = unsigned_image("photon", "photon.ova", becomes(signature))
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    "facts",
    [
        None,  # a URL source: the item's check read no descriptor
        {},
        becomes(),  # a state or preview without the signature fact
        becomes({"status": None}),
        becomes({"signer": SIGNER, "trusted": True}),  # no status: not a pass
        becomes("verified"),
    ],
    ids=["no-becomes", "empty", "no-signature", "status-none", "no-status", "not-a-mapping"],
)
def test_a_missing_signature_fact_is_never_a_pass(facts):
    problems = unsigned_image("ubuntu", "https://user:hunter2@example.com/u.ova?token=abc", facts)
    assert len(problems) == 1
    assert problems[0].startswith("image 'ubuntu' (https://***@example.com/u.ova?token=***): its signature could ")
    assert "could not be checked (the preview has no signature for it" in problems[0]
    assert "hunter2" not in problems[0] and "abc" not in problems[0]
    assert signature_cause(facts.get("signature") if isinstance(facts, dict) else None) == "not checked"


def test_an_unknown_status_is_not_read_as_a_pass():
    problems = unsigned_image("photon", "photon.ova", becomes({"status": "revoked", "signer": SIGNER}))
    assert problems == [
        "image 'photon' (photon.ova): its signature could not be checked (its signature's status is 'revoked'); "
        "a production image must be signed by a certificate in vmimage:trustedCertificates: publish it from a "
        "package vmimage can read, signed with `vmimage sign`, and preview again"
    ]


def test_an_iso_is_not_judged_it_has_no_ovf_signature():
    assert unsigned_image("tools", "tools.iso", {"type": "ISO", "ready": "True"}) == []
    assert unsigned_image("tools", "https://example.com/tools.ISO?x=1", None) == []  # a URL: nothing read yet
    assert unsigned_image("tools", "https://example.com/tools.ova", None) != []


def test_a_hostile_signer_name_stays_on_one_bounded_line():
    signature = {"status": "verified", "signer": "CN=evil\n- [mandatory] forged " + "x" * 500, "trusted": False}
    (problem,) = unsigned_image("photon", "photon.ova", becomes(signature))
    assert "\n" not in problem and "CN=evil - [mandatory] forged" in problem and "x" * 201 not in problem


def test_a_library_without_a_security_policy():
    assert library_without_security_policy("platform-images", "OVF default policy") == []
    assert library_without_security_policy("platform-images", "d6666b40-f281-11f1-88b8-7e74389f565d") == []
    for unset in (None, "", "  "):
        assert library_without_security_policy("platform-images", unset) == [
            "library 'platform-images' has no security policy, so vCenter accepts unsigned and untrusted packages "
            "in it: set `securityPolicy:` on it in vmimage:libraries (vCenter's OVF security policy, by name or id)"
        ]


# The PR comment

VMI = "vmi-6450a0f4e34197d5c"


def step(op: str, name: str, new: dict | None, old: dict | None = None, type_: str = "VirtualMachineImage") -> dict:
    token = f"pulumi-python:dynamic/vmimage:{type_}"
    state = lambda props: {"type": token, "inputs": props} if props is not None else None  # noqa: E731
    return {"op": op, "urn": f"urn:pulumi:prod::p::{token}::{name}", "oldState": state(old), "newState": state(new)}


def image(name: str, facts: dict | None, **extra) -> dict:
    props = {"display_name": name, "namespace": "team-a", "vmi_id": VMI, "capabilities": [], **extra}
    return {**props, **({"becomes": facts} if facts is not None else {})}


def rows(markdown: str) -> dict[str, list[str]]:
    found = {}
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("| | image"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            found[cells[1]] = cells
    return found


def test_the_comment_shows_signer_and_trust_and_why_an_image_is_not_ready():
    unsigned = {"status": "unsigned", "signer": None, "trusted": False}
    untrusted = {"status": "verified", "signer": SIGNER, "trusted": False}
    preview = {
        "steps": [
            step("create", "signed", image("signed", becomes(TRUSTED))),
            step(
                "create", "unsigned", image("unsigned", {"type": "OVF", "ready": NOT_COMPLIANT, "signature": unsigned})
            ),
            step("create", "untrusted", image("untrusted", {"type": "OVF", "ready": False, "signature": untrusted})),
            step("create", "tampered", image("tampered", becomes({"status": "tampered", "signer": SIGNER}))),
            step("create", "plain", image("plain", becomes({"status": "unsigned", "trusted": False}))),
            step("create", "url", image("url", None)),
            step("create", "tools", image("tools", {"type": "ISO", "ready": "True"})),
        ]
    }
    text = summary_markdown(preview, "prod")
    assert "| firmware | signature | what changes |" in text
    found = rows(text)
    assert found["signed"][8:] == [f"{SIGNER} (trusted)", "—"]
    assert found["unsigned"][8:] == ["unsigned", "NotReady: not security compliant (unsigned)"]
    assert found["untrusted"][8:] == [f"{SIGNER} (untrusted)", "NotReady: not security compliant (untrusted)"]
    # Ready as predicted (a library without a policy): the signature shows, no NotReady note
    assert found["tampered"][8:] == [f"{SIGNER} (tampered)", "—"]
    assert found["plain"][8:] == ["unsigned", "—"]  # an unsigned image in a library without a policy
    assert found["url"][8:] == ["—", "what it becomes is known after the upload (a URL source)"]
    assert found["tools"][8] == "—"
    assert "VirtualMachineImageProviderSecurityNotCompliant" not in text  # said once, in the reviewer's words


def test_a_change_that_makes_an_image_not_compliant_says_it_was_ready():
    """A library given a security policy: the same item, now NotReady (vCenter's word from the state)."""
    old = image("photon", becomes({"status": "unsigned", "trusted": False}), content_fingerprint="a")
    old["status"] = {"type": "OVF", "conditions": [{"type": "Ready", "status": "True"}]}
    new = image(
        "photon",
        {"type": "OVF", "ready": NOT_COMPLIANT, "signature": {"status": "unsigned", "trusted": False}},
        content_fingerprint="a",
        content_version="1",
    )
    (change,) = image_changes({"steps": [step("update", "photon", new, old)]})
    assert "NotReady: not security compliant (unsigned); it was Ready" in change.what
    assert not any(line.startswith("ready:") for line in change.what)


def test_an_applied_image_keeps_its_signature_and_its_recorded_not_ready():
    """A deploy's event stream: the status VM Operator's rules gave (the recorded object's), the
    signature from the package, read before the upload."""
    status = {
        "name": "photon-ova-cluster",
        "type": "OVF",
        "osInfo": {},
        "productInfo": {},
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "VirtualMachineImageProviderSecurityNotCompliant",
                "message": "Provider item is not security compliant",
            }
        ],
    }
    new = image("photon", {"type": "OVF", "signature": {"status": "unsigned", "trusted": False}}, status=status)
    (change,) = image_changes({"steps": [step("create", "photon", new)]})
    assert change.facts["signature"]["status"] == "unsigned"
    assert change.what == ["NotReady: not security compliant (unsigned)"]


def test_vcenters_verdict_without_a_local_reason_is_still_shown():
    facts = {"type": "OVF", "ready": NOT_COMPLIANT, "signature": TRUSTED}
    (change,) = image_changes({"steps": [step("create", "photon", image("photon", facts))]})
    assert change.what == ["NotReady: not security compliant (vCenter's verdict; the package's own signature verified)"]
    (change,) = image_changes(
        {"steps": [step("create", "photon", image("photon", {"type": "OVF", "ready": NOT_COMPLIANT}))]}
    )
    assert change.what == ["NotReady: not security compliant"]
