"""DeletionGuard: a run that would delete an item or image object of a protected stack stops in
its preview, before anything is deleted (vmimage/review/guard.py says what and why).

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

from providers.common import warn
from vmimage.review.guard import ALLOW_ALL, ALLOW_ENV, blocked, guard_message, parse_allowed, removals, stale_allowances

INPUTS = ("declared", "former_names", "protection", "allowed")


class DeletionGuardProvider(ResourceProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        inputs = {key: news.get(key) for key in INPUTS}
        try:
            removed = removals(olds.get("declared") or {}, news.get("declared") or {}, news.get("former_names") or {})
        except (TypeError, ValueError, AttributeError) as error:  # never read as "nothing removed"
            if news.get("protection") and parse_allowed(os.environ.get(ALLOW_ENV)) != [ALLOW_ALL]:
                why = (
                    f"deletion guard: its record of the last run is unreadable ({error}), so what this run deletes "
                    f"cannot be told: check the stack's state; {ALLOW_ENV}='*' for one run records it anew"
                )
                return CheckResult(inputs, [CheckFailure("declared", why)])
            removed = {}
        # what this run deletes, where a policy (policies/: vmimage-deletions-allowed) and the diff see it
        inputs["removing"] = {name: entry.wire() for name, entry in removed.items()}
        refused = blocked(
            inputs["removing"], news.get("allowed") or [], bool(news.get("protection")), os.environ.get(ALLOW_ENV)
        )
        stale = stale_allowances(news.get("allowed") or [], removed)
        if stale:
            warn(
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
        former_names: dict[str, list[str]],
        protection: bool,
        allowed: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``declared``: resource name → [display name, what it is, identity] for every item, image
        object and created library of this run (vmimage.review.guard.Declared); ``former_names``: resource
        name → the names it had (its aliases, in order), so a rename is no deletion.
        `DestroyGuard` keeps `pulumi destroy` off a protected stack."""
        inputs = {
            "declared": declared,
            "former_names": {name: aliases for name, aliases in sorted(former_names.items()) if aliases},
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
