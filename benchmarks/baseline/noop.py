"""The baseline's dynamic provider: it does no work. In a module of its own so that the state
holds a reference to it (as vmimage's providers are held), not the class pickled by value."""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ResourceProvider, UpdateResult


class Noop(ResourceProvider):
    """Returns what it is given: the engine's and the provider host's own cost, nothing else."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in news if key != "__provider" and olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed))

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(props["item_id"], props)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(news)


class ClusterVirtualMachineImage(pulumi.dynamic.Resource, module="vmimage", name="ClusterVirtualMachineImage"):
    def __init__(self, name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__(Noop(), name, inputs, opts)
