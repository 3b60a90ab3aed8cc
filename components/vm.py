"""VirtualMachine: a VM Operator VM whose image is named the way people read it.

``image_name`` may be a display name (``Photon OS 5.0``) or a VMI ID; it is resolved when the
program runs, against the catalog's image objects (and, when given, the live cluster's),
with the same rules as the webhook. The VM is written with both ``spec.imageName`` (the VMI
ID) and ``spec.image``, so it needs no webhook. An unknown or ambiguous name fails the
preview with the resolver's message.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from vmimage.admission.resolve import (
    ImageRef,
    MissingCapabilities,
    ResolutionError,
    check_capabilities,
    image_reference,
    resolve,
)
from vmimage.cluster.kube import ImageObjects, KubeTarget
from vmimage.contract.models import CLUSTER_KIND, NAMESPACED_KIND, VERSION


def _live_images(cluster: KubeTarget, namespace: str) -> list[dict[str, Any]]:
    with ImageObjects(cluster) as objects:
        return [
            {**obj, "kind": kind}
            for kind, ns in ((NAMESPACED_KIND, namespace), (CLUSTER_KIND, None))
            for obj in objects.list(kind, ns)
        ]


def resolve_image(image_name: str, namespace: str, images: list[dict[str, Any]], strict: bool = False) -> ImageRef:
    """The resolver, with its message turned into a preview error that names the VM's image."""
    try:
        return resolve(image_name, namespace, images, strict=strict)
    except ResolutionError as error:
        raise pulumi.RunError(f"VirtualMachine image {image_name!r} in namespace {namespace}: {error}") from None


class VirtualMachine(pulumi.ComponentResource):
    """Type ``vmimage:index:VirtualMachine``: a ``vmoperator.vmware.com/v1alpha5`` VirtualMachine."""

    image: pulumi.Output[dict[str, str]]
    image_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        namespace: str,
        image_name: str,
        class_name: str,
        images: pulumi.Input[list[dict[str, Any]]] | None = None,
        cluster: KubeTarget | None = None,
        storage_class: str | None = None,
        spec: dict[str, Any] | None = None,
        strict: bool = False,
        required_capabilities: list[str] | None = None,
        provider: k8s.Provider | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``required_capabilities``: what the resolved image must declare (``nvidia-gpu``,
        ``cloud-init``); a preview fails naming the VM, the image and what is missing."""
        super().__init__("vmimage:index:VirtualMachine", name, None, opts)
        live = _live_images(cluster, namespace) if cluster is not None else []

        def pick(known: list[dict[str, Any]] | None) -> ImageRef:
            declared = list(known or [])
            keys = {
                (i.get("kind"), (i.get("metadata") or {}).get("namespace"), (i.get("metadata") or {}).get("name"))
                for i in declared
            }
            others = [
                i for i in live if (i.get("kind"), i["metadata"].get("namespace"), i["metadata"]["name"]) not in keys
            ]
            image = resolve_image(image_name, namespace, declared + others, strict=strict)
            try:
                check_capabilities(image, required_capabilities or (), f"{namespace}/{name}")
            except MissingCapabilities as error:
                raise pulumi.RunError(str(error)) from None
            return image

        resolved = pulumi.Output.from_input(images or []).apply(pick)
        self.image = resolved.apply(image_reference)
        self.image_name = resolved.apply(lambda r: r.name)
        body = {"className": class_name, **({"storageClass": storage_class} if storage_class else {}), **(spec or {})}
        self.vm = k8s.apiextensions.CustomResource(
            name,
            api_version=f"vmoperator.vmware.com/{VERSION}",
            kind="VirtualMachine",
            metadata={"name": name, "namespace": namespace},
            spec=resolved.apply(lambda r: {**body, "imageName": r.name, "image": image_reference(r)}),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.register_outputs({"image": self.image, "image_name": self.image_name})
