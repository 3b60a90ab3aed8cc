"""StackInstance: the random salt that tells this stack's items and image objects from another's.

A stack name is no owner: every copy of the project has the same project and resource names,
so `prod` in another backend, organisation or fork, or in an empty state, would make the same
declaration tokens (vmimage/declaration.py) and take this stack's items for its own. The salt
is made by this resource's create and kept in the stack's own state. The catalog registers it
first and hands its output to every item and image resource as an input, so the engine has
recorded it (a checkpoint per step) before any item exists: a first run killed later finds
it again. Its output and that input are ``__``-named, which the CLI never shows in a diff.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider

from providers.common import INSTANCE
from vmimage.declaration import checkpoints_skipped, new_instance
from vmimage.errors import ImageError


class StackInstanceProvider(ResourceProvider):
    """Makes the salt once; nothing changes it, and deleting it touches nothing outside the state."""

    def __init__(self, names: tuple[str, ...] = ("catalog", "catalog-instance")) -> None:
        """``names``: its parent's and its own, which a targeted run must name to create it."""
        super().__init__()
        self.names = names

    def create(self, props: dict[str, Any]) -> CreateResult:
        if checkpoints_skipped(dict(os.environ)):
            targets = " ".join(f"--target '**::{name}'" for name in self.names)
            record_first = f"PULUMI_SKIP_CHECKPOINTS= pulumi up {targets}"
            raise ImageError(
                "PULUMI_SKIP_CHECKPOINTS",
                "this stack has no instance recorded yet, and a run that records its state only when it ends "
                "could not tell what it made from another stack's if it were killed: record it first with "
                f"`{record_first}` (seconds; nothing else is created), then run again",
            )
        return CreateResult(f"instance-{uuid.uuid4().hex[:12]}", {INSTANCE: new_instance()})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False, replaces=[])

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return None


class StackInstance(pulumi.dynamic.Resource, module="vmimage", name="StackInstance"):
    """This stack instance's salt, as the output ``__instance`` (``salt``). Type token:
    pulumi-python:dynamic/vmimage:StackInstance."""

    def __init__(self, resource_name: str, catalog: str, opts: pulumi.ResourceOptions | None = None) -> None:
        """``catalog``: the name of the component it is a child of."""
        provider = StackInstanceProvider((catalog, resource_name))
        super().__init__(provider, resource_name, {INSTANCE: None}, opts)

    @property
    def salt(self) -> pulumi.Output[str]:
        return self.__dict__[INSTANCE]
