"""Small, valid sample images (OVA, OVF, ISO), written without any tool but Python.

Used by `scripts/make-samples` for the dev stack and the README's demo, by the tests,
and by the benchmarks (whose disks are sparse files: multi-GB OVAs that take no space).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

from vmimage.descriptor.manifest import Digest

_ZERO_CHUNK = bytes(2**20)


@dataclass(frozen=True)
class SampleImage:
    """What a sample descriptor declares."""

    name: str
    guest_id: str = "vmwarePhoton64Guest"
    os_version: str | None = None
    product: str = "Photon OS"
    vendor: str = "VMware Inc."
    version: str = "5.0"
    full_version: str = "5.0.0"
    hardware_version: int = 19
    firmware: str = "efi"
    disk_capacity_gib: int = 16
    properties: dict[str, str] = field(default_factory=lambda: {"hostname": "photon", "user-data": ""})
    capabilities: tuple[str, ...] = ()

    def descriptor(self, disk_name: str, disk_bytes: int) -> bytes:
        """An OVF 1.x descriptor with one disk, the way ovftool writes them."""
        props = dict(self.properties)
        if self.capabilities:
            props["capabilities.image.vmoperator.vmware.com"] = ",".join(self.capabilities)
        property_xml = "".join(
            f'\n      <Property ovf:key={quoteattr(k)} ovf:type="string" ovf:userConfigurable='
            f'"{"false" if k.startswith("capabilities.") else "true"}" ovf:value={quoteattr(v)}/>'
            for k, v in props.items()
        )
        os_version = f" ovf:version={quoteattr(self.os_version)}" if self.os_version else ""
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
  xmlns:vmw="http://www.vmware.com/schema/ovf"
  xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
    <File ovf:href={quoteattr(disk_name)} ovf:id="file1" ovf:size="{disk_bytes}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{self.disk_capacity_gib}" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1"
      ovf:fileRef="file1" ovf:populatedSize="{disk_bytes}"
      ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id={quoteattr(self.name)}>
    <Info>A virtual machine</Info>
    <Name>{self.name}</Name>
    <OperatingSystemSection ovf:id="36"{os_version} vmw:osType={quoteattr(self.guest_id)}>
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>vmx-{self.hardware_version:02d}</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:ElementName>disk0</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value={quoteattr(self.firmware)}/>
    </VirtualHardwareSection>
    <ProductSection>
      <Info>Information about the installed software</Info>
      <Product>{self.product}</Product>
      <Vendor>{self.vendor}</Vendor>
      <Version>{self.version}</Version>
      <FullVersion>{self.full_version}</FullVersion>{property_xml}
    </ProductSection>
  </VirtualSystem>
</Envelope>
""".encode()


_SECTOR = 512


def vmdk_head(disk_name: str, capacity_bytes: int) -> bytes:
    """The first two sectors of a streamOptimized VMDK: the sparse extent header and the descriptor.

    vCenter (and govmomi's simulator) read these to accept a disk upload; what follows
    them in a sample is zeros, which stand for an empty disk's grains.
    """
    sectors = capacity_bytes // _SECTOR
    header = struct.pack(
        "<IIIqQQQIQQQ?BBBBH433x",
        0x564D444B,  # "KDMV"
        3,  # version
        0x30001,  # valid new-line detection, compressed grains, markers
        sectors,  # capacity, in sectors
        128,  # grain size, in sectors
        1,  # descriptor offset
        1,  # descriptor size, in sectors
        512,  # grain table entries per grain table
        0,  # redundant grain directory offset
        0xFFFFFFFFFFFFFFFF,  # grain directory at the end of the stream
        128,  # overhead, in sectors
        False,  # unclean shutdown
        ord("\n"),
        ord(" "),
        ord("\r"),
        ord("\n"),
        1,  # deflate
    )
    descriptor = (
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        'createType="streamOptimized"\n\n'
        f'RW {sectors} SPARSE "{disk_name}"\n\n'
        'ddb.adapterType = "lsilogic"\nddb.virtualHWVersion = "4"\n'
    ).encode()
    return header + descriptor.ljust(_SECTOR, b"\0")


def _sha256_of_disk(head: bytes, n_bytes: int) -> str:
    """SHA-256 of ``head`` followed by zeros up to ``n_bytes`` in all."""
    hasher = hashlib.sha256(head)
    remaining = n_bytes - len(head)
    while remaining:
        chunk = _ZERO_CHUNK[: min(remaining, len(_ZERO_CHUNK))]
        hasher.update(chunk)
        remaining -= len(chunk)
    return hasher.hexdigest()


def manifest_text(digests: dict[str, Digest]) -> bytes:
    return "".join(f"{d.algorithm}({name})= {d.hexdigest}\n" for name, d in digests.items()).encode()


def write_ova(
    path: Path, image: SampleImage, disk_bytes: int = 4096, manifest: bool = True, hash_disk: bool = True
) -> Path:
    """An OVA: descriptor, manifest, then a disk of ``disk_bytes``: a VMDK head and zeros written as a hole.

    The disk's zeros are never written, so a multi-GB OVA costs no disk space; the
    manifest lists the true SHA-256 of every member (of the descriptor only when
    ``hash_disk`` is false, which spares hashing tens of GB of zeros).
    """
    stem = path.stem
    disk_name = f"{stem}-disk1.vmdk"
    descriptor_name = f"{stem}.ovf"
    descriptor = image.descriptor(disk_name, disk_bytes)
    head = vmdk_head(disk_name, image.disk_capacity_gib * 2**30)[:disk_bytes]
    digests = {descriptor_name: Digest("SHA256", hashlib.sha256(descriptor).hexdigest())}
    if hash_disk:
        digests[disk_name] = Digest("SHA256", _sha256_of_disk(head, disk_bytes))
    with open(path, "wb") as out:
        _add_member(out, descriptor_name, descriptor)
        if manifest:
            _add_member(out, f"{stem}.mf", manifest_text(digests))
        header = tarfile.TarInfo(disk_name)
        header.size = disk_bytes
        out.write(header.tobuf(format=tarfile.PAX_FORMAT))
        out.write(head)
        out.seek(disk_bytes - len(head) + (-disk_bytes % tarfile.BLOCKSIZE), io.SEEK_CUR)
        out.write(bytes(2 * tarfile.BLOCKSIZE))  # end-of-archive marker
        end = out.tell()
        out.write(bytes(-end % tarfile.RECORDSIZE))
    return path


def _add_member(out: io.BufferedWriter, name: str, data: bytes) -> None:
    header = tarfile.TarInfo(name)
    header.size = len(data)
    header.mode = 0o644
    out.write(header.tobuf(format=tarfile.PAX_FORMAT))
    out.write(data)
    out.write(bytes(-len(data) % tarfile.BLOCKSIZE))


def write_ovf(directory: Path, image: SampleImage, disk_bytes: int = 4096) -> Path:
    """An unpacked OVF package: descriptor, manifest and disk side by side."""
    disk_name = f"{image.name}-disk1.vmdk"
    descriptor = image.descriptor(disk_name, disk_bytes)
    path = directory / f"{image.name}.ovf"
    path.write_bytes(descriptor)
    head = vmdk_head(disk_name, image.disk_capacity_gib * 2**30)[:disk_bytes]
    with open(directory / disk_name, "wb") as disk:
        disk.write(head)
        disk.truncate(disk_bytes)
    digests = {
        path.name: Digest("SHA256", hashlib.sha256(descriptor).hexdigest()),
        disk_name: Digest("SHA256", _sha256_of_disk(head, disk_bytes)),
    }
    (directory / f"{image.name}.mf").write_bytes(manifest_text(digests))
    return path


def write_iso(path: Path, volume_id: str = "SAMPLE") -> Path:
    """A minimal ISO 9660 image: system area, a primary volume descriptor and a terminator."""
    sector = 2048
    primary = bytearray(sector)
    primary[0:6] = b"\x01CD001"
    primary[6] = 1
    primary[40:72] = volume_id.upper().encode("ascii")[:32].ljust(32)
    terminator = bytearray(sector)
    terminator[0:7] = b"\xffCD001\x01"
    path.write_bytes(bytes(16 * sector) + bytes(primary) + bytes(terminator))
    return path


SAMPLES = (
    SampleImage(name="photon-5-sample", capabilities=("nvidia-gpu",)),
    SampleImage(
        name="ubuntu-24.04-sample",
        guest_id="ubuntu64Guest",
        os_version="24.04",
        product="Ubuntu Server",
        vendor="Canonical",
        version="24.04",
        full_version="24.04.1 LTS",
        hardware_version=21,
        disk_capacity_gib=10,
        properties={"instance-id": "id-ovf", "hostname": "ubuntu", "user-data": ""},
    ),
)


def write_samples(directory: Path, overwrite: bool = True) -> list[Path]:
    """The dev stack's images: two OVAs and an ISO; the paths written. With ``overwrite`` false,
    a sample already there is kept (it may be a newer version a user wrote on purpose).

    Each is written beside its place and renamed into it: a stack reading the old one never
    meets half a file, and a link in its place is replaced, not written through (--force
    wrote over the file a user had linked there)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, write in [
        *((f"{image.name}.ova", lambda path, image=image: write_ova(path, image)) for image in SAMPLES),
        ("tools-sample.iso", lambda path: write_iso(path, "TOOLS")),
    ]:
        path = directory / name
        if overwrite or not (path.exists() or path.is_symlink()):
            with tempfile.TemporaryDirectory(dir=directory, prefix=".make-samples-") as scratch:
                write(Path(scratch) / name)  # the same file name: an OVA's members are named after it
                os.replace(Path(scratch) / name, path)
            written.append(path)
    return written
