"""The pure parts of libraries with a security policy: the config keys, the stack's trusted
certificates read from PEM files, and the facts a reviewer and the policy pack read."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_security_policy import certificate
from vmimage.config import ConfigError, load_catalog_config
from vmimage.descriptor.signature import SignatureReport, SignatureStatus
from vmimage.descriptor.trust import pem_fingerprint, trusted_certificates
from vmimage.errors import ImageError
from vmimage.review.facts import (
    NOT_COMPLIANT_READY,
    not_compliant_line,
    predicted_not_compliant,
    signature_facts,
    with_compliance,
)
from vmimage.review.governance import unsigned_image
from vmimage.review.summary import _security_note


def _library(**extra) -> dict:
    return {"name": "signed", "datastore": "ds", **extra}


def test_ovf_strict_is_vcenters_default_policy_and_other_names_stay_as_written():
    config = load_catalog_config({"libraries": [_library(securityPolicy="ovf-strict")]})
    assert config.libraries[0].security_policy == "OVF default policy"
    assert config.security_policy("signed") == "OVF default policy"
    config = load_catalog_config({"libraries": [_library(securityPolicy="Our own policy")]})
    assert config.security_policy("signed") == "Our own policy"
    assert load_catalog_config({"libraries": [_library()]}).security_policy("signed") is None


def test_an_existing_library_takes_no_policy_and_the_new_keys_are_known():
    with pytest.raises(ConfigError) as caught:
        load_catalog_config({"libraries": [{"name": "x", "existing": True, "securityPolicy": "ovf-strict"}]})
    assert "securityPolicy do not apply" in str(caught.value)
    keys = {"vmimage:trustedCertificates", "vmimage:libraries"}
    load_catalog_config({"trustedCertificates": ["ca.pem"]}, keys)  # no unknown key
    with pytest.raises(ConfigError) as caught:
        load_catalog_config({}, {"vmimage:trustedCertificate"})
    assert "did you mean `vmimage:trustedCertificates`?" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_catalog_config({"libraries": [_library(securityPolicies="ovf-strict")]})
    assert "did you mean `securityPolicy`?" in str(caught.value)


def test_a_certificate_is_one_entry_however_it_is_written(tmp_path: Path):
    """The same certificate in a bundle with text around it and CRLF line ends, and on its own, is
    one entry; another certificate of the same subject is another."""
    alone = certificate(tmp_path / "ca.pem", "signing CA")
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("# our CA\r\n" + alone.read_text().replace("\n", "\r\n") + "trailing words\n")
    twin = certificate(tmp_path / "twin.pem", "signing CA")
    found = trusted_certificates([str(bundle), str(alone), str(twin)])
    assert [(c.path, c.subject) for c in found] == [(str(bundle), "CN=signing CA"), (str(twin), "CN=signing CA")]
    assert found[0].sha256 == pem_fingerprint(alone.read_text()) != found[1].sha256
    assert pem_fingerprint(found[0].pem) == found[0].sha256
    assert pem_fingerprint("not a certificate") is None


def test_a_file_that_is_not_pem_names_itself(tmp_path: Path):
    junk = tmp_path / "ca.der"
    junk.write_bytes(b"\x30\x82\x01\x00")
    with pytest.raises(ImageError) as caught:
        trusted_certificates([str(junk)])
    assert str(junk) in str(caught.value) and "PEM" in str(caught.value)


def _report(status: SignatureStatus, trusted_by: str | None = None) -> SignatureReport:
    return SignatureReport(status=status, message="m", signer="CN=Acme Signer,O=Acme", trusted_by=trusted_by)


def test_the_becomes_shape_the_policy_pack_reads():
    facts = {"type": "OVF", "os": "ubuntu64Guest", "version": "24.04", "ready": "True", "capabilities": ["gpu"]}
    verified = signature_facts(_report(SignatureStatus.VERIFIED, "CN=Acme Root"))
    assert verified == {"status": "verified", "signer": "Acme Signer", "trusted": True}
    assert with_compliance(facts, verified, policy=True) == {**facts, "signature": verified}
    untrusted = signature_facts(_report(SignatureStatus.UNTRUSTED))
    assert untrusted == {"status": "untrusted", "signer": "Acme Signer", "trusted": False}
    assert with_compliance(facts, untrusted, policy=False) == {**facts, "signature": untrusted}  # no policy: Ready
    predicted = with_compliance(facts, untrusted, policy=True)
    assert predicted == {"type": "OVF", "capabilities": ["gpu"], "signature": untrusted, "ready": NOT_COMPLIANT_READY}
    assert NOT_COMPLIANT_READY == (
        "False: VirtualMachineImageProviderSecurityNotCompliant: Provider item is not security compliant"
    )  # what image_facts says of VM Operator's recorded object
    assert with_compliance(facts, None, policy=True) == facts  # an ISO: no signature, no policy rule
    assert predicted_not_compliant(predicted) == "NotReady: not security compliant (untrusted)"
    assert predicted_not_compliant(facts) is None
    # what the PR comment and the production rule make of it (vmimage/review/summary.py, governance.py)
    assert _security_note(predicted) == "NotReady: not security compliant (untrusted)"
    assert unsigned_image("photon", "photon.ova", predicted)  # a violation in production
    assert unsigned_image("photon", "photon.ova", with_compliance(facts, verified, policy=True)) == []
    assert not_compliant_line("NOT_AVAILABLE") == "NotReady: not security compliant (unsigned)"
    assert not_compliant_line("UNTRUSTED") == "NotReady: not security compliant (untrusted)"
