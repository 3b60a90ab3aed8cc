"""VmOperatorCrds: the two image CRDs, for clusters that have no VM Operator."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from vmimage.crds import crds


class VmOperatorCrds(pulumi.ComponentResource):
    """Installs VirtualMachineImage and ClusterVirtualMachineImage as `vmimage crds` prints them."""

    names: pulumi.Output[list[str]]

    def __init__(self, name: str, provider: k8s.Provider | None = None, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vmimage:index:VmOperatorCrds", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.definitions = [
            k8s.apiextensions.v1.CustomResourceDefinition(
                f"{name}-{document['spec']['names']['plural']}",
                metadata=document["metadata"],
                spec=document["spec"],
                opts=child,
            )
            for document in crds()
        ]
        self.names = pulumi.Output.all(*[d.metadata["name"] for d in self.definitions])
        self.register_outputs({"names": self.names})
