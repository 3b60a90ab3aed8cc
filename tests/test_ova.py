"""OVA streaming, manifests and ISO detection."""

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from tests.helpers import inspect_file
from vmimage.descriptor.ova import iter_members, read_ova_descriptor
from vmimage.descriptor.samples import SAMPLES, SampleImage, vmdk_head, write_iso, write_ova, write_ovf
from vmimage.descriptor.source import package_contents, read_image_file
from vmimage.errors import ImageError
from vmimage.review.lint import lint_package

PHOTON = SAMPLES[0]


class CountingReader(io.RawIOBase):
    """A file that counts the bytes read from it, to prove inspect stops early."""

    def __init__(self, path: Path):
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._file.readinto(buffer)
        self.bytes_read += n
        return n

    def fileno(self) -> int:
        return self._file.fileno()

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def close(self) -> None:
        self._file.close()
        super().close()


def tar_with(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_ova_status_matches_its_descriptor(tmp_path):
    ova = write_ova(tmp_path / "photon.ova", PHOTON)
    status = inspect_file(ova)["status"]
    assert status["name"] == "photon"
    assert status["osInfo"] == {"id": "101", "type": "vmwarePhoton64Guest"}
    assert status["capabilities"] == ["nvidia-gpu"]
    assert status["disks"] == [{"name": "disk0", "limit": "16Gi", "requested": "16Gi"}]


def test_inspect_reads_only_up_to_the_manifest_of_a_huge_ova(tmp_path):
    ova = write_ova(tmp_path / "big.ova", PHOTON, disk_bytes=2**30)  # sparse: takes no space
    reader = CountingReader(ova)
    result = read_ova_descriptor(reader, str(ova))
    assert result.name == "big.ovf"
    assert result.manifest is not None and set(result.manifest) == {"big.ovf", "big-disk1.vmdk"}
    assert reader.bytes_read < 64 * 1024


def test_inspect_walks_a_huge_ova_to_its_end_by_seeking(tmp_path):
    """read_image_file (`inspect`, the preview) checks the archive is whole: every header, no data."""
    ova = write_ova(tmp_path / "big.ova", PHOTON, disk_bytes=2**30)
    reader = CountingReader(ova)
    with io.BufferedReader(reader) as stream:
        result = read_ova_descriptor(stream, str(ova), whole=True)
    assert result.name == "big.ovf"
    assert reader.bytes_read < 64 * 1024


@pytest.mark.parametrize("keep", [2**20, 3 * 2**20 + 100, 3 * 2**20 + 600], ids=["in-disk", "padding", "end-blocks"])
def test_inspect_refuses_a_truncated_ova(tmp_path, keep):
    """A cut in the last member's data, its padding or the end blocks: the descriptor and manifest
    read fine (they come first), the walk to the end does not; `lint` says the same."""
    ova = write_ova(tmp_path / "cut.ova", PHOTON, disk_bytes=3 * 2**20 + 100)
    with open(ova, "r+b") as stream:
        disk = [info for info, _ in iter_members(stream, str(ova), seek_past_data=True)][-1]
        stream.truncate(disk.offset_data + keep)
    with pytest.raises(ImageError, match=r"cut.ova: truncated OVA archive"):
        read_image_file(str(ova))
    with pytest.raises(ImageError, match=r"cut.ova: truncated OVA archive"):
        lint_package(str(ova))


def test_listing_a_huge_ova_seeks_past_its_disk(tmp_path):
    ova = write_ova(tmp_path / "big.ova", PHOTON, disk_bytes=2**30)
    reader = CountingReader(ova)
    listed = [(info.name, info.size) for info, _ in iter_members(reader, str(ova), seek_past_data=True)]
    assert [name for name, _ in listed] == ["big.ovf", "big.mf", "big-disk1.vmdk"]
    assert listed[2][1] == 2**30
    assert reader.bytes_read < 64 * 1024


def test_package_contents_names_files_as_an_upload_does(tmp_path):
    ova = write_ova(tmp_path / "photon.ova", PHOTON, disk_bytes=3 * 2**20 + 5)
    contents = package_contents(str(ova))
    assert contents.sizes["photon-disk1.vmdk"] == 3 * 2**20 + 5
    assert set(contents.sizes) == {"photon.ovf", "photon.mf", "photon-disk1.vmdk"}
    assert (contents.descriptor_name, contents.manifest_name) == ("photon.ovf", "photon.mf")
    assert contents.sizes["photon.ovf"] == len(contents.descriptor)
    assert contents.manifest is not None and b"SHA256(photon-disk1.vmdk)=" in contents.manifest

    (tmp_path / "pkg").mkdir()
    ovf = write_ovf(tmp_path / "pkg", PHOTON, disk_bytes=8192)
    beside = package_contents(str(ovf))
    assert beside.sizes == {
        ovf.name: ovf.stat().st_size,
        ovf.with_suffix(".mf").name: ovf.with_suffix(".mf").stat().st_size,
        f"{PHOTON.name}-disk1.vmdk": 8192,
    }
    assert beside.descriptor == ovf.read_bytes()


def test_package_contents_refuses_a_file_held_twice(tmp_path):
    descriptor = PHOTON.descriptor("d.vmdk", 4)
    ova = tar_with(tmp_path / "x.ova", [("x.ovf", descriptor), ("d.vmdk", b"1234"), ("sub/d.vmdk", b"5678")])
    with pytest.raises(ImageError, match="the package holds 'd.vmdk' twice"):
        package_contents(str(ova))


def test_listing_a_truncated_ova_by_seeking_is_an_error(tmp_path):
    ova = write_ova(tmp_path / "cut.ova", PHOTON, disk_bytes=3 * 2**20)
    with open(ova, "r+b") as stream:
        stream.truncate(2**20)  # in the middle of the disk
    with pytest.raises(ImageError, match="truncated OVA archive: 'cut-disk1.vmdk' ends early"):
        package_contents(str(ova))


def test_manifest_inside_ova_is_checked(tmp_path):
    descriptor = PHOTON.descriptor("d.vmdk", 1)
    ova = tar_with(tmp_path / "x.ova", [("x.ovf", descriptor), ("x.mf", b"SHA256(x.ovf)= " + b"0" * 64 + b"\n")])
    with pytest.raises(ImageError, match="SHA256 of 'x.ovf' is .* but the manifest says 0{64}"):
        read_image_file(str(ova))


def test_manifest_without_entry_for_descriptor_is_refused(tmp_path):
    digest = hashlib.sha1(b"other").hexdigest()
    ova = tar_with(
        tmp_path / "x.ova", [("x.ovf", PHOTON.descriptor("d", 1)), ("x.mf", f"SHA1(d.vmdk)= {digest}".encode())]
    )
    with pytest.raises(ImageError, match="the manifest does not list 'x.ovf'"):
        read_image_file(str(ova))


@pytest.mark.parametrize(
    ("line", "reason"),
    [(b"MD5(x.ovf)= 00", "line 1 is not of the form"), (b"SHA256(x.ovf)= abc", "has 64 hex digits, not 3")],
)
def test_malformed_manifest_lines(tmp_path, line, reason):
    ova = tar_with(tmp_path / "x.ova", [("x.ovf", PHOTON.descriptor("d", 1)), ("x.mf", line)])
    with pytest.raises(ImageError, match=reason):
        read_image_file(str(ova))


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_manifest_beside_an_ovf_is_checked_with_every_algorithm(tmp_path, algorithm):
    ovf = write_ovf(tmp_path, PHOTON)
    good = hashlib.new(algorithm, ovf.read_bytes()).hexdigest()
    (tmp_path / "photon-5-sample.mf").write_text(f"{algorithm.upper()}(photon-5-sample.ovf)= {good}\n")
    assert read_image_file(str(ovf)).descriptor is not None
    ovf.write_bytes(ovf.read_bytes().replace(b"Photon OS", b"Photon 0S"))
    with pytest.raises(ImageError, match="corrupt or was changed"):
        read_image_file(str(ovf))


def test_explicit_manifest_option(tmp_path):
    ovf = write_ovf(tmp_path, PHOTON)
    other = tmp_path / "elsewhere.mf"
    other.write_text("SHA256(photon-5-sample.ovf)= " + "1" * 64)
    with pytest.raises(ImageError, match="elsewhere.mf"):
        read_image_file(str(ovf), str(other))


def test_iter_members_yields_every_member_in_order(tmp_path):
    ova = write_ova(tmp_path / "a.ova", PHOTON, disk_bytes=3 * 2**20 + 7)
    with open(ova, "rb") as stream:
        seen = [(info.name, hashlib.sha256(reader.read()).hexdigest()) for info, reader in iter_members(stream, "a")]
    assert [name for name, _ in seen] == ["a.ovf", "a.mf", "a-disk1.vmdk"]
    head = vmdk_head("a-disk1.vmdk", PHOTON.disk_capacity_gib * 2**30)
    assert seen[2][1] == hashlib.sha256(head + bytes(3 * 2**20 + 7 - len(head))).hexdigest()


def test_iso(tmp_path):
    obj = inspect_file(write_iso(tmp_path / "tools.iso"), name="VMware Tools")
    assert obj["status"]["type"] == "ISO"
    assert obj["status"]["name"] == "VMware Tools"
    assert "firmware" not in obj["status"] and obj["status"]["osInfo"] == {} and "disks" not in obj["status"]


def test_file_that_is_not_an_iso(tmp_path):
    fake = tmp_path / "fake.iso"
    fake.write_bytes(b"\0" * 40000)
    with pytest.raises(ImageError, match="not an ISO 9660 or UDF image"):
        read_image_file(str(fake))


def test_sample_image_declares_what_it_says():
    image = SampleImage(name="n", guest_id="rhel9_64Guest", firmware="bios", hardware_version=13, capabilities=("a",))
    data = image.descriptor("n.vmdk", 10)
    assert b"vmx-13" in data and b'vmw:value="bios"' in data and b"rhel9_64Guest" in data
