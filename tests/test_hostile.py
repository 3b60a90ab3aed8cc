"""Hostile input: a clear ImageError, never a crash, a hang or a leak."""

import contextlib
import io
import random
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from vmimage.descriptor.ova import read_ova_descriptor
from vmimage.descriptor.ovf import MAX_DESCRIPTOR_BYTES, parse_descriptor
from vmimage.descriptor.samples import SAMPLES, write_ova
from vmimage.descriptor.source import read_image_file
from vmimage.errors import ImageError

ENVELOPE = b'<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">&{}</Envelope>'
DESCRIPTORS = sorted((FIXTURES / "ovf").glob("*.ovf")) + sorted((FIXTURES / "ovf-more").glob("*.ovf"))
SMALL_DESCRIPTORS = [p for p in DESCRIPTORS if p.stat().st_size < 40_000]

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Envelope>&lol3;</Envelope>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Envelope [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Envelope><Info>&secret;</Info></Envelope>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Envelope SYSTEM "http://example.invalid/ovf.dtd"><Envelope/>"""


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (BILLION_LAUGHS, "DTD"),
        (XXE, "DTD"),
        (EXTERNAL_DTD, "DTD"),
        (b"\x89PNG\r\n\x1a\n\0\0\0", "not well-formed XML"),
        (b"", "not well-formed XML"),
        (b"<Envelope><VirtualSystem>", "not well-formed XML"),
        (b"<?xml version='1.0' encoding='klingon'?><Envelope/>", "XML"),
    ],
)
def test_hostile_descriptors_are_refused(data, reason):
    with pytest.raises(ImageError, match=reason) as caught:
        parse_descriptor(data, "evil.ovf")
    assert caught.value.source == "evil.ovf"


def test_oversized_descriptor_file_is_refused_without_reading_it_all(tmp_path):
    big = tmp_path / "big.ovf"
    with open(big, "wb") as out:
        out.truncate(MAX_DESCRIPTOR_BYTES * 4)
    with pytest.raises(ImageError, match="over the .* byte limit"):
        read_image_file(str(big))


def _tar(path: Path, build) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as archive:
        build(archive)
    return path


def _add(archive: tarfile.TarFile, name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, target: str = ""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


DESCRIPTOR = SAMPLES[0].descriptor("disk.vmdk", 1)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda a: _add(a, "/etc/evil.ovf", DESCRIPTOR), "absolute path"),
        (lambda a: _add(a, "../../evil.ovf", DESCRIPTOR), "contains '..'"),
        (lambda a: _add(a, "sub/../../x.ovf", DESCRIPTOR), "contains '..'"),
        (lambda a: _add(a, "x.ovf", kind=tarfile.SYMTYPE, target="/etc/passwd"), "is a link"),
        (lambda a: _add(a, "x.ovf", kind=tarfile.LNKTYPE, target="y"), "is a link"),
        (lambda a: _add(a, "x.ovf", kind=tarfile.CHRTYPE), "not a regular file"),
        (lambda a: _add(a, "x.ovf", kind=tarfile.FIFOTYPE), "not a regular file"),
        (lambda a: _add(a, "dir.ovf", kind=tarfile.DIRTYPE), "not a regular file"),
        (lambda a: (_add(a, "x.ovf", DESCRIPTOR), _add(a, "../x.mf", b"")), "contains '..'"),
        (lambda a: _add(a, "disk.vmdk", b"\0" * 10), "not the .ovf descriptor"),
        (lambda a: None, "empty"),
    ],
)
def test_hostile_ova_members(tmp_path, build, reason):
    with pytest.raises(ImageError, match=reason):
        read_image_file(str(_tar(tmp_path / "evil.ova", build)))


def test_descriptor_member_over_the_size_bound(tmp_path):
    ova = tmp_path / "x.ova"
    with open(ova, "wb") as out:
        info = tarfile.TarInfo("x.ovf")
        info.size = MAX_DESCRIPTOR_BYTES + 1
        out.write(info.tobuf(format=tarfile.GNU_FORMAT))
        out.truncate(MAX_DESCRIPTOR_BYTES + 4096)
    with pytest.raises(ImageError, match="over the .* byte limit"):
        read_image_file(str(ova))


@pytest.mark.parametrize("cut", [100, 512, 700, 1500, 2600])
def test_truncated_ova(tmp_path, cut):
    ova = write_ova(tmp_path / "t.ova", SAMPLES[0])
    ova.write_bytes(ova.read_bytes()[:cut])
    with pytest.raises(ImageError, match="truncated|not a valid OVA") as caught:
        read_image_file(str(ova))
    assert str(ova) in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 a zip file", bytes(range(256)) * 8, b"\x1f\x8b\x08gzip"])
def test_not_a_tar(tmp_path, data):
    ova = tmp_path / "n.ova"
    ova.write_bytes(data)
    with pytest.raises(ImageError, match="OVA"):
        read_image_file(str(ova))


@pytest.mark.parametrize("path", ["missing.ova", "."], ids=["missing", "directory"])
def test_unreadable_paths(tmp_path, path):
    target = tmp_path / path if path != "." else tmp_path / "d.ovf"
    if path == ".":
        target.mkdir()
    with pytest.raises(ImageError) as caught:
        read_image_file(str(target))
    assert str(target) in str(caught.value)


# --- property-based: only ImageError may come out, whatever the bytes ---

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _expect_only_image_error(call):
    with contextlib.suppress(ImageError):
        call()


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_as_descriptor(data):
    _expect_only_image_error(lambda: parse_descriptor(data, "fuzz.ovf"))


@FUZZ
@given(st.binary(max_size=8192))
def test_random_bytes_as_ova(data):
    _expect_only_image_error(lambda: read_ova_descriptor(io.BytesIO(data), "fuzz.ova"))


@FUZZ
@given(st.sampled_from(SMALL_DESCRIPTORS), st.randoms(use_true_random=False), st.integers(1, 20))
def test_mutated_fixture_descriptors(path, rng: random.Random, n_mutations):
    data = bytearray(path.read_bytes())
    for _ in range(n_mutations):
        position = rng.randrange(len(data))
        action = rng.choice(("flip", "delete", "insert", "truncate"))
        if action == "flip":
            data[position] = rng.randrange(256)
        elif action == "delete":
            del data[position : position + rng.randrange(1, 64)]
        elif action == "insert":
            data[position:position] = rng.choice(
                [b"<", b">", b"&", b'"', b"${x}", b"vmx-99", b"\xff\xfe", b"<!DOCTYPE"]
            )
        else:
            del data[position:]
        if not data:
            break
    _expect_only_image_error(lambda: parse_descriptor(bytes(data), path.name))


@FUZZ
@given(st.randoms(use_true_random=False), st.integers(1, 8))
def test_mutated_ova_archives(tmp_path_factory, rng: random.Random, n_mutations):
    ova = write_ova(tmp_path_factory.mktemp("fuzz") / "m.ova", SAMPLES[1])
    data = bytearray(ova.read_bytes())
    for _ in range(n_mutations):
        position = rng.randrange(min(len(data), 3 * 1024))  # headers, descriptor and manifest live there
        data[position] = rng.randrange(256)
    _expect_only_image_error(lambda: read_ova_descriptor(io.BytesIO(bytes(data)), "m.ova"))


def test_a_descriptor_with_too_many_elements_is_refused_early():
    base = SAMPLES[0].descriptor("d.vmdk", 10)
    flood = base.replace(b"</VirtualSystem>", b"<Info/>" * 200_000 + b"</VirtualSystem>", 1)
    assert len(flood) < MAX_DESCRIPTOR_BYTES  # within the byte cap: the element cap is what stops it
    with pytest.raises(ImageError, match="over 50000 XML elements"):
        parse_descriptor(flood, "flood.ovf")


HUGE = "9" * 5000  # past Python's 4,300-digit limit for int() of a string


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'ovf:capacityAllocationUnits="byte * 2^30"', f'ovf:capacityAllocationUnits="byte * {HUGE}"'.encode()),
        (b'ovf:capacityAllocationUnits="byte * 2^30"', f'ovf:capacityAllocationUnits="byte * 2^{HUGE}"'.encode()),
        (b'ovf:capacityAllocationUnits="byte * 2^30"', b'ovf:capacityAllocationUnits="byte * 1024^64"'),
        (b'ovf:capacity="16"', f'ovf:capacity="{HUGE}"'.encode()),
        (b"vmx-19", f"vmx-{HUGE}".encode()),
    ],
    ids=["huge-multiplier", "huge-exponent", "zebibytes", "huge-capacity", "huge-hardware-version"],
)
def test_hostile_numbers_are_unknown_values_not_crashes(old, new):
    from datetime import UTC, datetime

    from vmimage.contract.status import item_status

    data = SAMPLES[0].descriptor("d.vmdk", 10)
    assert old in data
    evil = data.replace(old, new, 1)
    descriptor = parse_descriptor(evil, "evil.ovf")
    assert descriptor.config is None or all(disk.capacity_bytes < 2**63 for disk in descriptor.config.disks)
    image = item_status(
        evil, "item x:evil.ovf", iso=False, name="evil", now=datetime.now(UTC), item_id="x", content_version="1"
    )
    status = image.status.wire()
    assert status["name"] == "evil"  # an object can be written: every number became a string, nothing, or a refusal
    refused = b"capacity=" in old  # govmomi refuses a capacity it cannot parse: VM Operator's NotSynced
    assert (image.sync_error is not None) is refused and (not refused or "invalid capacity" in image.sync_error)
    assert ("hardwareVersion" not in status) is (b"vmx" in old or refused)  # vmx-<5,000 digits> is no version
    assert len(str(status)) < 2000


UNICODE_DIGITS = ["²", "١٢", "１６", "߁"]  # superscript, Arabic-Indic, full-width, NKo: str.isdigit() says yes
NUMBER_FIELDS = [
    ('ovf:size="{size}"', 'ovf:size="{digits}"'),
    ('ovf:capacity="16"', 'ovf:capacity="{digits}"'),
    ('ovf:populatedSize="{size}"', 'ovf:populatedSize="{digits}"'),
    ('byte * 2^30"', 'byte * 2^{digits}"'),
    ('OperatingSystemSection ovf:id="36"', 'OperatingSystemSection ovf:id="{digits}"'),
    ("vmx-19", "vmx-{digits}"),
    ("<rasd:InstanceID>1</rasd:InstanceID>", "<rasd:InstanceID>{digits}</rasd:InstanceID>"),
    ("<rasd:ResourceType>17</rasd:ResourceType>", "<rasd:ResourceType>{digits}</rasd:ResourceType>"),
    (
        "<rasd:ResourceType>17</rasd:ResourceType>",
        "<rasd:ResourceType>17</rasd:ResourceType><rasd:AddressOnParent>{digits}</rasd:AddressOnParent>",
    ),
]


def unicode_digit_cases():
    for old, new in NUMBER_FIELDS:
        for digits in UNICODE_DIGITS:
            yield pytest.param(old, new, digits, id=f"{old.split('=')[0].split('>')[0][:24]}-{digits}")


@pytest.mark.parametrize(("old", "new", "digits"), list(unicode_digit_cases()))
def test_unicode_digits_in_any_number_are_unknown_values_everywhere(tmp_path, old, new, digits):
    """Every way a descriptor is read: status (a synced item), inspect, lint and the provider's check."""
    import subprocess
    import sys
    from datetime import UTC, datetime

    from providers.library_item import ContentLibraryItemProvider
    from tests.test_integrity import ova_of
    from vmimage.contract.status import item_status

    disk = b"\0" * 512
    data = SAMPLES[0].descriptor("d.vmdk", len(disk)).decode()
    old, new = old.format(size=len(disk)), new.format(digits=digits)
    assert old in data, old
    evil = data.replace(old, new, 1).encode()
    image = item_status(
        evil, "item x:evil.ovf", iso=False, name="evil", now=datetime.now(UTC), item_id="x", content_version="1"
    )  # a synced item: an image object with a status (Ready or NotReady), never an exception
    assert image.status.wire()["name"] == "evil"
    ova = ova_of(tmp_path / "evil.ova", [("evil.ovf", evil), ("d.vmdk", disk)])
    for command in (["inspect", str(ova)], ["lint", str(ova)]):
        done = subprocess.run([sys.executable, "-m", "vmimage", *command], capture_output=True, text=True, timeout=60)
        assert done.returncode in (0, 1, 2), (command, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr and "ValueError" not in done.stderr, done.stderr
        if done.returncode == 2:
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    checked = ContentLibraryItemProvider().check({}, {"name": "evil", "library_id": "lib", "source": str(ova)})
    for failure in checked.failures or []:
        assert "\n" not in failure.reason and "Traceback" not in failure.reason
