"""vmimage ships VM Operator's own CRDs, writes objects they accept at v1alpha5 and v1alpha6, and
installs them only where a cluster has none."""

import pytest

from tests.conftest import FIXTURES
from tests.helpers import inspect_file
from vmimage.contract.crds import CLUSTERS_OWN, INSTALLED, INSTALLED_BY_LABEL, crd, crd_plan, crds, image_schema
from vmimage.contract.models import VERSIONS
from vmimage.contract.schema import schema_errors

UPSTREAM = {
    "VirtualMachineImage": FIXTURES / "crds" / "vmoperator.vmware.com_virtualmachineimages.yaml",
    "ClusterVirtualMachineImage": FIXTURES / "crds" / "vmoperator.vmware.com_clustervirtualmachineimages.yaml",
}
NAMES = ["virtualmachineimages.vmoperator.vmware.com", "clustervirtualmachineimages.vmoperator.vmware.com"]
ITEM = "e1968c25-dd84-4506-8dc7-9beacb6b688e"


@pytest.mark.parametrize("kind", list(UPSTREAM))
def test_the_crds_are_vm_operators_own(kind):
    import yaml

    assert crd(kind) == yaml.safe_load(UPSTREAM[kind].read_text())


def test_v1alpha6_is_stored_and_the_image_schema_is_the_same_in_both_versions_vmimage_writes():
    for document in crds():
        versions = {v["name"]: v for v in document["spec"]["versions"]}
        assert [name for name, v in versions.items() if v["storage"]] == ["v1alpha6"]
        assert all(versions[name]["served"] for name in VERSIONS)
    assert image_schema("v1alpha5") == image_schema("v1alpha6")


def test_printer_columns_show_the_guest_id_as_os_name():
    versions = crd("VirtualMachineImage")["spec"]["versions"]
    columns = {c["name"]: c["jsonPath"] for c in versions[-1]["additionalPrinterColumns"]}
    assert columns["OS Name"] == ".status.osInfo.type"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", sorted((FIXTURES / "vm-operator").glob("*.ovf")), ids=lambda p: p.stem)
def test_every_object_vmimage_writes_fits_the_schema_strictly(path, version):
    obj = inspect_file(path, item_id=ITEM, content_version="1", namespace="default", capabilities=["gpu"])
    obj["apiVersion"] = f"vmoperator.vmware.com/{version}"
    assert schema_errors(obj, version=version) == []


def test_a_wrong_type_or_an_unknown_field_does_not_fit():
    good = inspect_file(FIXTURES / "ovf" / "photon-ova.ovf", item_id=ITEM)
    bad = {**good, "status": {**good["status"], "hardwareVersion": "19", "disks": [{"name": "d", "limit": "20 GB"}]}}
    errors = schema_errors(bad)
    assert any(e.startswith("status.hardwareVersion") for e in errors)
    assert any(e.startswith("status.disks.0.limit") for e in errors)
    legacy = {**good, "status": {**good["status"], "disks": [{"capacity": "16Gi"}]}}  # today's shape before the fix
    assert any("name" in e for e in schema_errors(legacy))
    misspelt = {**good, "status": {**good["status"], "osinfo": {"id": "x"}}}
    assert any("osinfo" in e for e in schema_errors(misspelt))


def _live(labels=None, annotations=None):
    return {"metadata": {"labels": labels or {}, "annotations": annotations or {}}}


def test_the_crds_are_installed_only_where_none_exist_or_vmimage_installed_them():
    assert crd_plan({}) == dict.fromkeys(NAMES, INSTALLED)
    vm_operators = _live(annotations={"controller-gen.kubebuilder.io/version": "v0.21.0"})
    assert crd_plan(dict.fromkeys(NAMES, vm_operators)) == dict.fromkeys(NAMES, CLUSTERS_OWN)
    ours = _live(labels={INSTALLED_BY_LABEL: "vmimage"})
    legacy = {"metadata": {"managedFields": [{"manager": "pulumi-kubernetes-6c1e5a1f", "operation": "Apply"}]}}
    assert crd_plan({NAMES[0]: ours, NAMES[1]: legacy}) == dict.fromkeys(NAMES, INSTALLED)
    generated = vm_operators["metadata"]["annotations"]
    someone_elses = _live(labels={"app.kubernetes.io/managed-by": "pulumi"}, annotations=generated)
    assert crd_plan({NAMES[0]: someone_elses, NAMES[1]: None}) == {NAMES[0]: CLUSTERS_OWN, NAMES[1]: INSTALLED}
