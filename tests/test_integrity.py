"""What is published is what was declared: manifests cover every file, sha256 pins each source
kind, and a package reaches no file outside itself (no links, no FIFOs)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from providers.library_item import ContentLibraryItemProvider
from tests.test_providers import ITEM, direct_client
from tests.test_reliability import failing_create
from vmimage.descriptor.manifest import MAX_MANIFEST_BYTES, Digest
from vmimage.descriptor.samples import SAMPLES, manifest_text, vmdk_head, write_ovf

pytestmark = pytest.mark.vcsim
PROVIDER_ENV = {"VMIMAGE_HTTP_BACKOFF": "0.01"}
LIBRARY_NAME = "integrity"
PHOTON = SAMPLES[0]


def create(host, library, source: Path, name: str, **extra):
    return host.up(
        ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": name, "source": str(source), **extra}
    )


def refused(host, library, vcsim, source: Path, name: str, **extra) -> str:
    """Why the item was refused; and no item of that name is left behind."""
    inputs = {"library_id": library.id, "name": name, "source": str(source), **extra}
    details = failing_create(host, inputs)
    with direct_client(vcsim) as client:
        assert client.find_items(library.id, name) == []
    return details


def check_failures(host, library, source: Path, name: str, **extra) -> str:
    step = create(host, library, source, name, **extra)
    assert step.op == "failed"
    return " ".join(reason for _, reason in step.checked.failures)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ova_of(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def photon_members(extra_manifest_lines: str = "") -> list[tuple[str, bytes]]:
    disk = vmdk_head("p-disk1.vmdk", 2**30) + bytes(1024)
    descriptor = PHOTON.descriptor("p-disk1.vmdk", len(disk))
    digests = {
        "p.ovf": Digest("SHA256", hashlib.sha256(descriptor).hexdigest()),
        "p-disk1.vmdk": Digest("SHA256", hashlib.sha256(disk).hexdigest()),
    }
    manifest = manifest_text(digests) + extra_manifest_lines.encode()
    return [("p.ovf", descriptor), ("p.mf", manifest), ("p-disk1.vmdk", disk)]


# --- sha256: what it pins, per source kind -----------------------------------------------


def test_a_bare_ovf_without_a_manifest_cannot_declare_sha256(host, library, tmp_path):
    ovf = write_ovf(tmp_path, PHOTON)
    (tmp_path / f"{PHOTON.name}.mf").unlink()
    failures = check_failures(host, library, ovf, "ovf-no-mf", sha256=sha256(ovf))
    assert "a bare .ovf is pinned through its manifest and this one has none" in failures


def test_a_bare_ovf_is_pinned_by_its_manifest(host, library, vcsim, tmp_path):
    ovf = write_ovf(tmp_path, PHOTON)
    manifest = tmp_path / f"{PHOTON.name}.mf"
    # the descriptor's digest, what sha256 used to cover, pins nothing now: refused
    details = refused(host, library, vcsim, ovf, "ovf-descriptor-sha", sha256=sha256(ovf))
    assert f"not the declared sha256 {sha256(ovf)}" in details
    step = create(host, library, ovf, "ovf-pinned", sha256=sha256(manifest))
    assert step.op == "create" and step.outputs["source_sha256"] == sha256(manifest)


def test_a_tampered_disk_beside_a_pinned_ovf_is_refused(host, library, vcsim, tmp_path):
    ovf = write_ovf(tmp_path, PHOTON)
    pinned = sha256(tmp_path / f"{PHOTON.name}.mf")
    disk = tmp_path / f"{PHOTON.name}-disk1.vmdk"
    with open(disk, "r+b") as stream:
        stream.seek(2048)
        stream.write(b"tampered")
    details = refused(host, library, vcsim, ovf, "ovf-tampered", sha256=pinned)
    assert "the file is corrupt or was changed after packing" in details


# --- manifests cover every file ------------------------------------------------------------


def test_a_file_the_manifest_does_not_list_is_refused(host, library, vcsim, tmp_path):
    members = photon_members()
    ova = ova_of(tmp_path / "extra.ova", [*members, ("notes.txt", b"not in the manifest")])
    details = refused(host, library, vcsim, ova, "unlisted")
    assert "the manifest does not list 'notes.txt'" in details


def test_a_manifest_that_omits_the_descriptor_is_refused(host, library, vcsim, tmp_path):
    members = photon_members()
    disk_line = next(line for line in members[1][1].decode().splitlines() if "p-disk1.vmdk" in line)
    members[1] = ("p.mf", (disk_line + "\n").encode())
    details = refused(host, library, vcsim, ova_of(tmp_path / "nodesc.ova", members), "no-descriptor-digest")
    assert "the manifest does not list 'p.ovf'" in details


def test_two_manifests_are_refused(host, library, vcsim, tmp_path):
    members = photon_members()
    sha1 = "SHA1(p-disk1.vmdk)= " + hashlib.sha1(members[2][1]).hexdigest() + "\n"
    ova = ova_of(tmp_path / "two.ova", [members[0], members[1], ("q.mf", sha1.encode()), members[2]])
    details = refused(host, library, vcsim, ova, "two-manifests")
    assert "the package holds 2 manifests ('p.mf', 'q.mf'); keep one" in details


# --- links and special files -----------------------------------------------------------------


def test_a_symlinked_disk_beside_an_ovf_is_refused(host, library, tmp_path):
    ovf = write_ovf(tmp_path, PHOTON)
    disk = tmp_path / f"{PHOTON.name}-disk1.vmdk"
    elsewhere = tmp_path / "elsewhere.vmdk"
    disk.rename(elsewhere)
    disk.symlink_to(elsewhere)
    failures = check_failures(host, library, ovf, "linked-disk")
    assert "is a symbolic link" in failures


def test_a_symlinked_manifest_beside_an_ovf_is_refused(host, library, tmp_path):
    ovf = write_ovf(tmp_path, PHOTON)
    manifest = tmp_path / f"{PHOTON.name}.mf"
    manifest.rename(tmp_path / "real.mf")
    manifest.symlink_to(tmp_path / "real.mf")
    assert "is a symbolic link" in check_failures(host, library, ovf, "linked-manifest")


def vmimage(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmimage", *args], capture_output=True, text=True, timeout=timeout)


def test_inspect_refuses_a_fifo_instead_of_hanging(tmp_path):
    fifo = tmp_path / "x.ova"
    os.mkfifo(fifo)
    result = vmimage("inspect", str(fifo))  # a hang would hit the timeout
    assert result.returncode == 2
    assert "is not a regular file" in result.stderr and "Traceback" not in result.stderr


def test_an_oversized_manifest_beside_an_ovf_is_refused_without_reading_it(tmp_path):
    ovf = write_ovf(tmp_path, PHOTON)
    with open(tmp_path / f"{PHOTON.name}.mf", "ab") as stream:
        stream.truncate(MAX_MANIFEST_BYTES * 64)  # a sparse 64 MiB manifest
    result = vmimage("inspect", str(ovf))
    assert result.returncode == 2
    assert "over the" in result.stderr and "limit" in result.stderr


def test_the_same_package_with_nothing_wrong_is_accepted(host, library, tmp_path):
    """The baseline of the manifest tests: they fail for their one defect only."""
    step = create(host, library, ova_of(tmp_path / "ok.ova", photon_members()), "complete")
    assert step.op == "create"
    assert sorted(f["name"] for f in step.outputs["files"]) == ["p-disk1.vmdk", "p.mf", "p.ovf"]
