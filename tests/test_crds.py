"""Our CRDs against the upstream ones, and every object we print against our CRDs."""

from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURES
from tests.helpers import inspect_file
from vmimage.crds import crd, crds
from vmimage.schema import schema_errors

UPSTREAM = {
    "VirtualMachineImage": FIXTURES / "crds" / "vmoperator.vmware.com_virtualmachineimages.yaml",
    "ClusterVirtualMachineImage": FIXTURES / "crds" / "vmoperator.vmware.com_clustervirtualmachineimages.yaml",
}


def _fields(schema: dict[str, Any], path: str = "") -> dict[str, str]:
    """Every field path with its type ('int-or-string' for quantities)."""
    kind = "int-or-string" if schema.get("x-kubernetes-int-or-string") else schema.get("type", "?")
    found = {path: kind} if path else {}
    for name, child in schema.get("properties", {}).items():
        found.update(_fields(child, f"{path}.{name}" if path else name))
    if "items" in schema:
        found.update(_fields(schema["items"], f"{path}[]"))
    return found


def _upstream_fields(kind: str) -> dict[str, set[str]]:
    """Field path → the types upstream gives it across all its versions."""
    document = yaml.safe_load(UPSTREAM[kind].read_text())
    merged: dict[str, set[str]] = {}
    for version in document["spec"]["versions"]:
        for path, field_type in _fields(version["schema"]["openAPIV3Schema"]).items():
            merged.setdefault(path, set()).add(field_type)
    return merged


def _ours(kind: str) -> dict[str, str]:
    return _fields(crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


@pytest.mark.parametrize("kind", list(UPSTREAM))
def test_shared_fields_have_upstreams_types(kind):
    ours, upstream = _ours(kind), _upstream_fields(kind)
    shared = sorted(set(ours) & set(upstream))
    # The comparison must cover the status the reference describes, not a handful of fields.
    for required in (
        "status.osInfo.id",
        "status.hardwareVersion",
        "status.disks[].capacity",
        "status.ovfProperties[].default",
        "status.conditions[].lastTransitionTime",
        "status.providerItemID",
        "spec.providerRef.name",
        "status.vmwareSystemProperties[].value",
    ):
        assert required in shared
    mismatched = {path: (ours[path], upstream[path]) for path in shared if upstream[path] != {ours[path]}}
    assert mismatched == {}


@pytest.mark.parametrize("kind", list(UPSTREAM))
def test_every_field_of_ours_exists_upstream(kind):
    assert sorted(set(_ours(kind)) - set(_upstream_fields(kind))) == []


@pytest.mark.parametrize("kind", list(UPSTREAM))
def test_names_scope_and_status_subresource_match_upstream(kind):
    upstream = yaml.safe_load(UPSTREAM[kind].read_text())["spec"]
    ours = crd(kind)
    assert ours["metadata"]["name"] == yaml.safe_load(UPSTREAM[kind].read_text())["metadata"]["name"]
    assert ours["spec"]["group"] == upstream["group"] == "vmoperator.vmware.com"
    assert ours["spec"]["scope"] == upstream["scope"]
    for key in ("kind", "plural", "singular", "listKind"):
        assert ours["spec"]["names"][key] == upstream["names"][key]
    assert set(upstream["names"]["shortNames"]) <= set(ours["spec"]["names"]["shortNames"])
    (version,) = ours["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha5", True, True)
    assert version["subresources"] == {"status": {}}


def test_short_names_per_the_notes():
    names = {d["spec"]["names"]["kind"]: d["spec"]["names"]["shortNames"] for d in crds()}
    assert names == {
        "VirtualMachineImage": ["vmi", "vmimage"],
        "ClusterVirtualMachineImage": ["cvmi", "cvmimage", "clustervmi", "clustervmimage"],
    }


def test_printer_columns_match_upstream_v1alpha5():
    upstream = yaml.safe_load(UPSTREAM["VirtualMachineImage"].read_text())["spec"]["versions"]
    upstream_columns = next(v for v in upstream if v["name"] == "v1alpha5")["additionalPrinterColumns"]
    ours = crd("VirtualMachineImage")["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [(c["name"], c["jsonPath"]) for c in ours] == [(c["name"], c["jsonPath"]) for c in upstream_columns]
    assert [c.get("priority", 0) for c in ours] == [0, 0, 0, 0, 0, 0, 1]


def test_schema_is_structural():
    """No $ref, no titles or nulls, and every node typed or int-or-string (what the API server demands)."""

    def walk(node: Any, path: str) -> None:
        assert "$ref" not in node and "title" not in node and "$defs" not in node, path
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    for document in crds():
        walk(document["spec"]["versions"][0]["schema"]["openAPIV3Schema"], document["spec"]["names"]["kind"])


def test_upstreams_own_example_validates_and_a_wrong_type_does_not():
    good = inspect_file(FIXTURES / "ovf" / "photon-ova.ovf", item_id="e1968c25-dd84-4506-8dc7-9beacb6b688e")
    assert schema_errors(good) == []
    bad = {**good, "status": {**good["status"], "hardwareVersion": "19", "disks": [{"capacity": "20 GB"}]}}
    errors = schema_errors(bad)
    assert any(e.startswith("status.hardwareVersion") for e in errors)
    assert any(e.startswith("status.disks.0.capacity") for e in errors)
    misspelt = {**good, "status": {**good["status"], "osinfo": {"id": "x"}}}
    assert any("osinfo" in e for e in schema_errors(misspelt))
