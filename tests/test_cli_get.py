"""`vmimage get` and `vmimage resolve`, from a file, a cluster and vCenter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from providers.content_library import ContentLibraryProvider
from providers.library_item import ContentLibraryItemProvider
from tests.engine import provider_host
from tests.helpers import inspect_file
from tests.test_providers import ITEM, LIBRARY, PASSWORD, vsphere_config
from vmimage.cluster.kube import ImageObjects, KubeTarget
from vmimage.descriptor.samples import SAMPLES, write_ova

ITEM_A = "e1968c25-dd84-4506-8dc7-9beacb6b688e"
ITEM_B = "0c6c4b4e-7a4f-4f65-9a0b-6a1d3e0f2a11"


def vmimage(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "vmimage", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory, fixtures) -> Path:
    """A cluster-wide Photon, the same display name in team-a (Windows), a GPU Ubuntu in team-a."""
    photon = inspect_file(
        fixtures / "ovf-more" / "photon5-govmomi.ovf",
        name="Photon OS 5.0",
        item_id=ITEM_A,
        cluster=True,
        capabilities=["cloud-init"],
    )
    windows = inspect_file(
        fixtures / "ovf-more" / "windows2019-efi-simplevm.ovf", name="Photon OS 5.0", item_id=ITEM_B, namespace="team-a"
    )
    ubuntu = inspect_file(
        fixtures / "ovf-more" / "ubuntu-24.10-cloudimg.ovf",
        name="Ubuntu 24.10",
        item_id="5f0d7a52-3c1e-4f8b-9d2a-7e6b5c4d3e2f",
        namespace="team-a",
        capabilities=["nvidia-gpu"],
    )
    path = tmp_path_factory.mktemp("snapshot") / "images.yaml"
    path.write_text(yaml.safe_dump_all([photon, windows, ubuntu]))
    return path


def rows(output: str) -> list[list[str]]:
    return [line.split("   ") for line in output.strip().splitlines()]


def test_get_cluster_images(snapshot):
    result = vmimage("get", "cvmi", "--from-file", str(snapshot))
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.strip().splitlines()
    assert header.split()[:2] == ["NAME", "DISPLAY"] and len(lines) == 1
    assert lines[0].startswith("vmi-0a0044d7c690bcbea") and "Photon OS 5.0" in lines[0]


def test_get_namespaced_images_with_selectors(snapshot):
    linux = vmimage(
        "get",
        "vmi",
        "-n",
        "team-a",
        "-l",
        "os.image.vmoperator.vmware.com/type=ubuntu64Guest",
        "-o",
        "wide",
        "--from-file",
        str(snapshot),
    )
    assert linux.returncode == 0 and "Ubuntu 24.10" in linux.stdout and "Photon" not in linux.stdout
    assert "nvidia-gpu" in linux.stdout and "cloud-init" not in linux.stdout  # -o wide adds capabilities
    gpu = vmimage(
        "get", "vmi", "-A", "-l", "capability.image.vmoperator.vmware.com/nvidia-gpu", "--from-file", str(snapshot)
    )
    assert gpu.stdout.splitlines()[0].startswith("NAMESPACE") and len(gpu.stdout.splitlines()) == 2
    not_windows = vmimage(
        "get",
        "vmi",
        "-A",
        "-l",
        "os.image.vmoperator.vmware.com/type notin (windows2019srv_64Guest)",
        "-o",
        "json",
        "--from-file",
        str(snapshot),
    )
    assert [i["status"]["name"] for i in json.loads(not_windows.stdout)["items"]] == ["Ubuntu 24.10"]
    none = vmimage("get", "vmi", "-n", "team-b", "--from-file", str(snapshot))
    assert none.returncode == 0 and none.stdout == "" and "No resources found in team-b namespace." in none.stderr


def test_resolve(snapshot):
    namespaced = vmimage("resolve", "Photon OS 5.0", "-n", "team-a", "--from-file", str(snapshot))
    assert namespaced.stdout.startswith("VirtualMachineImage/vmi-")  # namespace precedence
    cluster = vmimage("resolve", "Photon OS 5.0", "-n", "team-b", "-o", "json", "--from-file", str(snapshot))
    assert json.loads(cluster.stdout) == {
        "imageName": "vmi-0a0044d7c690bcbea",
        "image": {"kind": "ClusterVirtualMachineImage", "name": "vmi-0a0044d7c690bcbea"},
    }
    strict = vmimage("resolve", "Photon OS 5.0", "-n", "team-a", "--strict", "--from-file", str(snapshot))
    assert strict.returncode == 1
    assert strict.stderr == 'error: multiple VM images exist for "Photon OS 5.0" in namespace and cluster scope\n'
    missing = vmimage("resolve", "CentOS", "--from-file", str(snapshot))
    assert (missing.returncode, missing.stderr) == (
        1,
        'error: no VM image exists for "CentOS" in namespace or cluster scope\n',
    )


def test_resolve_refuses_an_image_that_is_not_security_compliant_as_the_webhook_does(fixtures):
    record = fixtures / "vm-operator" / "security-policy" / "photon-ova.namespaced.vm-operator.v1alpha5.json"
    refused = vmimage("resolve", "photon-ova-namespaced", "-n", "team-a", "--from-file", str(record))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(
        "error: VM in namespace team-a: its image vmi-62001e532b7ff0085 (photon-ova-namespaced) is not security "
        "compliant (Ready False, VirtualMachineImageProviderSecurityNotCompliant: Provider item is not security "
        "compliant)"
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("a: [", "not valid YAML or JSON"),
        ("- 1\n- 2\n", "expected image objects"),
        ("kind: VirtualMachineImage\nmetadata: {}\n", "without metadata.name"),
    ],
)
def test_bad_snapshot_files(tmp_path, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    result = vmimage("get", "vmi", "--from-file", str(path))
    assert result.returncode == 2 and result.stderr.startswith(f"error: {path}: ") and fragment in result.stderr


def test_bad_selector():
    result = vmimage("get", "vmi", "-l", "a in b", "--from-file", "/dev/null")
    assert result.returncode == 2 and "cannot parse 'a in b'" in result.stderr


def test_get_and_resolve_from_a_cluster(kube, snapshot):
    images = yaml.safe_load_all(snapshot.read_text())
    with ImageObjects(KubeTarget(str(kube.kubeconfig))) as cluster:
        for image in images:
            cluster.apply(image)
            cluster.apply_status(image)
    listed = vmimage("get", "cvmi", "--kubeconfig", str(kube.kubeconfig))
    assert listed.returncode == 0, listed.stderr
    assert "vmi-0a0044d7c690bcbea" in listed.stdout
    resolved = vmimage("resolve", "Ubuntu 24.10", "-n", "team-a", "--kubeconfig", str(kube.kubeconfig))
    assert resolved.returncode == 0 and resolved.stdout.startswith("VirtualMachineImage/vmi-")


@pytest.mark.parametrize("kind", ["vmi", "cvmi"])
def test_get_prints_what_kubectl_get_prints(kube, snapshot, kind):
    """VM Operator's printer columns from its CRDs, cell for cell: a VirtualMachineImage's
    capabilities included (as kubectl prints a list), none for a ClusterVirtualMachineImage."""
    with ImageObjects(KubeTarget(str(kube.kubeconfig))) as cluster:
        for image in yaml.safe_load_all(snapshot.read_text()):
            cluster.apply(image)
            cluster.apply_status(image)
    kubectl = kube.kubectl("get", kind, "-n", "team-a").stdout
    ours = vmimage("get", kind, "-n", "team-a", "--kubeconfig", str(kube.kubeconfig)).stdout
    assert [line.split() for line in ours.splitlines()] == [line.split() for line in kubectl.splitlines()]
    assert ("CAPABILITIES" in ours.splitlines()[0]) == (kind == "vmi")
    assert '["nvidia-gpu"]' in ours or kind == "cvmi"
    wide = vmimage("get", kind, "-n", "team-a", "-o", "wide", "--kubeconfig", str(kube.kubeconfig)).stdout
    assert wide.splitlines()[0].endswith("CAPABILITIES")


def sync_stack(project: Path, stack: str, vcsim, library: str, scope: str | list[str]) -> None:
    """``project/stacks/Pulumi.<stack>.yaml``: a stack that syncs ``library`` (existing) to ``scope``,
    for the commands that read a stack's config outside Pulumi (`--from-vcenter`, `verify`)."""
    (project / "stacks").mkdir(parents=True)
    config = {
        "vsphere:vsphereServer": vcsim.server,
        "vsphere:user": "u",
        "vsphere:caFile": str(vcsim.ca_file),
        "vmimage:libraries": [{"name": library, "existing": True}],
        "vmimage:sync": [{"library": library, "scope": scope}],
    }
    (project / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))


@pytest.mark.vcsim
def test_get_from_vcenter(vcsim, tmp_path):
    with provider_host(vsphere_config(vcsim)) as host:
        library = host.up(LIBRARY, ContentLibraryProvider(), {"name": "from-vcenter", "datastore": "LocalDS_0"})
        ova = write_ova(tmp_path / "photon.ova", SAMPLES[0])
        host.up(ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": "Photon 5", "source": str(ova)})
    sync_stack(tmp_path / "project", "test", vcsim, "from-vcenter", ["team-a"])
    result = vmimage(
        "get",
        "vmi",
        "-n",
        "team-a",
        "--from-vcenter",
        "--stack",
        "test",
        "-o",
        "yaml",
        cwd=tmp_path / "project",
        env={"VSPHERE_PASSWORD": PASSWORD},
    )
    assert result.returncode == 0, result.stderr
    (image,) = yaml.safe_load(result.stdout)["items"]
    assert image["status"]["name"] == "Photon 5" and image["metadata"]["namespace"] == "team-a"
    assert image["status"]["osInfo"]["type"] == "vmwarePhoton64Guest"
    stack_file = tmp_path / "project" / "stacks" / "Pulumi.test.yaml"
    declared = yaml.safe_load(stack_file.read_text())
    declared["config"]["vmimage:images"] = [
        {"displayName": "Photon 6", "source": "photon6.ova", "library": "from-vcenter", "scope": ["team-a"]}
    ]
    stack_file.write_text(yaml.safe_dump(declared))
    listed = vmimage(
        "get", "vmi", "-n", "team-a", "--from-vcenter", "--stack", "test",
        cwd=tmp_path / "project", env={"VSPHERE_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr  # what exists is listed; what the stack declares beyond it is said
    assert "Photon 5" in listed.stdout and "Photon 6" not in listed.stdout
    assert listed.stderr == (
        "warning: image 'Photon 6' (vmimage:images[0], library 'from-vcenter', namespace team-a): "
        "declared but vCenter has no item: not published yet, or deleted\n"
    )


def test_get_both_kinds_at_once_as_kubectl_spells_it(snapshot):
    result = vmimage("get", "vmi,cvmi", "-A", "--from-file", str(snapshot))
    assert result.returncode == 0, result.stderr
    tables = result.stdout.strip().split("\n\n")
    assert len(tables) == 2
    assert tables[0].splitlines()[0].startswith("NAMESPACE") and "team-a" in tables[0]  # the namespaced images
    assert "Photon OS 5.0" in tables[1] and "team-a" not in tables[1]  # then the cluster's
    listed = json.loads(vmimage("get", "vmi,cvmi", "-A", "-o", "json", "--from-file", str(snapshot)).stdout)
    assert [item["kind"] for item in listed["items"]] == [
        "VirtualMachineImage",
        "VirtualMachineImage",
        "ClusterVirtualMachineImage",
    ]
    refused = vmimage("get", "vmi,pods", "--from-file", str(snapshot))
    assert refused.returncode == 2 and "'pods': expected one of" in refused.stderr


def test_other_kinds_in_an_images_file_are_named_not_silently_ignored(snapshot, tmp_path):
    mixed = tmp_path / "mixed.yaml"
    vm = {"apiVersion": "vmoperator.vmware.com/v1alpha5", "kind": "VirtualMachine", "metadata": {"name": "web-1"}}
    mixed.write_text(snapshot.read_text() + "---\n" + yaml.safe_dump(vm))
    result = vmimage("get", "cvmi", "--from-file", str(mixed))
    assert result.returncode == 0
    assert f"warning: {mixed}: ignored what is not an image: document 4: VirtualMachine web-1" in result.stderr
    assert "Photon OS 5.0" in result.stdout
