"""DeletionGuard: a run that would delete an item or image object of a protected stack stops in
its preview, before anything is deleted (vmimage/guard.py says what and why).

The guard keeps the resources the catalog declared in its last run. Its `check` runs in every
preview and `up` with that list (the olds) and this run's: what is gone from it is what the engine
will delete at the end of the run, so a failure here stops the run before any delete. The
engine's `protect` on a DestroyGuard, which depends on every resource of the catalog and so is
the first a `pulumi destroy` deletes, stops a destroy of a protected stack before anything goes
(the engine deletes in parallel otherwise, and refuses a protected resource only when it gets to it).
"""

from __future__ import annotations

import os
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ResourceProvider, UpdateResult

from vmimage.guard import ALLOW_ENV, blocked, guard_message, removals, stale_allowances

INPUTS = ("declared", "former_names", "protection", "allowed")


class DeletionGuardProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {key: news.get(key) for key in INPUTS}
        removed = removals(olds.get("declared") or {}, news.get("declared") or {}, news.get("former_names") or ())
        # what this run deletes, where a policy (policies/: vmimage-deletions-allowed) and the diff see it
        inputs["removing"] = {name: entry.wire() for name, entry in removed.items()}
        refused = blocked(
            inputs["removing"], news.get("allowed") or [], bool(news.get("protection")), os.environ.get(ALLOW_ENV)
        )
        stale = stale_allowances(news.get("allowed") or [], removed)
        if stale:
            pulumi.log.warn(
                f"vmimage:allowDelete names {', '.join(map(repr, stale))}, of which this run deletes nothing: take "
                "it out, or a later accidental deletion of that image goes through"
            )
        failures = [CheckFailure("declared", guard_message(refused))] if refused else []
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A change only when the run deletes something or the guard's settings move: a run that only
        adds is a same step, which still records this run's list (the engine keeps a same step's new
        inputs), so the diff a reviewer reads shows the guard only when it matters."""
        moved = any(olds.get(key) != news.get(key) for key in ("protection", "allowed"))
        return DiffResult(changes=bool(news.get("removing")) or moved, replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("deletion-guard", {**props, "removing": {}})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, "removing": {}})


class DeletionGuard(pulumi.dynamic.Resource, module="vmimage", name="DeletionGuard"):
    """The catalog's deletion guard. Type token: pulumi-python:dynamic/vmimage:DeletionGuard."""

    def __init__(
        self,
        resource_name: str,
        *,
        declared: dict[str, list[str]],
        former_names: list[str],
        protection: bool,
        allowed: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``declared``: resource name → [display name, what it is] for every item and image object
        of this run; ``former_names``: the names they had (aliases), so a rename is no deletion.
        `DestroyGuard` keeps `pulumi destroy` off a protected stack."""
        inputs = {
            "declared": declared,
            "former_names": sorted(set(former_names)),
            "protection": protection,
            "allowed": sorted(set(allowed)),
            "removing": None,
        }
        super().__init__(DeletionGuardProvider(), resource_name, inputs, opts)


class DestroyGuardProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("destroy-guard", {})


class DestroyGuard(pulumi.dynamic.Resource, module="vmimage", name="DestroyGuard"):
    """Protected with the stack, and dependent on all of the catalog: `pulumi destroy` meets it first
    and stops there. Type token: pulumi-python:dynamic/vmimage:DestroyGuard."""

    def __init__(
        self, resource_name: str, *, protection: bool, guarded: list[pulumi.Resource], opts: pulumi.ResourceOptions
    ) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protection, depends_on=guarded))
        super().__init__(DestroyGuardProvider(), resource_name, {}, opts)
