"""The engine's floor for benchmarks/catalog_1000.py: the resources a synced catalog of N images
makes (one ``vmimage:index:ImageCatalog`` component, N ClusterVirtualMachineImage resources of the
same type token, with inputs of the same shape), through a dynamic provider that does no work:
check returns its inputs, diff compares them, create and update return them as outputs.

Config (plain, under ``baseline:``): ``items`` (N) and ``kubeconfig`` (a path, as the real
stack's inputs carry).
"""

from __future__ import annotations

import uuid

import pulumi

from benchmarks.baseline.noop import ClusterVirtualMachineImage

NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")


class ImageCatalog(pulumi.ComponentResource):
    def __init__(self, name: str, items: int, kubeconfig: str) -> None:
        super().__init__("vmimage:index:ImageCatalog", name)
        for index in range(items):
            item_id = str(uuid.uuid5(NAMESPACE, f"vendor-image-{index:04d}"))
            ClusterVirtualMachineImage(
                f"{name}-cvmi-vendor-image-{index:04d}-cluster",
                {
                    "item_id": item_id,
                    "content_version": "1",
                    "content_fingerprint": None,
                    "display_name": f"vendor-image-{index:04d}",
                    "namespace": None,
                    "capabilities": [],
                    "extra_labels": {},
                    "kubeconfig": kubeconfig,
                    "context": None,
                    "declaration": f"vmimage/bench/{name}-cvmi-vendor-image-{index:04d}",
                },
                pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})


config = pulumi.Config("baseline")
ImageCatalog("catalog", config.require_int("items"), config.get("kubeconfig") or "")
