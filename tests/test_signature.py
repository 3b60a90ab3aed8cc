"""OVF signatures (DSP0243's .cert): `openssl` is the independent oracle both ways. Packages signed
with `openssl dgst -sign` verify in vmimage, packages `vmimage sign` writes verify with
`openssl dgst -verify`, and every way a signature can fail gets its own status and message:
a byte changed in any file, another key, an expired or untrusted chain, hostile .cert files."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.test_integrity import ova_of, photon_members
from vmimage.descriptor.samples import SAMPLES, write_ova, write_ovf
from vmimage.descriptor.signature import MAX_CERT_BYTES, SignatureStatus, verify_signature
from vmimage.descriptor.signing import load_signer, load_trust_bundle, sign_package
from vmimage.errors import ImageError
from vmimage.review.lint import lint_package

NOW = datetime.now(UTC)
LIBRARY_NAME = "vmimage-signature-tests"  # the conftest `library` fixture's, for the upload tests

CA_CONFIG = """\
[ca]
default_ca = dflt
[dflt]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
[encipher_only]
basicConstraints = CA:FALSE
keyUsage = critical, keyEncipherment
"""

KEYS = {
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ed25519": ["-algorithm", "ED25519"],
}


def openssl(*args: str, cwd: Path, data: bytes | None = None) -> bytes:
    result = subprocess.run(["openssl", *args], cwd=cwd, input=data, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


@dataclass(frozen=True)
class Cert:
    key: Path
    pem: Path


class Pki:
    """Keys and certificates made by the openssl command, in one directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        (directory / "ca.cnf").write_text(CA_CONFIG)
        (directory / "index.txt").write_text("")
        (directory / "serial").write_text("1000\n")

    def key(self, name: str, kind: str) -> Path:
        openssl("genpkey", *KEYS[kind], "-out", f"{name}.key", cwd=self.dir)
        return self.dir / f"{name}.key"

    def root(self, name: str, kind: str = "rsa") -> Cert:
        key = self.key(name, kind)
        openssl(
            "req", "-x509", "-key", str(key), "-out", f"{name}.pem", "-subj", f"/CN={name}", "-days", "3650",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=self.dir,
        )  # fmt: skip
        return Cert(key, self.dir / f"{name}.pem")

    def issue(
        self, name: str, issuer: Cert, kind: str = "rsa", extensions: str = "leaf", dates: tuple[str, str] | None = None
    ) -> Cert:
        key = self.key(name, kind)
        openssl("req", "-new", "-key", str(key), "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=self.dir)
        validity = ["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "365"]
        openssl(
            "ca", "-batch", "-config", "ca.cnf", "-cert", str(issuer.pem), "-keyfile", str(issuer.key),
            "-in", f"{name}.csr", "-out", f"{name}.pem", "-extensions", extensions, "-notext", *validity,
            cwd=self.dir,
        )  # fmt: skip
        return Cert(key, self.dir / f"{name}.pem")


@dataclass(frozen=True)
class Certs:
    pki: Pki
    root: Cert
    intermediate: Cert
    leaf: Cert  # RSA, issued by the intermediate
    root_ec: Cert
    leaf_ec: Cert  # ECDSA, issued by root_ec
    other_root: Cert
    expired: Cert  # issued by root, valid in January 2020
    encipher_only: Cert  # issued by root, keyUsage without digitalSignature
    ed25519: Cert  # issued by root


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    pki = Pki(tmp_path_factory.mktemp("pki"))
    root = pki.root("Root CA")
    intermediate = pki.issue("Intermediate CA", root, extensions="ca_ext")
    root_ec = pki.root("Root EC", "ec")
    return Certs(
        pki=pki,
        root=root,
        intermediate=intermediate,
        leaf=pki.issue("Image Signer", intermediate),
        root_ec=root_ec,
        leaf_ec=pki.issue("Image Signer EC", root_ec, "ec"),
        other_root=pki.root("Other Root"),
        expired=pki.issue("Old Signer", root, dates=("20200101000000Z", "20200201000000Z")),
        encipher_only=pki.issue("Encipherer", root, extensions="encipher_only"),
        ed25519=pki.issue("Edwards Signer", root, "ed25519"),
    )


def openssl_cert_file(pki: Pki, manifest: bytes, signer: Cert, chain: list[Path], digest: str = "sha256") -> bytes:
    """A .cert as ovftool documents making one with openssl: `openssl dgst -sign` over the manifest."""
    (pki.dir / "m.mf").write_bytes(manifest)
    signature = openssl("dgst", f"-{digest}", "-sign", str(signer.key), "m.mf", cwd=pki.dir)
    pems = b"".join(path.read_bytes() for path in [signer.pem, *chain])
    return f"{digest.upper()}(p.mf)= {signature.hex()}\n".encode() + pems


def signed_ova(path: Path, cert_file: bytes, members: list[tuple[str, bytes]] | None = None) -> Path:
    members = members or photon_members()
    return ova_of(path, [members[0], members[1], ("p.cert", cert_file), *members[2:]])


def lint(path: Path, *trusted: Cert, **options):
    trust = load_trust_bundle([str(c.pem) for c in trusted]) if trusted else None
    return lint_package(str(path), trust=trust, **options)


def vmimage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmimage", *args], capture_output=True, text=True, timeout=60)


# --- signed by openssl, verified by vmimage ------------------------------------------------------


@pytest.mark.parametrize("digest", ["sha256", "sha512", "sha1"])
def test_a_package_openssl_signed_with_an_intermediate_verifies(certs, tmp_path, digest):
    members = photon_members()
    cert_file = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [certs.intermediate.pem], digest)
    report = lint(signed_ova(tmp_path / "s.ova", cert_file), certs.root)
    assert report.clean, report.findings
    signature = report.signature
    assert signature.status == SignatureStatus.VERIFIED and signature.vcenter_status == "VERIFIED"
    assert signature.algorithm == digest.upper() and signature.key == "RSA 2048"
    assert signature.signer == "CN=Image Signer" and signature.trusted_by == "CN=Root CA"
    assert [c.subject for c in signature.chain] == ["CN=Image Signer", "CN=Intermediate CA", "CN=Root CA"]
    assert signature.not_after == min(c.not_after for c in signature.chain) and signature.unchecked == []


def test_an_ecdsa_signature_verifies(certs, tmp_path):
    members = photon_members()
    cert_file = openssl_cert_file(certs.pki, members[1][1], certs.leaf_ec, [])
    signature = lint(signed_ova(tmp_path / "e.ova", cert_file), certs.root_ec).signature
    assert (signature.status, signature.key, signature.trusted_by) == ("verified", "ECDSA secp256r1", "CN=Root EC")


def test_a_signers_certificate_trusted_directly_verifies(certs, tmp_path):
    members = photon_members()
    cert_file = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [])
    assert lint(signed_ova(tmp_path / "d.ova", cert_file), certs.leaf).signature.status == "verified"


def test_an_ovf_with_its_cert_beside_it_verifies(certs, tmp_path):
    ovf = write_ovf(tmp_path, SAMPLES[0])
    manifest = ovf.with_suffix(".mf")
    cert_file = openssl_cert_file(certs.pki, manifest.read_bytes(), certs.leaf, [certs.intermediate.pem])
    ovf.with_suffix(".cert").write_bytes(cert_file.replace(b"(p.mf)", f"({manifest.name})".encode()))
    report = lint(ovf, certs.root)
    assert report.clean and report.signature.status == "verified"


# --- what fails, and how it is said ---------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 2], ids=["descriptor", "disk"])
def test_a_byte_changed_in_a_signed_file_is_tampered(certs, tmp_path, index):
    members = photon_members()
    cert_file = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [certs.intermediate.pem])
    name, data = members[index]
    changed = data.replace(b"photon", b"Photon", 1) if index == 0 else data[:-1] + b"\x01"
    assert changed != data
    members[index] = (name, changed)
    report = lint(signed_ova(tmp_path / "t.ova", cert_file, members), certs.root)
    signature = report.signature
    assert signature.status == "tampered" and signature.vcenter_status == "VERIFICATION_FAILURE"
    assert f"{name!r} changed after signing" in signature.message
    assert ("signature-tampered", "error") in [(f.code, f.severity) for f in report.findings]


def test_a_changed_manifest_is_tampered_and_a_file_added_is_not_covered(certs, tmp_path):
    members = photon_members()
    cert_file = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [certs.intermediate.pem])
    rewritten = [members[0], ("p.mf", members[1][1] + b"\n"), members[2]]  # one byte more, digests intact
    signature = lint(signed_ova(tmp_path / "m.ova", cert_file, rewritten), certs.root).signature
    assert signature.status == "tampered" and "p.mf changed after it was signed" in signature.message
    added = [*members, ("notes.txt", b"x")]
    signature = lint(signed_ova(tmp_path / "a.ova", cert_file, added), certs.root).signature
    assert signature.status == "tampered" and "does not list 'notes.txt'" in signature.message


def test_a_signature_by_another_key_is_wrong_key_for_rsa(certs, tmp_path):
    members = photon_members()
    other = Cert(certs.other_root.key, certs.leaf.pem)  # signs with one key, ships another's certificate
    cert_file = openssl_cert_file(certs.pki, members[1][1], other, [certs.intermediate.pem])
    signature = lint(signed_ova(tmp_path / "w.ova", cert_file), certs.root).signature
    assert signature.status == "wrong-key"
    assert "not made with the key of CN=Image Signer" in signature.message


def test_ecdsa_cannot_tell_another_key_from_a_changed_manifest(certs, tmp_path):
    members = photon_members()
    other_ec = certs.pki.key("other-ec", "ec")
    cert_file = openssl_cert_file(certs.pki, members[1][1], Cert(other_ec, certs.leaf_ec.pem), [])
    signature = lint(signed_ova(tmp_path / "w.ova", cert_file), certs.root_ec).signature
    assert signature.status == "tampered" and "or another key signed it" in signature.message


def test_an_expired_certificate_and_the_time_it_is_checked_at(certs, tmp_path):
    members = photon_members()
    cert_file = openssl_cert_file(certs.pki, members[1][1], certs.expired, [])
    ova = signed_ova(tmp_path / "x.ova", cert_file)
    report = lint(ova, certs.root)
    assert report.signature.status == "expired" and "expired on 2020-02-01" in report.signature.message
    assert [(f.code, f.severity) for f in report.findings] == [("signature-expired", "warning")]
    then = lint(ova, certs.root, now=datetime(2020, 1, 15, tzinfo=UTC)).signature  # the signer was valid then
    assert then.status == "expired" and "CN=Root CA is not valid until" in then.message  # its root was not
    before = lint(ova, certs.root, now=datetime(2019, 6, 1, tzinfo=UTC)).signature
    assert before.status == "expired" and "not valid until 2020-01-01" in before.message
    fresh = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [certs.intermediate.pem])
    later = lint(signed_ova(tmp_path / "f.ova", fresh), certs.root, now=NOW + timedelta(days=400)).signature
    assert later.status == "expired" and "CN=Image Signer expired" in later.message


def test_an_untrusted_root_and_a_missing_intermediate(certs, tmp_path):
    members = photon_members()
    cert_file = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [certs.intermediate.pem])
    ova = signed_ova(tmp_path / "u.ova", cert_file)
    report = lint(ova, certs.other_root)
    assert report.signature.status == "untrusted" and report.signature.vcenter_status == "UNTRUSTED"
    assert "the issuer of CN=Intermediate CA, CN=Root CA, is neither in p.cert nor in the trust bundle" in (
        report.signature.message
    )
    assert [(f.code, f.severity) for f in report.findings] == [("signature-untrusted", "warning")]
    required = lint(ova, certs.other_root, require_signed=True)
    assert [(f.code, f.severity) for f in required.findings] == [("signature-untrusted", "error")]
    unchecked = lint(ova)  # no trust bundle: said on the signature line, no finding
    assert unchecked.clean and unchecked.signature.status == "untrusted"
    assert "no trust bundle" in unchecked.signature.message
    without = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [])
    signature = lint(signed_ova(tmp_path / "n.ova", without), certs.root).signature
    assert signature.status == "untrusted" and "CN=Intermediate CA, is neither in p.cert" in signature.message
    self_signed = openssl_cert_file(certs.pki, members[1][1], certs.other_root, [])
    signature = lint(signed_ova(tmp_path / "s.ova", self_signed), certs.root).signature
    assert signature.status == "untrusted" and "its root CN=Other Root is not in the trust bundle" in signature.message


def test_a_certificate_that_may_not_sign(certs, tmp_path):
    members = photon_members()
    cert_file = openssl_cert_file(certs.pki, members[1][1], certs.encipher_only, [])
    signature = lint(signed_ova(tmp_path / "k.ova", cert_file), certs.root).signature
    assert signature.status == "untrusted" and "does not include digitalSignature" in signature.message
    # a leaf posing as an intermediate: it is no CA
    cert_file = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [certs.intermediate.pem])
    signature = lint(signed_ova(tmp_path / "c.ova", cert_file), certs.leaf_ec, certs.root).signature
    assert signature.status == "verified"  # an unrelated certificate in the bundle changes nothing


def test_unsigned_is_no_finding_unless_required(certs, tmp_path):
    ova = write_ova(tmp_path / "plain.ova", SAMPLES[0])
    report = lint(ova, certs.root)
    assert report.clean and report.signature.status == "unsigned"
    assert report.signature.vcenter_status == "NOT_AVAILABLE"
    required = lint(ova, certs.root, require_signed=True)
    assert [(f.code, f.severity) for f in required.findings] == [("signature-unsigned", "error")]


# --- hostile certificate files ---------------------------------------------------------------------


def hostile_cases(certs: Certs, manifest: bytes) -> dict[str, tuple[bytes, str, str]]:
    good = openssl_cert_file(certs.pki, manifest, certs.leaf, [certs.intermediate.pem])
    line, _, pems = good.partition(b"\n")
    leaf_pem = certs.leaf.pem.read_bytes()
    return {
        "huge": (good + b"#" * MAX_CERT_BYTES, "malformed", "over the 262144 byte limit"),
        "many certificates": (line + b"\n" + leaf_pem * 17, "malformed", "17 certificates, over the limit of 16"),
        "not PEM": (line + b"\n" + b"\x00\xff" * 300, "malformed", "p.cert is not text"),
        "no certificate": (line + b"\n", "malformed", "holds no PEM certificate"),
        "garbage hex": (b"SHA256(p.mf)= zz11\n" + pems, "malformed", "not hexadecimal bytes"),
        "odd hex": (b"SHA256(p.mf)= abc\n" + pems, "malformed", "not hexadecimal bytes"),
        "no line": (pems, "malformed", "has no text outside its certificates"),
        "broken PEM": (
            line + b"\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "malformed",
            "holds a certificate that cannot be read",
        ),
        "private key": (good + certs.leaf.key.read_bytes(), "malformed", "holds a private key"),
        "md5": (b"MD5(p.mf)= 00ff\n" + pems, "unsupported", "signed with MD5"),
        "other manifest": (good.replace(b"(p.mf)", b"(q.mf)"), "malformed", "signs 'q.mf'"),
        "short RSA signature": (b"SHA256(p.mf)= 00ff\n" + pems, "wrong-key", "has 2 bytes"),
    }


def test_hostile_certificate_files_are_one_clear_status(certs, tmp_path):
    members = photon_members()
    for case, (cert_file, status, fragment) in hostile_cases(certs, members[1][1]).items():
        signature = lint(signed_ova(tmp_path / "h.ova", cert_file), certs.root).signature
        assert (signature.status, signature.certificate_file) == (status, "p.cert"), case
        assert fragment in signature.message, (case, signature.message)


def test_an_ed25519_key_is_unsupported_and_two_certificate_files_malformed(certs, tmp_path):
    members = photon_members()
    ed = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [])  # a line; the certificate is Ed25519's
    ed = ed.split(b"\n", 1)[0] + b"\n" + certs.ed25519.pem.read_bytes()
    signature = lint(signed_ova(tmp_path / "ed.ova", ed), certs.root).signature
    assert signature.status == "unsupported" and "Ed25519" in signature.message
    good = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [certs.intermediate.pem])
    two = ova_of(tmp_path / "two.ova", [members[0], members[1], ("p.cert", good), ("q.cert", good), members[2]])
    signature = lint(two, certs.root).signature
    assert signature.status == "malformed" and "2 certificate files" in signature.message


def test_a_cert_without_a_manifest_is_malformed(certs):
    members = photon_members()
    good = openssl_cert_file(certs.pki, members[1][1], certs.leaf, [certs.intermediate.pem])
    report = verify_signature(
        manifest=None, certificates=[("p.cert", good)], members={"p.ovf": None}, trust=[], now=NOW
    )
    assert report.status == "malformed" and "has no manifest" in report.message


def test_hostile_files_on_the_command_line_are_one_line_each(certs, tmp_path):
    members = photon_members()
    cases = hostile_cases(certs, members[1][1])
    for case in ("huge", "not PEM", "garbage hex"):
        ova = signed_ova(tmp_path / f"{case.replace(' ', '-')}.ova", cases[case][0])
        result = vmimage("lint", str(ova), "--trust", str(certs.root.pem))
        assert result.returncode == 1 and "Traceback" not in result.stderr + result.stdout, case
        (finding,) = [line for line in result.stdout.splitlines() if line.strip().startswith("error")]
        assert "signature-malformed" in finding and "p.cert" in finding
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"not a certificate")
    result = vmimage("lint", str(write_ova(tmp_path / "ok.ova", SAMPLES[0])), "--trust", str(bundle))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: {bundle}: holds no PEM certificate (-----BEGIN CERTIFICATE-----): give PEM files\n"


# --- vmimage sign, verified by openssl -----------------------------------------------------------


def members_of(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def openssl_verifies(pki: Pki, manifest: bytes, cert_file: bytes, digest: str = "sha256") -> bool:
    line = cert_file.split(b"\n", 1)[0].decode()
    (pki.dir / "check.mf").write_bytes(manifest)
    (pki.dir / "check.sig").write_bytes(bytes.fromhex(line.split("= ", 1)[1]))
    (pki.dir / "check.cert").write_bytes(cert_file)
    public = openssl("x509", "-in", "check.cert", "-pubkey", "-noout", cwd=pki.dir)
    (pki.dir / "check.pub").write_bytes(public)
    result = subprocess.run(
        ["openssl", "dgst", f"-{digest}", "-verify", "check.pub", "-signature", "check.sig", "check.mf"],
        cwd=pki.dir,
        capture_output=True,
        timeout=60,
    )
    return result.returncode == 0 and result.stdout == b"Verified OK\n"


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_vmimage_sign_an_ova_and_openssl_verifies_it(certs, tmp_path, kind):
    leaf, chain, root = (
        (certs.leaf, [certs.intermediate.pem], certs.root) if kind == "rsa" else (certs.leaf_ec, [], certs.root_ec)
    )
    source = write_ova(tmp_path / "photon.ova", SAMPLES[0], manifest=False)
    out = tmp_path / "signed.ova"
    result = vmimage(
        "sign", str(source), "--key", str(leaf.key), "--cert", str(leaf.pem),
        *[arg for c in chain for arg in ("--chain", str(c))], "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}\nsignature: signed by CN=Image Signer")
    members = members_of(out)
    names = [name for name, _ in members]
    assert names == ["photon.ovf", "photon.mf", "photon.cert", "photon-disk1.vmdk"]  # DSP0243's order
    contents = dict(members)
    assert contents["photon.cert"].startswith(b"SHA256(photon.mf)= ")
    assert openssl_verifies(certs.pki, contents["photon.mf"], contents["photon.cert"])
    assert not openssl_verifies(certs.pki, contents["photon.mf"] + b"\n", contents["photon.cert"])
    assert openssl("verify", "-CAfile", str(root.pem), *(["-untrusted", str(chain[0])] if chain else []),
                   str(leaf.pem), cwd=certs.pki.dir).endswith(b": OK\n")  # fmt: skip
    assert lint(out, root).clean and lint(out, root).signature.status == "verified"
    assert contents["photon-disk1.vmdk"] == dict(members_of(source))["photon-disk1.vmdk"]


def test_sign_in_place_keeps_a_manifest_and_replaces_an_old_signature(certs, tmp_path):
    ova = write_ova(tmp_path / "photon.ova", SAMPLES[0])
    before = dict(members_of(ova))
    key, chain = load_signer(str(certs.leaf_ec.key), str(certs.leaf_ec.pem), [])
    signed = sign_package(str(ova), key, chain, NOW)
    assert signed.written == [str(ova)] and not signed.manifest_created
    key, chain = load_signer(str(certs.leaf.key), str(certs.leaf.pem), [str(certs.intermediate.pem)])
    sign_package(str(ova), key, chain, NOW, algorithm="SHA512")  # signed again, by another signer
    after = members_of(ova)
    assert [name for name, _ in after] == ["photon.ovf", "photon.mf", "photon.cert", "photon-disk1.vmdk"]
    assert dict(after)["photon.mf"] == before["photon.mf"]
    assert openssl_verifies(certs.pki, before["photon.mf"], dict(after)["photon.cert"], "sha512")
    assert lint(ova, certs.root).signature.signer == "CN=Image Signer"
    assert [p.name for p in tmp_path.iterdir()] == ["photon.ova"]  # no temporary file left


def test_sign_an_ovf_writes_its_manifest_and_cert_beside_it(certs, tmp_path):
    ovf = write_ovf(tmp_path, SAMPLES[0])
    manifest = ovf.with_suffix(".mf")
    expected = manifest.read_bytes()
    manifest.unlink()
    result = vmimage("sign", str(ovf), "--key", str(certs.leaf.key), "--cert", str(certs.leaf.pem),
                     "--chain", str(certs.intermediate.pem))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == [f"wrote {manifest}", f"wrote {ovf.with_suffix('.cert')}"]
    assert manifest.read_bytes() == expected  # the SHA256 lines write_ovf writes
    assert openssl_verifies(certs.pki, expected, ovf.with_suffix(".cert").read_bytes())
    assert lint(ovf, certs.root).signature.status == "verified"
    inspected = vmimage("inspect", str(ovf), "--trust", str(certs.root.pem))
    assert inspected.returncode == 0 and yaml.safe_load(inspected.stdout)["kind"] == "VirtualMachineImage"
    assert inspected.stderr.startswith("signature: verified; signed by CN=Image Signer; issued by CN=Intermediate CA")
    assert "digests of photon-5-sample-disk1.vmdk not checked (vmimage lint checks them)" in inspected.stderr
    result = vmimage("sign", str(ovf), "--key", str(certs.leaf.key), "--cert", str(certs.leaf.pem), "-o", "x.ova")
    assert result.returncode == 2 and "an .ovf is signed in place" in result.stderr


def test_sign_refuses_a_changed_file_a_wrong_key_and_leaves_the_package_alone(certs, tmp_path):
    members = photon_members()
    disk_name, disk = members[2]
    ova = ova_of(tmp_path / "t.ova", [members[0], members[1], (disk_name, disk[:-1] + b"\x01")])
    before = ova.read_bytes()
    key, chain = load_signer(str(certs.leaf.key), str(certs.leaf.pem), [])
    with pytest.raises(ImageError, match="'p-disk1.vmdk' is .*, but p.mf says .*a signature would vouch for it"):
        sign_package(str(ova), key, chain, NOW)
    assert ova.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["t.ova"]
    result = vmimage("sign", str(ova), "--key", str(certs.leaf_ec.key), "--cert", str(certs.leaf.pem))
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {certs.leaf_ec.key}: the key is not the one of the certificate (CN=Image Signer): give the "
        f"certificate of the key ({certs.leaf.pem} holds it first)\n"
    )
    result = vmimage("sign", str(ova), "--key", str(certs.leaf.pem), "--cert", str(certs.leaf.pem))
    assert result.returncode == 2 and result.stderr.startswith(f"error: {certs.leaf.pem}: not a PEM private key")
    assert ova.read_bytes() == before


# --- lint and inspect on the command line ------------------------------------------------------


def test_lint_exit_codes_and_json(certs, tmp_path):
    members = photon_members()
    good = signed_ova(
        tmp_path / "good.ova", openssl_cert_file(certs.pki, members[1][1], certs.leaf, [certs.intermediate.pem])
    )
    unsigned = write_ova(tmp_path / "plain.ova", SAMPLES[0])
    expired = signed_ova(tmp_path / "old.ova", openssl_cert_file(certs.pki, members[1][1], certs.expired, []))
    root = str(certs.root.pem)
    assert vmimage("lint", str(good), str(unsigned)).returncode == 0  # trust not asked: no finding
    assert vmimage("lint", str(good), str(unsigned), "--trust", root).returncode == 0
    assert vmimage("lint", str(good), "--trust", root, "--require-signed").returncode == 0
    required = vmimage("lint", str(good), str(unsigned), "--trust", root, "--require-signed")
    assert required.returncode == 1 and "error    signature-unsigned" in required.stdout
    assert vmimage("lint", str(good), "--trust", str(certs.other_root.pem)).returncode == 1
    result = vmimage("lint", str(expired), "--trust", root)
    assert result.returncode == 1 and "warning  signature-expired" in result.stdout
    usage = vmimage("lint", str(good), "--require-signed")
    assert usage.returncode == 2 and "--require-signed needs --trust" in usage.stderr
    text = vmimage("lint", str(good), "--trust", root).stdout
    assert "  signature: verified; signed by CN=Image Signer; issued by CN=Intermediate CA <- CN=Root CA" in text
    document = json.loads(vmimage("lint", "-o", "json", str(good), "--trust", root).stdout)
    signature = document["packages"][0]["signature"]
    assert signature["status"] == "verified" and signature["trusted_by"] == "CN=Root CA"
    assert [c["subject"] for c in signature["chain"]] == ["CN=Image Signer", "CN=Intermediate CA", "CN=Root CA"]


def test_inspect_says_nothing_of_an_unsigned_package_unless_asked(certs, tmp_path):
    ova = write_ova(tmp_path / "plain.ova", SAMPLES[0])
    plain = vmimage("inspect", str(ova))
    assert plain.returncode == 0 and plain.stderr == ""
    asked = vmimage("inspect", str(ova), "-o", "json", "--trust", str(certs.root.pem))
    assert asked.returncode == 0 and json.loads(asked.stdout)["kind"] == "VirtualMachineImage"
    assert asked.stderr == "signature: unsigned (no .cert): sign it with `vmimage sign` if a library must verify it\n"


def test_the_member_order_of_a_signed_ova_starts_with_descriptor_manifest_certificate(certs, tmp_path):
    """Read as a stream (what an upload does): the signature files come before the disk."""
    source = write_ova(tmp_path / "p.ova", SAMPLES[0], disk_bytes=3 * 2**20 + 5)
    key, chain = load_signer(str(certs.leaf.key), str(certs.leaf.pem), [])
    sign_package(str(source), key, chain, NOW, out=str(tmp_path / "s.ova"))
    with tarfile.open(tmp_path / "s.ova", mode="r|") as stream:
        names = [member.name for member in stream]
    assert names == ["p.ovf", "p.mf", "p.cert", "p-disk1.vmdk"]
    assert io.BytesIO((tmp_path / "s.ova").read_bytes()).getbuffer().nbytes % tarfile.RECORDSIZE == 0


def test_the_previews_check_refuses_a_broken_signature_and_not_an_untrusted_one(certs, tmp_path):
    """cached_lint_errors is what a library item's check runs: a broken signature is an upload refused."""
    from vmimage.review.lint import cached_lint_errors

    members = photon_members()
    other = Cert(certs.other_root.key, certs.leaf.pem)
    broken = signed_ova(tmp_path / "b.ova", openssl_cert_file(certs.pki, members[1][1], other, []))
    errors = cached_lint_errors(str(broken), "b" * 64, cache_dir=tmp_path / "cache")
    assert [f.code for f in errors] == ["signature-wrong-key"]
    good = signed_ova(tmp_path / "g.ova", openssl_cert_file(certs.pki, members[1][1], certs.leaf, []))
    assert cached_lint_errors(str(good), "g" * 64, cache_dir=tmp_path / "cache") == []  # trust is not its to judge


# --- what a red team tried (issue 28) -------------------------------------------------------------


def test_a_manifest_that_lists_a_file_twice_is_neither_signed_nor_verified(certs, tmp_path):
    """Two digests for one disk: a verifier that reads the first line accepts a disk the signer never
    saw if the signer checked the last. `vmimage sign` refuses to vouch for such a manifest, and one
    signed elsewhere (openssl) does not verify."""
    members = photon_members()
    disk_name = members[2][0]
    other_disk = f"SHA256({disk_name})= {'ab' * 32}\n".encode()
    twice = other_disk + members[1][1]  # another disk's digest first, the real one last
    ova = ova_of(tmp_path / "t.ova", [members[0], ("p.mf", twice), members[2]])
    before = ova.read_bytes()
    key, chain = load_signer(str(certs.leaf.key), str(certs.leaf.pem), [])
    with pytest.raises(ImageError, match=f"manifest line 3 lists '{disk_name}' again"):
        sign_package(str(ova), key, chain, NOW)
    assert ova.read_bytes() == before
    cert_file = openssl_cert_file(certs.pki, twice, certs.leaf, [certs.intermediate.pem])
    signed = ova_of(tmp_path / "s.ova", [members[0], ("p.mf", twice), ("p.cert", cert_file), members[2]])
    with pytest.raises(ImageError, match=f"lists '{disk_name}' again"):
        lint(signed, certs.root)
    report = verify_signature(
        manifest=("p.mf", twice),
        certificates=[("p.cert", cert_file)],
        members={name: None for name, _ in [members[0], members[2]]},
        trust=load_trust_bundle([str(certs.root.pem)]),
        now=NOW,
    )
    assert report.status == "malformed" and f"lists '{disk_name}' again" in report.message


def test_a_signed_ovf_is_published_with_its_certificate_and_a_new_signature_is_new_content(
    library, client, certs, tmp_path
):
    """On the simulator: a bare .ovf's .cert goes into the item with its manifest (without it
    vCenter holds the item unsigned, while lint said verified); signing it, or signing again with
    another key, changes the source's digest (the fingerprint, lint's cache key), and an item that
    holds the same manifest with another signature does not hold the package."""
    from vmimage.descriptor.source import source_digest
    from vmimage.vsphere.publish import holds_source, upload_source

    ovf = write_ovf(tmp_path, SAMPLES[0])
    unsigned = source_digest(str(ovf), cache_dir=tmp_path / "cache")
    key, chain = load_signer(str(certs.leaf.key), str(certs.leaf.pem), [str(certs.intermediate.pem)])
    sign_package(str(ovf), key, chain, NOW)
    cert = ovf.with_suffix(".cert")
    signed = source_digest(str(ovf), cache_dir=tmp_path / "cache")
    assert signed != unsigned
    item = client.create_item(library.id, "signed-ovf", "", "OVF")
    upload_source(client, item, str(ovf))
    files = {f.name for f in client.item_files(item)}
    assert files == {ovf.name, ovf.with_suffix(".mf").name, cert.name, "photon-5-sample-disk1.vmdk"}
    assert client.download(item, cert.name, MAX_CERT_BYTES) == cert.read_bytes()
    assert holds_source(client, item, str(ovf))
    key, chain = load_signer(str(certs.leaf_ec.key), str(certs.leaf_ec.pem), [])
    sign_package(str(ovf), key, chain, NOW)  # the same manifest, signed by another key
    assert source_digest(str(ovf), cache_dir=tmp_path / "cache") not in (signed, unsigned)
    assert not holds_source(client, item, str(ovf))
    ova = write_ova(tmp_path / "photon.ova", SAMPLES[0])
    sign_package(str(ova), *load_signer(str(certs.leaf.key), str(certs.leaf.pem), []), NOW)
    item = client.create_item(library.id, "signed-ova", "", "OVF")
    upload_source(client, item, str(ova))
    assert holds_source(client, item, str(ova))
    sign_package(str(ova), key, chain, NOW)
    assert not holds_source(client, item, str(ova))


def test_sign_stopped_by_sigterm_leaves_the_package_and_no_temporary_file(certs, tmp_path):
    """A CI job cancelled mid-sign (SIGTERM): the .ova is as it was and its half-written successor gone."""
    import signal
    import time

    ova = write_ova(tmp_path / "big.ova", SAMPLES[0], disk_bytes=256 * 2**20)
    before = ova.stat().st_mtime_ns, ova.stat().st_size
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vmimage",
            "sign",
            str(ova),
            "--key",
            str(certs.leaf.key),
            "--cert",
            str(certs.leaf.pem),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")] and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert [p.name for p in tmp_path.iterdir()] == ["big.ova"]
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert (ova.stat().st_mtime_ns, ova.stat().st_size) == before


def test_a_trust_bundle_that_holds_a_private_key_is_refused(certs, tmp_path):
    """A signer's key and certificate in one PEM, given as the CA to trust: refused, never read as
    the certificates alone (the file is likely beside the stack, perhaps committed)."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(certs.leaf.key.read_bytes() + certs.root.pem.read_bytes())
    ova = write_ova(tmp_path / "p.ova", SAMPLES[0])
    result = vmimage("lint", str(ova), "--trust", str(bundle))
    assert result.returncode == 2
    assert result.stderr == (
        f"error: {bundle}: holds a private key: give a file of certificates only, and keep the key out of the stack\n"
    )


def test_sign_refuses_a_package_that_lost_a_file_while_it_was_signed(certs, tmp_path, monkeypatch):
    """The .ova is read twice (hashed, then copied): one rewritten in between without its disk
    would be written signed for a disk it lacks. Refused, and nothing is written."""
    import vmimage.descriptor.signing as signing

    members = photon_members()
    ova = ova_of(tmp_path / "p.ova", members)
    sign = signing.certificate_file

    def rewritten_meanwhile(*args, **kwargs):
        ova_of(ova, members[:2])  # the descriptor and manifest, the disk gone
        return sign(*args, **kwargs)

    monkeypatch.setattr(signing, "certificate_file", rewritten_meanwhile)
    key, chain = load_signer(str(certs.leaf.key), str(certs.leaf.pem), [])
    with pytest.raises(ImageError, match="'p-disk1.vmdk' went while it was being signed"):
        sign_package(str(ova), key, chain, NOW, out=str(tmp_path / "s.ova"))
    assert [p.name for p in tmp_path.iterdir()] == ["p.ova"]
