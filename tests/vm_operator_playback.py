"""A stand-in for VM Operator inside a Supervisor, for supervisor-mode tests only.

VM Operator cannot be built here, so its part (publishing an image object for an item of an
associated library) is played back from its recorded output in tests/fixtures/vm-operator/:
the recorded object for the same package (the dev stack's samples are byte-identical to the
recorded packages), with the item's UUID, the names derived from it, its library's name and its
content version substituted, as the recording's README says they vary from run to run. Its
status is the record's, never computed. Nothing in vmimage depends on this module.

The Supervisor's Image Registry Operator has a part too: a library associated with the
Supervisor itself shows as a ClusterContentLibrary whose ``spec.uuid`` is the library's ID
(`associate_with_supervisor`), which is what vmimage checks before it waits for a cluster image.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.conftest import FIXTURES
from tests.devcluster import Cluster
from vmimage.contract.ids import content_library_name, library_item_name, vmi_id
from vmimage.contract.models import IMAGE_REGISTRY_GROUP, IMAGE_REGISTRY_VERSION

RECORDS = FIXTURES / "vm-operator"

# The Image Registry Operator's ClusterContentLibrary, as far as vmimage reads it: its group,
# version, kind and plural, cluster scope and the required spec.uuid, as
# github.com/vmware-tanzu/image-registry-operator-api (config/crd/bases) declares them; the rest
# of its schema (status: the library's name, type, storage…) is left open here.
CLUSTER_CONTENT_LIBRARY_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"clustercontentlibraries.{IMAGE_REGISTRY_GROUP}"},
    "spec": {
        "group": IMAGE_REGISTRY_GROUP,
        "scope": "Cluster",
        "names": {
            "kind": "ClusterContentLibrary",
            "listKind": "ClusterContentLibraryList",
            "plural": "clustercontentlibraries",
            "singular": "clustercontentlibrary",
            "shortNames": ["cclib"],
        },
        "versions": [
            {
                "name": IMAGE_REGISTRY_VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["uuid"],
                                "properties": {
                                    "uuid": {"type": "string"},
                                    "resourceNamingStrategy": {"type": "string"},
                                },
                            },
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}


def associate_with_supervisor(cluster: Cluster, library_id: str) -> None:
    """What associating a library with the Supervisor (vSphere 8.0 U2 and later) shows in it: the
    Image Registry Operator's ClusterContentLibrary for the library (named as the recorder names
    content libraries, ``cl-…``)."""
    obj = {
        "apiVersion": f"{IMAGE_REGISTRY_GROUP}/{IMAGE_REGISTRY_VERSION}",
        "kind": "ClusterContentLibrary",
        "metadata": {"name": content_library_name(library_id)},
        "spec": {"uuid": library_id},
    }
    cluster.kubectl(
        "apply", "--server-side", "--field-manager", "image-registry-operator", "-f", "-", input=json.dumps(obj)
    )


def recorded_object(
    package: str,
    item_id: str,
    library_id: str,
    content_version: str,
    namespace: str | None = None,
    name: str | None = None,
    security_policy: bool = False,
) -> dict[str, Any]:
    """VM Operator's recorded object for ``package``, for another item of the same bytes (named
    ``name``: the item's name, which VM Operator takes as the display name); ``security_policy``:
    the record of the item in a library with the OVF security policy (security-policy/)."""
    if security_policy:
        stem = f"security-policy/{package}.{'namespaced' if namespace else 'cluster'}"
    else:
        stem = f"{package}.namespaced" if namespace else package
    obj = json.loads((RECORDS / f"{stem}.vm-operator.v1alpha5.json").read_text())
    old_item = obj["status"]["providerItemID"]
    text = json.dumps(obj)
    for old, new in (
        (vmi_id(old_item), vmi_id(item_id)),
        (library_item_name(old_item), library_item_name(item_id)),
        (old_item, item_id),
    ):
        text = text.replace(old, new)
    obj = json.loads(text)
    ref = json.loads(obj["metadata"]["annotations"]["vmoperator.vmware.com/conversion-content-lib-ref"])
    ref["name"] = content_library_name(library_id)
    obj["metadata"]["annotations"]["vmoperator.vmware.com/conversion-content-lib-ref"] = json.dumps(
        ref, separators=(",", ":")
    )
    obj["metadata"].pop("ownerReferences", None)  # no image registry objects in these clusters
    if namespace:
        obj["metadata"]["namespace"] = namespace
    if "providerContentVersion" in obj["status"]:  # none where VM Operator stopped before the sync
        obj["status"]["providerContentVersion"] = content_version
    if name is not None:
        obj["status"]["name"] = name
        obj["metadata"]["annotations"]["vmware.com/display-name"] = name
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for condition in obj["status"].get("conditions") or []:
        condition["lastTransitionTime"] = now
    return obj


def publish(cluster: Cluster, obj: dict[str, Any]) -> None:
    """Write the object as VM Operator does: the object, then its status subresource."""
    body = copy.deepcopy(obj)
    status = body.pop("status")
    cluster.kubectl("apply", "--server-side", "--field-manager", "vm-operator", "-f", "-", input=json.dumps(body))
    kind = "cvmi" if obj["kind"] == "ClusterVirtualMachineImage" else "vmi"
    where = ["-n", obj["metadata"]["namespace"]] if obj["metadata"].get("namespace") else []
    cluster.kubectl(
        "patch", kind, obj["metadata"]["name"], *where, "--subresource=status", "--type=merge",
        "--field-manager", "vm-operator", "-p", json.dumps({"status": status}),
    )  # fmt: skip


def publish_later(cluster: Cluster, obj: dict[str, Any], after: float, change: Callable[[dict], None] | None = None):
    """Publish ``obj`` (changed by ``change``: a deliberate mismatch) ``after`` seconds from now,
    in a thread: VM Operator reacting to an association while `pulumi up` waits."""
    if change is not None:
        change(obj)
    thread = threading.Thread(target=lambda: (time.sleep(after), publish(cluster, obj)), daemon=True)
    thread.start()
    return thread


def up_while(stack, vm_operator: Callable[[threading.Event], None]):
    """``stack.up()`` while ``vm_operator`` plays VM Operator in a thread of its own; it is given the
    event that tells it to stop, set once the run is over."""
    stop = threading.Event()
    thread = threading.Thread(target=vm_operator, args=(stop,), daemon=True)
    thread.start()
    try:
        return stack.up()
    finally:
        stop.set()
        thread.join(10)
