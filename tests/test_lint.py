"""`vmimage lint`: each finding has a package that shows it, the real descriptors lint without a
crash, and the exit status says clean (0), findings (1) or unreadable (2)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.test_integrity import ova_of, photon_members
from vmimage.descriptor.samples import SAMPLES, SampleImage, write_iso, write_ova, write_ovf
from vmimage.errors import ImageError
from vmimage.review.lint import lint_package

CODES = {
    "no-manifest",
    "two-manifests",
    "sha1",
    "unlisted-file",
    "digest-unchecked",
    "digest-mismatch",
    "missing-file",
    "size-mismatch",
    "capacity-unknown",
    "hidden-property",
    "unknown-os",
    "not-synced",
    "duplicate-file",
}


def codes(path: Path) -> list[str]:
    return [finding.code for finding in lint_package(str(path)).findings]


def vmimage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmimage", *args], capture_output=True, text=True, timeout=60)


def test_the_sample_images_are_clean_and_their_status_is_reported(tmp_path):
    ova = write_ova(tmp_path / "photon.ova", SAMPLES[0])
    report = lint_package(str(ova))
    assert report.clean
    assert report.status["osInfo"]["type"] == "vmwarePhoton64Guest" and report.status["hardwareVersion"] == 19
    assert lint_package(str(write_iso(tmp_path / "tools.iso"))).clean


def test_no_manifest(tmp_path):
    ovf = write_ovf(tmp_path, SAMPLES[0])
    (tmp_path / f"{SAMPLES[0].name}.mf").unlink()
    assert codes(ovf) == ["no-manifest"]


def test_two_manifests(tmp_path):
    members = photon_members()
    assert "two-manifests" in codes(ova_of(tmp_path / "t.ova", [*members[:2], ("q.mf", members[1][1]), members[2]]))


def test_sha1_is_accepted_but_flagged(tmp_path):
    members = photon_members()
    lines = "".join(f"SHA1({name})= {hashlib.sha1(data).hexdigest()}\n" for name, data in (members[0], members[2]))
    assert codes(ova_of(tmp_path / "s.ova", [members[0], ("p.mf", lines.encode()), members[2]])) == ["sha1"]


def test_a_file_the_manifest_does_not_list(tmp_path):
    members = photon_members()
    assert codes(ova_of(tmp_path / "u.ova", [*members, ("notes.txt", b"x")])) == ["unlisted-file"]


def test_a_file_name_twice_in_any_folder_is_what_the_upload_refuses(tmp_path):
    from vmimage.descriptor.source import package_contents

    members = photon_members()
    ova = ova_of(tmp_path / "d.ova", [*members, ("extra/p-disk1.vmdk", members[2][1])])
    report = lint_package(str(ova))
    assert [f.code for f in report.findings] == ["duplicate-file"]
    with pytest.raises(ImageError) as refused:  # what the upload plans with, before any transfer
        package_contents(str(ova))
    assert refused.value.reason == report.findings[0].message
    assert "'p-disk1.vmdk' twice" in report.findings[0].message


def test_a_digest_that_does_not_match(tmp_path):
    members = photon_members()
    disk_name, disk = members[2]
    tampered = ova_of(tmp_path / "d.ova", [*members[:2], (disk_name, disk[:-1] + b"\x01")])
    report = lint_package(str(tampered))
    assert [f.code for f in report.findings] == ["digest-mismatch"]
    assert "'p-disk1.vmdk'" in report.findings[0].message


def test_a_file_the_manifest_lists_but_the_package_lacks(tmp_path):
    members = photon_members(extra_manifest_lines="SHA256(extra.vmdk)= " + "0" * 64 + "\n")
    assert codes(ova_of(tmp_path / "m.ova", members)) == ["missing-file"]


def test_a_referenced_file_missing_beside_an_ovf(tmp_path):
    ovf = write_ovf(tmp_path, SAMPLES[0])
    (tmp_path / f"{SAMPLES[0].name}-disk1.vmdk").unlink()
    (tmp_path / f"{SAMPLES[0].name}.mf").unlink()
    assert sorted(codes(ovf)) == ["missing-file", "no-manifest"]


def test_a_size_the_descriptor_gets_wrong(tmp_path):
    members = photon_members()
    descriptor = members[0][1].replace(b'ovf:size="2048"', b'ovf:size="4096"')
    assert descriptor != members[0][1]
    digests = {"p.ovf": descriptor, "p-disk1.vmdk": members[2][1]}
    manifest = "".join(f"SHA256({n})= {hashlib.sha256(d).hexdigest()}\n" for n, d in digests.items()).encode()
    assert codes(ova_of(tmp_path / "z.ova", [("p.ovf", descriptor), ("p.mf", manifest), members[2]])) == [
        "size-mismatch"
    ]


def lint_descriptor(tmp_path: Path, image: SampleImage, old: bytes, new: bytes) -> list[str]:
    ovf = write_ovf(tmp_path, image)
    data = ovf.read_bytes()
    assert old in data
    ovf.write_bytes(data.replace(old, new, 1))
    (tmp_path / f"{image.name}.mf").unlink()  # the descriptor changed: no manifest to match it
    return [code for code in codes(ovf) if code != "no-manifest"]


def test_a_disk_whose_capacity_cannot_be_computed(tmp_path):
    old = b'ovf:capacityAllocationUnits="byte * 2^30"'
    assert lint_descriptor(tmp_path, SAMPLES[0], old, b'ovf:capacityAllocationUnits="furlongs"') == ["capacity-unknown"]


def test_a_property_vm_operator_will_not_pass(tmp_path):
    image = SampleImage(name="hidden")
    assert lint_descriptor(tmp_path, image, b'ovf:userConfigurable="true"', b'ovf:userConfigurable="false"') == [
        "hidden-property"
    ]


def test_a_guest_id_vm_operator_maps_to_no_os_type(tmp_path):
    assert lint_descriptor(tmp_path, SampleImage(name="other", guest_id="bogus64Guest"), b"x", b"x") == ["unknown-os"]
    assert lint_descriptor(tmp_path, SampleImage(name="any", guest_id="otherGuest64"), b"x", b"x") == []  # CIM 102


def test_a_package_vm_operator_would_not_sync_is_an_error(tmp_path):
    found = lint_package(str(FIXTURES / "ovf-more" / "cot-csr1000v.ovf")).findings
    (refused,) = [f for f in found if f.code == "not-synced"]
    assert refused.severity == "error" and refused.message.endswith("unknown ethernet card type 'vmxnet3 virtio'")
    old, new = b"ovf:/disk/vmdisk1</rasd:HostResource>", b"ovf:/disk/elsewhere</rasd:HostResource>"
    assert lint_descriptor(tmp_path, SampleImage(name="lost"), old, new) == ["not-synced"]


@pytest.mark.parametrize(
    "path",
    sorted((FIXTURES / "ovf").glob("*.ovf")) + sorted((FIXTURES / "ovf-more").glob("*.ovf")),
    ids=lambda p: p.name,
)
def test_the_real_descriptors_lint_without_a_crash(path):
    """They come without their disks: each gives findings from the known set, or one clear error."""
    try:
        report = lint_package(str(path))
    except ImageError as error:
        assert str(error).startswith(str(path))
        return
    found = {finding.code for finding in report.findings}
    assert found <= CODES and "no-manifest" in found  # none has its manifest here
    assert report.status["type"] == "OVF" and report.status["conditions"][0]["type"] == "Ready"


def test_what_lint_says_of_two_real_descriptors():
    photon = lint_package(str(FIXTURES / "ovf" / "photon-ova.ovf"))
    assert any(f.code == "missing-file" and "'photon-ova-disk1.vmdk'" in f.message for f in photon.findings)
    assert photon.status["osInfo"]["type"] == "other3xLinux64Guest"
    csr = lint_package(str(FIXTURES / "ovf-more" / "cot-csr1000v.ovf"))
    hidden = [f.message for f in csr.findings if f.code == "hidden-property"]
    assert hidden and "'config-version'" in hidden[0]  # ovf:key as VM Operator names it, without class or instance
    ttylinux = lint_package(str(FIXTURES / "ovf" / "ttylinux-pc_i486-16.1.ovf"))
    hidden = [f.message for f in ttylinux.findings if f.code == "hidden-property"]
    assert len(hidden) == 1 and "'dummy-key-not-configurable'" in hidden[0]  # declared twice, named once
    assert not any("vmware-system" in message for message in hidden)  # system properties are VM Operator's own


def test_exit_status_and_json_output(tmp_path):
    clean = write_ova(tmp_path / "clean.ova", SAMPLES[0])
    members = photon_members()
    broken = ova_of(tmp_path / "broken.ova", [*members, ("notes.txt", b"x")])
    unreadable = tmp_path / "not-a.ova"
    unreadable.write_bytes(b"not a tar archive at all" * 40)
    assert vmimage("lint", str(clean)).returncode == 0
    findings = vmimage("lint", str(clean), str(broken))
    assert findings.returncode == 1 and "unlisted-file" in findings.stdout and f"{clean}: clean" in findings.stdout
    result = vmimage("lint", "-o", "json", str(broken), str(unreadable))
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert [f["code"] for f in document["packages"][0]["findings"]] == ["unlisted-file"]
    assert document["unreadable"][0]["path"] == str(unreadable)
