"""VmOperatorCrds: VM Operator's image CRDs, for clusters that have none.

A cluster that runs VM Operator has its CRDs, and they are its own: this component leaves them
alone and says so. Where none exist it installs VM Operator's (vmimage/contract/upstream/), labelled as
vmimage's, and keeps those current on later runs. It never deletes a CRD: deleting one would
delete every image object of its kind, so a destroy or a removed declaration leaves them.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from vmimage.contract.crds import INSTALLED, INSTALLED_BY_LABEL, crd_plan, crds


class VmOperatorCrds(pulumi.ComponentResource):
    """The image CRDs: installed where absent, never replaced, never deleted."""

    plan: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        name: str,
        existing: dict[str, dict[str, Any] | None],
        provider: k8s.Provider | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("vmimage:index:VmOperatorCrds", name, None, opts)
        # retain_on_delete: a destroy, or a run that no longer declares one, leaves the CRD in place
        child = pulumi.ResourceOptions(parent=self, provider=provider, retain_on_delete=True)
        decided = crd_plan(existing)
        self.definitions = []
        for document in crds():
            crd_name = document["metadata"]["name"]
            pulumi.log.info(f"CustomResourceDefinition {crd_name}: {decided[crd_name]}", self)
            if decided[crd_name] != INSTALLED:
                continue
            metadata = {**document["metadata"], "labels": {INSTALLED_BY_LABEL: "vmimage"}}
            resource_name = f"{name}-{document['spec']['names']['plural']}"
            self.definitions.append(
                k8s.apiextensions.v1.CustomResourceDefinition(
                    resource_name, metadata=metadata, spec=document["spec"], opts=child
                )
            )
        self.plan = pulumi.Output.from_input(decided)
        self.register_outputs({"plan": self.plan})
