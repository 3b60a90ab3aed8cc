"""Display-name resolution: from what a VM names to the one image it means.

The rules of upstream-notes.md: a VMI ID is looked up by name (the VM's namespace first,
then cluster images); a display name matches ``status.name`` among the VM's namespace's
images, then among cluster images, and must be unique in the scope where the search
stopped. ``strict`` also refuses a name found in both scopes, as upstream does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vmimage.contract.ids import is_vmi_id
from vmimage.contract.labels import CAPABILITY_LABEL_PREFIX
from vmimage.contract.models import CLUSTER_KIND, NAMESPACED_KIND, READY, REASON_SECURITY_NOT_COMPLIANT


class ResolutionError(Exception):
    """No image, or more than one: the message is upstream's, word for word."""


class UnknownImage(ResolutionError):
    """No image has this name: a fact only when the images at hand are complete."""


@dataclass(frozen=True)
class ImageRef:
    """What resolution needs of an image object."""

    kind: str
    name: str  # metadata.name: the VMI ID
    namespace: str | None
    display_name: str | None
    capabilities: frozenset[str] = frozenset()
    not_ready: tuple[str, str] | None = None  # the Ready condition's (reason, message) when it is not True

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ImageRef:
        metadata = obj.get("metadata") or {}
        status = obj.get("status") or {}
        kind = obj.get("kind", NAMESPACED_KIND)
        declared = [c for c in status.get("capabilities") or () if isinstance(c, str)]
        labelled = [  # VM Operator's capability labels are valued "true"
            k[len(CAPABILITY_LABEL_PREFIX) :]
            for k, v in (metadata.get("labels") or {}).items()
            if k.startswith(CAPABILITY_LABEL_PREFIX) and v == "true"
        ]
        ready = next(
            (c for c in status.get("conditions") or () if isinstance(c, Mapping) and c.get("type") == READY), None
        )
        not_ready = None
        if ready is not None and ready.get("status") != "True":
            not_ready = (str(ready.get("reason") or ""), str(ready.get("message") or ""))
        return cls(
            kind,
            metadata.get("name", ""),
            metadata.get("namespace") if kind == NAMESPACED_KIND else None,
            status.get("name"),
            frozenset(declared + labelled),
            not_ready,
        )

    @property
    def is_cluster(self) -> bool:
        return self.kind == CLUSTER_KIND


def _refs(images: Iterable[ImageRef | Mapping[str, Any]]) -> list[ImageRef]:
    return [image if isinstance(image, ImageRef) else ImageRef.of(image) for image in images]


def resolve(
    image_name: str,
    namespace: str,
    images: Iterable[ImageRef | Mapping[str, Any]],
    strict: bool = False,
    kind: str | None = None,
) -> ImageRef:
    """The image a VM in ``namespace`` gets for ``image_name``, or a ResolutionError. ``kind``: the
    one a VM's ``spec.image`` names, whose object it gets, never the other kind's of the same name."""
    refs = _refs(images)
    if kind in (NAMESPACED_KIND, CLUSTER_KIND):
        refs = [r for r in refs if r.kind == kind]
    namespaced = [r for r in refs if not r.is_cluster and r.namespace == namespace]
    cluster = [r for r in refs if r.is_cluster]
    if is_vmi_id(image_name):
        for scope in (namespaced, cluster):
            found = [r for r in scope if r.name == image_name]
            if found:
                return found[0]
        raise UnknownImage(f'no VM image exists for "{image_name}" in namespace or cluster scope')
    in_namespace = [r for r in namespaced if r.display_name == image_name]
    in_cluster = [r for r in cluster if r.display_name == image_name]
    if len(in_namespace) > 1:
        raise ResolutionError(f'multiple VM images exist for "{image_name}" in namespace scope')
    if in_namespace:
        if strict and in_cluster:
            raise ResolutionError(f'multiple VM images exist for "{image_name}" in namespace and cluster scope')
        return in_namespace[0]
    if len(in_cluster) > 1:
        raise ResolutionError(f'multiple VM images exist for "{image_name}" in cluster scope')
    if in_cluster:
        return in_cluster[0]
    raise UnknownImage(f'no VM image exists for "{image_name}" in namespace or cluster scope')


# A VM's annotation listing the capabilities its image must have, comma-separated, for the webhook.
REQUIRED_CAPABILITIES_ANNOTATION = "vmimage.io/required-capabilities"


class MissingCapabilities(ResolutionError):
    """The image resolved, but lacks capabilities the VM requires."""


def parse_capabilities(text: str) -> list[str]:
    """``nvidia-gpu, cloud-init`` → ["nvidia-gpu", "cloud-init"]."""
    return [part.strip() for part in text.split(",") if part.strip()]


def check_capabilities(image: ImageRef, required: Iterable[str], vm: str) -> None:
    """The capability check of the reference: the resolved image must declare every capability
    the VM requires (in its status or as a capability label), or the VM is refused."""
    missing = sorted(set(required) - image.capabilities)
    if missing:
        shown = f"{image.name} ({image.display_name})" if image.display_name else image.name
        raise MissingCapabilities(
            f"VM {vm} requires capabilities its image {shown} does not have: {', '.join(missing)}"
            f" (it has: {', '.join(sorted(image.capabilities)) or 'none'})"
        )


class NotSecurityCompliant(ResolutionError):
    """The image resolved, but VM Operator publishes it NotReady: vCenter holds its library item
    not security compliant (a library with an OVF security policy, a package not signed by a
    certificate vCenter trusts), so no VM can be deployed from it."""


def check_security(image: ImageRef, vm: str) -> None:
    """Refuse an image whose Ready condition is False for security compliance, with that reason."""
    if image.not_ready is None or image.not_ready[0] != REASON_SECURITY_NOT_COMPLIANT:
        return
    reason, message = image.not_ready
    shown = f"{image.name} ({image.display_name})" if image.display_name else image.name
    raise NotSecurityCompliant(
        f"VM {vm}: its image {shown} is not security compliant (Ready False, {reason}: "
        f"{message or 'no message'}): VM Operator deploys no VM from it; sign the package with a certificate "
        "vCenter trusts (`vmimage sign`) and publish it again, or choose another image"
    )


def image_reference(resolved: ImageRef) -> dict[str, str]:
    """``spec.image`` of a VirtualMachine that uses the resolved image."""
    return {"kind": resolved.kind, "name": resolved.name}
