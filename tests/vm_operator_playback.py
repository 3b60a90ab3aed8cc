"""A stand-in for VM Operator inside a Supervisor, for supervisor-mode tests only.

VM Operator cannot be built here, so its part (publishing an image object for an item of an
associated library) is played back from its recorded output in tests/fixtures/vm-operator/:
the recorded object for the same package (the dev stack's samples are byte-identical to the
recorded packages), with the item's UUID, the names derived from it, its library's name and its
content version substituted, as the recording's README says they vary from run to run. Its
status is the record's, never computed. Nothing in vmimage depends on this module.
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
from vmimage.ids import content_library_name, library_item_name, vmi_id

RECORDS = FIXTURES / "vm-operator"


def recorded_object(
    package: str,
    item_id: str,
    library_id: str,
    content_version: str,
    namespace: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """VM Operator's recorded object for ``package``, for another item of the same bytes (named
    ``name``: the item's name, which VM Operator takes as the display name)."""
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
