"""The `vmimage` command as a user runs it: real processes, exit codes, stdout and stderr."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURES
from vmimage.contract.schema import schema_errors
from vmimage.descriptor.samples import SAMPLES, write_iso, write_ova, write_ovf

TTYLINUX = str(FIXTURES / "ovf" / "ttylinux-pc_i486-16.1.ovf")
ITEM = "e1968c25-dd84-4506-8dc7-9beacb6b688e"


def vmimage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmimage", *args], capture_output=True, text=True, timeout=60)


def test_id():
    result = vmimage("id", ITEM)
    assert (result.returncode, result.stdout, result.stderr) == (0, "vmi-0a0044d7c690bcbea\n", "")


def test_id_of_a_non_uuid():
    result = vmimage("id", "photon")
    assert result.returncode == 2
    assert result.stderr == "error: 'photon': not a UUID (expected e.g. e1968c25-dd84-4506-8dc7-9beacb6b688e)\n"


def test_inspect_yaml_is_the_whole_object():
    result = vmimage("inspect", TTYLINUX, "--item-id", ITEM.upper(), "-n", "default", "--name", "ttylinux")
    assert result.returncode == 0, result.stderr
    obj = yaml.safe_load(result.stdout)
    assert obj["apiVersion"] == "vmoperator.vmware.com/v1alpha5"
    assert obj["kind"] == "VirtualMachineImage"
    assert obj["metadata"]["name"] == "vmi-0a0044d7c690bcbea"
    assert obj["metadata"]["namespace"] == "default"
    assert obj["spec"]["providerRef"]["kind"] == "ContentLibraryItem"
    assert obj["status"]["providerItemID"] == ITEM
    assert obj["status"]["name"] == "ttylinux"
    assert schema_errors(obj) == []


def test_inspect_cluster_json_with_capabilities(tmp_path):
    ova = write_ova(tmp_path / "photon.ova", SAMPLES[0])
    result = vmimage("inspect", str(ova), "--cluster", "--capability", "sriov", "-o", "json")
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["kind"] == "ClusterVirtualMachineImage"
    assert "namespace" not in obj["metadata"]
    assert obj["status"]["capabilities"] == ["nvidia-gpu", "sriov"]  # the descriptor's property and the flag
    assert obj["metadata"]["labels"]["capability.image.vmoperator.vmware.com/sriov"] == "true"
    assert schema_errors(obj) == []


def test_inspect_table_has_the_reference_columns(tmp_path):
    ova = write_ova(tmp_path / "photon.ova", SAMPLES[0])
    result = vmimage("inspect", str(ova), "--item-id", ITEM, "--name", "Photon OS 5.0", "-o", "table")
    header, row = result.stdout.splitlines()
    columns = ["NAME", "DISPLAY NAME", "TYPE", "IMAGE VERSION", "OS NAME", "OS VERSION", "HARDWARE VERSION"]
    columns.append("CAPABILITIES")  # a VirtualMachineImage's last printer column, as kubectl prints it
    starts = [header.index(column) for column in columns]
    assert starts == sorted(starts)
    cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    # VM Operator's printer columns: OS NAME is the guest id, and it sets no OS version
    photon = ["vmi-0a0044d7c690bcbea", "Photon OS 5.0", "OVF", "5.0", "vmwarePhoton64Guest", "", "19"]
    assert cells == [*photon, '["nvidia-gpu"]']
    cluster = vmimage("inspect", str(ova), "--cluster", "-o", "table").stdout.splitlines()[0]
    assert "CAPABILITIES" not in cluster  # a ClusterVirtualMachineImage has no such column...
    assert vmimage("inspect", str(ova), "--cluster", "-o", "wide").stdout.splitlines()[0].endswith("CAPABILITIES")


def test_inspect_iso(tmp_path):
    iso = write_iso(tmp_path / "tools.iso")
    obj = yaml.safe_load(vmimage("inspect", str(iso)).stdout)
    assert obj["status"]["type"] == "ISO" and obj["status"]["name"] == "tools"


def test_crds_prints_two_definitions():
    result = vmimage("crds")
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["spec"]["names"]["kind"] for d in documents] == ["VirtualMachineImage", "ClusterVirtualMachineImage"]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: d / "missing.ova", "No such file or directory"),
        (lambda d: (d / "x.txt").write_text("hi") and d / "x.txt", "unknown image type '.txt'"),
        (lambda d: (d / "x.ovf").write_bytes(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>") and d / "x.ovf", "DTD"),
        (lambda d: (d / "x.ova").write_bytes(b"garbage" * 100) and d / "x.ova", "OVA"),
        (lambda d: (d / "x.iso").write_bytes(b"\0" * 100) and d / "x.iso", "not an ISO 9660"),
    ],
    ids=["missing", "extension", "dtd", "garbage-ova", "fake-iso"],
)
def test_bad_files_get_one_line_naming_the_file_and_status_2(tmp_path, make, fragment):
    path = make(tmp_path)
    result = vmimage("inspect", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}")
    assert fragment in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_invalid_capability_and_item_id_are_named():
    result = vmimage("inspect", TTYLINUX, "--capability", "has space")
    assert result.returncode == 2 and result.stderr.startswith("error: --capability 'has space': ")
    result = vmimage("inspect", TTYLINUX, "--item-id", "nope")
    assert result.returncode == 2 and result.stderr.startswith("error: --item-id 'nope': not a UUID")


def test_namespace_and_cluster_exclude_each_other():
    result = vmimage("inspect", TTYLINUX, "--cluster", "-n", "x")
    assert result.returncode == 2 and "exclude each other" in result.stderr


def test_installed_console_script():
    script = Path(sys.executable).parent / "vmimage"
    result = subprocess.run([str(script), "id", ITEM], capture_output=True, text=True, timeout=60)
    assert result.stdout == "vmi-0a0044d7c690bcbea\n"


def test_inspect_of_a_truncated_ova_is_one_line_and_status_2(tmp_path):
    """The descriptor and manifest come first and read fine: the cut disk is found by walking the headers."""
    ova = write_ova(tmp_path / "cut.ova", SAMPLES[0], disk_bytes=3 * 2**20)
    with open(ova, "r+b") as stream:
        stream.truncate(2**20)
    result = vmimage("inspect", str(ova))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {ova}: truncated OVA archive: 'cut-disk1.vmdk' ends early\n"
    assert vmimage("lint", str(ova)).stderr == result.stderr


def test_lint_and_inspect_wide_print_the_sha256_to_pin(tmp_path):
    """An .ova or .iso pins itself; a bare .ovf pins its manifest; `inspect` hashes only with -o wide."""
    ova = write_ova(tmp_path / "photon.ova", SAMPLES[0], disk_bytes=2**20 + 3)
    iso = write_iso(tmp_path / "tools.iso")
    (tmp_path / "pkg").mkdir()
    ovf = write_ovf(tmp_path / "pkg", SAMPLES[0])
    lines = vmimage("lint", str(ova), str(iso), str(ovf)).stdout.splitlines()
    for path, pinned in ((ova, ova), (iso, iso)):
        line = f'  sha256: "{hashlib.sha256(pinned.read_bytes()).hexdigest()}"'
        assert lines[lines.index(line) - 1].startswith(f"{path}: ")
    manifest = ovf.with_suffix(".mf")
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert f'  sha256: "{digest}"  # of {manifest.name}, the manifest that pins the descriptor and disks' in lines
    assert yaml.safe_load(lines[1]) == {"sha256": hashlib.sha256(ova.read_bytes()).hexdigest()}  # pastes as is
    document = json.loads(vmimage("lint", "-o", "json", str(ova)).stdout)
    assert document["packages"][0]["sha256"] == hashlib.sha256(ova.read_bytes()).hexdigest()

    wide = vmimage("inspect", str(ova), "-o", "wide").stdout.splitlines()
    assert wide[-1] == f'sha256: "{hashlib.sha256(ova.read_bytes()).hexdigest()}"'
    assert "sha256" not in vmimage("inspect", str(ova), "-o", "table").stdout
    manifest.unlink()  # nothing could pin the disks: no line to paste, and the no-manifest finding says why
    bare = vmimage("lint", str(ovf)).stdout
    assert "no-manifest" in bare and 'sha256: "' not in bare
