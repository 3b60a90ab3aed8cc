"""The objects vmimage publishes equal the ones the real VM Operator published for the same items.

tests/fixtures/vm-operator holds VM Operator's own output (its content-library controllers at
506dc5dc, run against govmomi's simulator and a real API server) for 27 packages. For each record
the test takes the inputs the record names (the descriptor, the item's UUID, name, library and
content version, the placeholder uid of its item object) and compares vmimage's object with VM
Operator's, field for field. A record added there is tested without new code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.helpers import FIXED_NOW
from vmimage.contract.image import image_object
from vmimage.contract.labels import CAPABILITY_LABEL_PREFIX
from vmimage.contract.models import CLUSTER_KIND
from vmimage.contract.status import ItemImage, descriptor_labels, image_status, sync_error, with_compliance
from vmimage.contract.verify import without_vmimage_capabilities
from vmimage.descriptor.ovf import parse_descriptor
from vmimage.vsphere.content_library import ItemInfo

RECORDS = FIXTURES / "vm-operator"
POLICY_RECORDS = RECORDS / "security-policy"  # items of a library with vCenter's OVF security policy
PLACEHOLDER_TIME = "<lastTransitionTime>"
PLACEHOLDER_UID = "<uid>"


def _records() -> list[Path]:
    return sorted(RECORDS.glob("*.vm-operator.v1alpha*.json"))


def _package(record: Path) -> tuple[dict, dict, dict]:
    """The package recipe of a record, and the simulator item and item object behind that object."""
    stem = record.name.split(".vm-operator.")[0].removesuffix(".namespaced")
    package = json.loads((RECORDS / f"{stem}.package.json").read_text())
    if ".namespaced." in record.name:
        namespaced = package["namespaced"]
        return package, namespaced["simulator_item"], namespaced["namespaced_item"]
    return package, package["simulator_item"], package["cluster_item"]


def _placeholders(obj: dict) -> dict:
    """The record's own bookkeeping placeholders, applied to vmimage's object."""
    for condition in obj["status"].get("conditions") or []:
        condition["lastTransitionTime"] = PLACEHOLDER_TIME
    return obj


def _policy_package(record: Path) -> tuple[dict, dict, dict]:
    """A security-policy record's package, and the simulator item and item object behind it (per
    scope: ``STEM.cluster.…`` or ``STEM.namespaced.…``)."""
    stem, scope = record.name.split(".vm-operator.")[0].rsplit(".", 1)
    package = json.loads((POLICY_RECORDS / f"{stem}.package.json").read_text())
    return package, package[scope]["simulator_item"], package[scope]["item_object_sent"]


def policy_records() -> list[Path]:
    return sorted(POLICY_RECORDS.glob("*.vm-operator.v1alpha*.json"))


def vmimage_object(record: Path, placeholders: bool = True) -> tuple[dict, ItemImage]:
    """vmimage's object for a record's item: the item's descriptor, and for a security-policy record
    what vCenter says of the item (its security_compliance, read as the client reads the item)."""
    policy = record.parent == POLICY_RECORDS
    package, item, item_object = _policy_package(record) if policy else _package(record)
    recorded = json.loads(record.read_text())
    stem = package["package"]
    descriptor_path = RECORDS / f"{stem}.ovf"
    descriptor = None
    if item["type"] == "ovf":
        descriptor = parse_descriptor(descriptor_path.read_bytes(), str(descriptor_path))
    status = image_status(
        descriptor, name=item["name"], now=FIXED_NOW, item_id=item["id"], content_version=item["content_version"]
    )
    image = ItemImage(status, descriptor_labels(descriptor), sync_error(descriptor))
    info = ItemInfo.parse(item)
    image = with_compliance(image, info.security_compliance, FIXED_NOW, info.certificate_status)
    obj = image_object(
        image.status,
        cluster=recorded["kind"] == CLUSTER_KIND,
        namespace=item_object["metadata"].get("namespace"),
        labels=image.labels,
        library_id=item["library_id"],
        item_uid=PLACEHOLDER_UID,
        version=recorded["apiVersion"].split("/")[1],
    ).wire()
    return (_placeholders(obj) if placeholders else obj), image


@pytest.mark.parametrize("record", _records(), ids=lambda path: path.name.removesuffix(".json"))
def test_vmimage_publishes_what_vm_operator_publishes(record: Path):
    recorded = json.loads(record.read_text())
    obj, _ = vmimage_object(record)
    assert without_vmimage_capabilities(obj, recorded) == recorded


@pytest.mark.parametrize("record", policy_records(), ids=lambda path: path.name.removesuffix(".json"))
def test_an_item_vcenter_holds_not_compliant_is_what_vm_operator_publishes(record: Path):
    """The item of a library with a security policy, unsigned: NotReady, field for field."""
    recorded = json.loads(record.read_text())
    obj, image = vmimage_object(record)
    assert without_vmimage_capabilities(obj, recorded) == recorded
    assert image.not_compliant == "NOT_AVAILABLE" and image.sync_error is None


def test_the_security_policy_records_cover_both_scopes_and_versions():
    assert [p.name for p in policy_records()] == [
        f"photon-ova.{scope}.vm-operator.{version}.json"
        for scope in ("cluster", "namespaced")
        for version in ("v1alpha5", "v1alpha6")
    ]


def test_the_same_package_without_a_policy_is_the_ready_record():
    """Compliance is the one difference: the item outside a policy library is the plain record's object."""
    obj, image = vmimage_object(RECORDS / "photon-ova.vm-operator.v1alpha5.json")
    assert image.not_compliant is None and obj["status"]["conditions"][0]["status"] == "True"
    ready = ItemImage(obj["status"])  # any status: compliant (True) and unknown (None) leave it alone
    assert with_compliance(ready, True, FIXED_NOW) is ready and with_compliance(ready, None, FIXED_NOW) is ready


def test_every_package_is_recorded_at_both_versions():
    stems = {path.name.split(".vm-operator.")[0] for path in _records()}
    assert len(stems) == 31  # 27 cluster-scoped and 4 namespaced
    for stem in stems:
        assert (RECORDS / f"{stem}.vm-operator.v1alpha5.json").is_file()
        assert (RECORDS / f"{stem}.vm-operator.v1alpha6.json").is_file()


@pytest.mark.parametrize("stem", ["cot-csr1000v", "cot-invalid"])
def test_a_refused_package_says_why_in_vm_operators_words(stem: str):
    """The object carries VM Operator's condition; the reason it logged is vmimage's sync error."""
    record = RECORDS / f"{stem}.vm-operator.v1alpha5.json"
    _, image = vmimage_object(record)
    index = json.loads((RECORDS / "index.json").read_text())
    logged = next(p for p in index["packages"] if p["package"] == stem)["errors"]
    assert image.sync_error is not None
    assert any(image.sync_error in line for line in logged)


def test_capabilities_come_from_the_property_and_label_true():
    """photon-5-sample declares ``capabilities.image.vmoperator.vmware.com``; VM Operator ignores it,
    vmimage publishes it as the CRD documents, with labels valued "true"."""
    obj, _ = vmimage_object(RECORDS / "photon-5-sample.vm-operator.v1alpha5.json")
    assert obj["status"]["capabilities"]
    for capability in obj["status"]["capabilities"]:
        assert obj["metadata"]["labels"][CAPABILITY_LABEL_PREFIX + capability] == "true"


def _with_descriptor(record: Path) -> bool:
    return (RECORDS / f"{record.name.split('.vm-operator.')[0]}.ovf").exists()


@pytest.mark.parametrize(
    "record",
    [r for r in sorted(RECORDS.glob("*[!d].vm-operator.v1alpha5.json")) if _with_descriptor(r)],
    ids=lambda path: path.name.split(".vm-")[0],
)
def test_vmimage_inspect_prints_vm_operators_object(record: Path):
    """`vmimage inspect --cluster --item-id … --library-id …` of the package's descriptor: VM Operator's
    object, but for the owner reference, which needs the item object's uid in a cluster."""
    from click.testing import CliRunner

    from vmimage.cli import main

    package, item, _ = _package(record)
    recorded = json.loads(record.read_text())
    descriptor = RECORDS / f"{package['package']}.ovf"
    arguments = ["inspect", str(descriptor), "--cluster", "--name", item["name"], "--item-id", item["id"]]
    arguments += ["--content-version", item["content_version"], "--library-id", item["library_id"], "-o", "json"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    printed = _placeholders(json.loads(result.stdout))
    del recorded["metadata"]["ownerReferences"]
    assert without_vmimage_capabilities(printed, recorded) == recorded


def test_vmimage_inspect_of_an_iso_prints_vm_operators_object(tmp_path):
    from click.testing import CliRunner

    from vmimage.cli import main
    from vmimage.descriptor.samples import write_iso

    record = RECORDS / "tools-sample.vm-operator.v1alpha5.json"
    _, item, _ = _package(record)
    iso = write_iso(tmp_path / "tools-sample.iso")
    arguments = ["inspect", str(iso), "--cluster", "--item-id", item["id"], "--content-version", "1"]
    result = CliRunner().invoke(main, [*arguments, "--library-id", item["library_id"], "-o", "json"])
    recorded = json.loads(record.read_text())
    del recorded["metadata"]["ownerReferences"]
    assert _placeholders(json.loads(result.stdout)) == recorded
