"""Objects the previous release wrote, moved to VM Operator's shape on a real API server.

The previous release's own code (tests/fixtures/previous-release.tar.gz) installs its CRDs and
publishes its objects; others label and annotate them (a team, Argo CD, a change ticket); then the
CRDs become VM Operator's and the current client publishes the same images. The rewrite must
take away only what that release wrote, hold on the version it read, and leave alone an object
of the old shape that the release did not write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.devcluster import Cluster, install_crds, start_cluster
from tests.test_engine_kube import previous_release
from vmimage.cluster.kube import ImageObjects, KubeTarget, written_by_an_earlier_release
from vmimage.contract.crds import crds
from vmimage.contract.ids import vmi_id
from vmimage.contract.image import file_image, image_object
from vmimage.descriptor.source import read_image_file
from vmimage.errors import ImageError

KIND = "ClusterVirtualMachineImage"
ITEMS = {  # one object per test, each an item ID of its own
    "migrated": "00000000-0000-4000-8000-000000000001",
    "raced-before-status": "00000000-0000-4000-8000-000000000002",
    "raced-before-metadata": "00000000-0000-4000-8000-000000000003",
    "foreign": "00000000-0000-4000-8000-000000000004",
}
OTHERS_LABELS = {"team": "a", "argocd.argoproj.io/instance": "catalog"}
OTHERS_ANNOTATIONS = {"change-ticket": "CHG-1"}

# What the previous release's vm_image provider wrote for an image (its `_publish`), run with its code
# (and its module paths, from before vmimage/ was grouped into packages).
PREVIOUS_PUBLISH = """
import json, sys, uuid
from vmimage.image import file_status, image_object
from vmimage.kube import ImageObjects, KubeTarget
from vmimage.source import read_image_file
kubeconfig, ova, item_id = sys.argv[1:]
status = file_status(read_image_file(ova), name="photon-5-sample", capabilities=["nvidia-gpu"], item_id=item_id)
obj = image_object(status, cluster=True, extra_labels={"tier": "gold"}, owner=uuid.uuid4().hex).wire()
with ImageObjects(KubeTarget(kubeconfig)) as cluster:
    cluster.apply(obj)
    cluster.apply_status(obj)
"""
PREVIOUS_CRDS = "import json; from vmimage.crds import crds; print(json.dumps(crds()))"  # its module paths


def run_previous(release: Path, code: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(release)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120, cwd=release
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, samples: Path) -> Iterator[Cluster]:
    """The previous release's CRDs and objects, others' labels and annotations on them, an object
    of the old shape written by another tool, and then VM Operator's CRDs."""
    release = previous_release(tmp_path_factory.mktemp("previous-release"))
    running = start_cluster(tmp_path_factory.mktemp("migration-cluster"))
    try:
        install_crds(running, json.loads(run_previous(release, PREVIOUS_CRDS)))
        for label, item in ITEMS.items():
            if label == "foreign":
                continue
            run_previous(release, PREVIOUS_PUBLISH, str(running.kubeconfig), str(samples / "photon-5-sample.ova"), item)
            name = vmi_id(item)
            running.kubectl("label", "cvmi", name, *(f"{k}={v}" for k, v in OTHERS_LABELS.items()))
            running.kubectl("annotate", "cvmi", name, *(f"{k}={v}" for k, v in OTHERS_ANNOTATIONS.items()))
        foreign = {  # another tool's image, in the shape the old CRD allowed: a disk without a name
            "apiVersion": "vmoperator.vmware.com/v1alpha5",
            "kind": KIND,
            "metadata": {"name": vmi_id(ITEMS["foreign"]), "labels": {"team": "b"}},
            "spec": {},
            "status": {"name": "photon-5-sample", "disks": [{"capacity": "16Gi"}]},
        }
        apply = ("apply", "--server-side", "--field-manager=other-tool", "-f", "-")
        running.kubectl(*apply, input=json.dumps(foreign))
        running.kubectl(*apply, "--subresource=status", input=json.dumps(foreign))
        install_crds(running, crds())
        yield running
    finally:
        running.stop()


def current_object(samples: Path, item: str) -> dict[str, Any]:
    """What the current release publishes for the same image."""
    image = file_image(
        read_image_file(str(samples / "photon-5-sample.ova")), name="photon-5-sample", capabilities=["nvidia-gpu"],
        item_id=item,
    )  # fmt: skip
    return image_object(image.status, cluster=True, labels=image.labels).wire()


def live(cluster: Cluster, item: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "cvmi", vmi_id(item), "-o", "json", "--show-managed-fields").stdout)


def owners_of(obj: dict[str, Any], section: str, key: str) -> set[str]:
    """The managers that own ``metadata.<section>.<key>``."""
    return {
        entry["manager"]
        for entry in obj["metadata"].get("managedFields") or []
        if f"f:{key}" in ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get(f"f:{section}", {})
    }


def assert_migrated(obj: dict[str, Any], published: dict[str, Any]) -> None:
    """Only what the previous release wrote went: its annotation, its labels, its status."""
    labels, annotations = obj["metadata"].get("labels") or {}, obj["metadata"].get("annotations") or {}
    assert labels == {**published["metadata"]["labels"], **OTHERS_LABELS}  # its `tier` and `Linux` went
    assert annotations == {**published["metadata"]["annotations"], **OTHERS_ANNOTATIONS}  # no vmimage.io/owner
    assert [disk["name"] for disk in obj["status"]["disks"]] == ["disk0"]
    assert obj["status"]["osInfo"]["type"] == "vmwarePhoton64Guest"
    # others still own what they set, as they set it; the previous release's manager owns nothing
    assert owners_of(obj, "labels", "team") == {"kubectl-label"}
    assert owners_of(obj, "annotations", "change-ticket") == {"kubectl-annotate"}
    assert "vmimage" not in {entry["manager"] for entry in obj["metadata"]["managedFields"]}
    assert not written_by_an_earlier_release(obj)


def test_a_migrated_object_keeps_others_labels_and_annotations(cluster, samples):
    item = ITEMS["migrated"]
    before = live(cluster, item)
    assert written_by_an_earlier_release(before) and before["metadata"]["labels"]["tier"] == "gold"
    published = current_object(samples, item)
    with ImageObjects(KubeTarget(str(cluster.kubeconfig))) as objects:
        objects.publish(published, owner="stack-a")
        migrated = live(cluster, item)
        assert_migrated(migrated, published)
        objects.publish(published, owner="stack-a")  # nothing left to move: the same object again
    again = live(cluster, item)
    assert again["metadata"]["resourceVersion"] == migrated["metadata"]["resourceVersion"]


def test_an_object_of_the_old_shape_another_tool_wrote_is_not_touched(cluster, samples):
    item = ITEMS["foreign"]
    before = live(cluster, item)
    assert "name" not in before["status"]["disks"][0] and not written_by_an_earlier_release(before)
    with ImageObjects(KubeTarget(str(cluster.kubeconfig))) as objects, pytest.raises(ImageError) as refused:
        objects.publish(current_object(samples, item), owner="stack-a")
    assert f"ClusterVirtualMachineImage {vmi_id(item)}" in str(refused.value)
    assert "not written by vmimage" in str(refused.value) and "left alone" in str(refused.value)
    assert live(cluster, item) == before


def racing(objects: ImageObjects, call: str, race) -> list[int]:
    """Run ``race`` just before the first JSON patch ``objects`` sends through ``call``; the HTTP
    statuses of those patches, in order (200 for one that went through)."""
    from kubernetes.client.exceptions import ApiException

    original, answers = getattr(objects.api, call), []

    def patched(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("_content_type") != "application/json-patch+json":
            return original(*args, **kwargs)
        if not answers:
            race()
        try:
            answer = original(*args, **kwargs)
        except ApiException as exc:
            answers.append(exc.status)
            raise
        answers.append(200)
        return answer

    setattr(objects.api, call, patched)
    return answers


def test_a_change_between_the_read_and_the_metadata_write_is_not_lost(cluster, samples):
    """Others change the object once the rewrite has replaced its status (the first moment the
    API server lets anyone change it): the metadata write's precondition fails, it is computed
    again from a new read, and their change stays. A server-side apply (Argo CD's) stays owned by
    its manager; the API server records no owner for a plain update of an object whose
    ownership it has just dropped (`kubectl label`), so that label stays, unowned."""
    item = ITEMS["raced-before-metadata"]
    published = current_object(samples, item)
    argocd = {
        "apiVersion": "vmoperator.vmware.com/v1alpha6",
        "kind": KIND,
        "metadata": {"name": vmi_id(item), "annotations": {"late-ticket": "CHG-2"}},
    }

    def race() -> None:
        cluster.kubectl("label", "cvmi", vmi_id(item), "late=yes")
        apply = ("apply", "--server-side", "--field-manager=argocd-controller", "-f", "-")
        cluster.kubectl(*apply, input=json.dumps(argocd))

    with ImageObjects(KubeTarget(str(cluster.kubeconfig))) as objects:
        answers = racing(objects, "patch_cluster_custom_object", race)
        objects.publish(published, owner="stack-a")
    assert answers == [422, 200]  # the test of the version read failed, and the write was made again
    obj = live(cluster, item)
    assert obj["metadata"]["labels"]["late"] == "yes" and obj["metadata"]["annotations"]["late-ticket"] == "CHG-2"
    assert owners_of(obj, "annotations", "late-ticket") == {"argocd-controller"}
    del obj["metadata"]["labels"]["late"], obj["metadata"]["annotations"]["late-ticket"]
    assert_migrated(obj, published)  # the server's "before-first-apply" took none of the release's labels


def test_a_parallel_rewrite_between_the_read_and_the_status_write_is_not_undone(cluster, samples):
    """Until its status is replaced, the API server refuses any change to an old object but
    another rewrite: a second declaration of the same image migrates and publishes it after this
    one's read. This one's status write fails its precondition, the new read shows the object
    migrated, and both declarations publish it."""
    from vmimage.cluster.kube import object_owners

    item = ITEMS["raced-before-status"]
    published = current_object(samples, item)
    target = KubeTarget(str(cluster.kubeconfig))

    def race() -> None:
        with ImageObjects(target) as other:
            other.publish(published, owner="stack-b")

    with ImageObjects(target) as objects:
        answers = racing(objects, "patch_cluster_custom_object_status", race)
        objects.publish(published, owner="stack-a")
    assert answers == [422]  # and no second try: the object was no longer the previous release's
    obj = live(cluster, item)
    assert object_owners(obj) == {"stack-a", "stack-b"}
    assert_migrated(obj, published)


def _entry(manager: str, fields: dict, subresource: str = "", operation: str = "Apply") -> dict:
    return {
        "manager": manager,
        "operation": operation,
        "fieldsV1": fields,
        **({"subresource": subresource} if subresource else {}),
    }


OWNER_FIELD = {"f:metadata": {"f:annotations": {"f:vmimage.io/owner": {}}}}
DISKS_FIELD = {"f:status": {"f:disks": {}}}


@pytest.mark.parametrize(
    ("annotated", "entries", "disks", "detected"),
    [
        (True, [_entry("vmimage", OWNER_FIELD)], [{"name": "disk0"}], True),  # the release's annotation
        (False, [_entry("vmimage", DISKS_FIELD, "status")], [{"capacity": "16Gi"}], True),  # its disks
        (True, [], [{"capacity": "16Gi"}], True),  # the server dropped every owner: the annotation says it
        (True, [_entry("kubectl-annotate", OWNER_FIELD, operation="Update")], [{"name": "disk0"}], False),
        (False, [_entry("other-tool", DISKS_FIELD, "status")], [{"capacity": "16Gi"}], False),
        (False, [_entry("vmimage", DISKS_FIELD, "status")], [{"name": "disk0"}], False),  # rewritten already
        (False, [], [{"capacity": "16Gi"}], False),  # nothing says who wrote it
    ],
)
def test_only_what_the_previous_release_wrote_is_detected(annotated, entries, disks, detected):
    metadata = {"name": "vmi-0", "managedFields": entries}
    if annotated:
        metadata["annotations"] = {"vmimage.io/owner": "0123"}
    assert written_by_an_earlier_release({"metadata": metadata, "status": {"disks": disks}}) is detected
