"""VM Operator's own CRDs for the two image kinds (vmimage/contract/upstream/, unchanged).

vmimage writes the objects VM Operator would, so it installs VM Operator's CRDs where a cluster
has none, and never its own: a cluster that runs VM Operator keeps the ones it has.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from vmimage.contract.models import CLUSTER_KIND, GROUP, NAMESPACED_KIND, VERSION

UPSTREAM = Path(__file__).resolve().parent / "upstream"
FILES = {
    NAMESPACED_KIND: UPSTREAM / "vmoperator.vmware.com_virtualmachineimages.yaml",
    CLUSTER_KIND: UPSTREAM / "vmoperator.vmware.com_clustervirtualmachineimages.yaml",
}
# Put on the CRDs vmimage installs, so a later run knows they are its own to keep current.
INSTALLED_BY_LABEL = "vmimage.io/installed-by"


@functools.cache
def _load(kind: str) -> dict[str, Any]:
    return yaml.safe_load(FILES[kind].read_text())


def crd(kind: str) -> dict[str, Any]:
    """VM Operator's CustomResourceDefinition of ``kind`` (VirtualMachineImage or ClusterVirtualMachineImage)."""
    return copy.deepcopy(_load(kind))


def crds() -> list[dict[str, Any]]:
    return [crd(NAMESPACED_KIND), crd(CLUSTER_KIND)]


def crd_name(kind: str) -> str:
    return f"{kind.lower()}s.{GROUP}"


def image_schema(version: str = VERSION, kind: str = NAMESPACED_KIND) -> dict[str, Any]:
    """The openAPIV3Schema VM Operator's CRD gives ``version`` of the image kinds."""
    for entry in _load(kind)["spec"]["versions"]:
        if entry["name"] == version:
            return copy.deepcopy(entry["schema"]["openAPIV3Schema"])
    raise KeyError(f"VM Operator's {kind} CRD has no version {version}")


def printer_columns(kind: str, version: str = VERSION) -> list[tuple[str, str]]:
    """The (name, jsonPath) of the columns `kubectl get` prints for ``kind`` in ``version`` (the
    CRD's additionalPrinterColumns of priority 0; higher ones are -o wide's, and none has one)."""
    for entry in _load(kind)["spec"]["versions"]:
        if entry["name"] == version:
            columns = entry.get("additionalPrinterColumns") or []
            return [(column["name"], column["jsonPath"]) for column in columns if not column.get("priority")]
    raise KeyError(f"VM Operator's {kind} CRD has no version {version}")


def installed_by_vmimage(live: dict[str, Any] | None) -> bool:
    """Whether a CRD in a cluster is one vmimage installed: labelled so, or the CRD earlier vmimage
    releases generated (written by pulumi-kubernetes, without the controller-gen mark VM Operator's
    CRDs carry)."""
    if not live:
        return False
    meta = live.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    if labels.get(INSTALLED_BY_LABEL) == "vmimage":
        return True
    if "controller-gen.kubebuilder.io/version" in annotations:
        return False
    managers = {str(entry.get("manager", "")) for entry in meta.get("managedFields") or []}
    return labels.get("app.kubernetes.io/managed-by") == "pulumi" or any(
        manager.startswith("pulumi-kubernetes") for manager in managers
    )


INSTALLED = "installed by vmimage"
CLUSTERS_OWN = "the cluster's own (VM Operator's), left alone"


def crd_plan(existing: dict[str, dict[str, Any] | None]) -> dict[str, str]:
    """For each image CRD: vmimage installs (or keeps current) its own, or leaves the cluster's."""
    plan = {}
    for document in crds():
        name = document["metadata"]["name"]
        live = existing.get(name)
        plan[name] = INSTALLED if live is None or installed_by_vmimage(live) else CLUSTERS_OWN
    return plan
