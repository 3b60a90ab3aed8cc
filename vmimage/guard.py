"""The deletion guard: what a run would delete, and whether the stack allows it.

Deleting a content library item deletes its UUID, and with it the VMI ID every VM spec that
names the image holds; uploading it again gives a new one. So a stack with deletion protection
(the default) deletes an item or an image object only when it is named in
``vmimage:allowDelete`` (or ``VMIMAGE_ALLOW_DELETE`` for one run). Pure: the declared resources
of the last run and of this one come in as data (providers/deletion_guard.py keeps them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ALLOW_ENV = "VMIMAGE_ALLOW_DELETE"
ALLOW_ALL = "*"


@dataclass(frozen=True)
class Declared:
    """One resource the catalog declares that deleting would lose: an item or an image object."""

    display_name: str
    what: str  # "library item in dev-images", "ClusterVirtualMachineImage", "VirtualMachineImage in dev"

    def wire(self) -> list[str]:
        return [self.display_name, self.what]


def removals(
    before: Mapping[str, list[str]], now: Mapping[str, list[str]], former_names: Iterable[str] = ()
) -> dict[str, Declared]:
    """What the last run declared (resource name → [display name, what]) that this run does not,
    neither under its name nor as a former name of a resource it declares (a rename keeps it)."""
    kept = set(now) | set(former_names)
    return {name: Declared(*[*entry, "?", "?"][:2]) for name, entry in sorted(before.items()) if name not in kept}


def parse_allowed(value: str | None) -> list[str]:
    """VMIMAGE_ALLOW_DELETE: display names separated by commas, or ``*`` for every one."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def unallowed(removed: Mapping[str, Declared], allowed: Iterable[str]) -> dict[str, Declared]:
    """The removals no display name in ``allowed`` (nor ``*``) covers."""
    names = set(allowed)
    if ALLOW_ALL in names:
        return {}
    return {name: entry for name, entry in removed.items() if entry.display_name not in names}


def describe(removed: Mapping[str, Declared]) -> list[str]:
    """One line per display name: what of it goes."""
    by_name: dict[str, list[str]] = {}
    for entry in removed.values():
        by_name.setdefault(entry.display_name, []).append(entry.what)
    return [f"{name!r}: {', '.join(sorted(whats))}" for name, whats in sorted(by_name.items())]


def guard_message(removed: Mapping[str, Declared]) -> str:
    """Why the run stops, what would go, and the two ways to allow it."""
    names = sorted({entry.display_name for entry in removed.values()})
    listed = ", ".join(names)
    lines = [
        f"deletion guard: this run would delete {len(removed)} resource(s) of {len(names)} image(s), and the stack "
        "has deletion protection (vmimage:deletionProtection):",
        *(f"  - {line}" for line in describe(removed)),
        "Deleting an item loses its UUID and VMI ID for good: VMs that name it break, and uploading it again gives "
        "a new one. A config key that is misspelt or gone (vmimage:images) deletes like this too: check the stack "
        "file first.",
        f"If the deletion is intended, allow it by name in the stack file, `vmimage:allowDelete: [{listed}]`, "
        f"and take the entry out after the update; or for one run, {ALLOW_ENV}='{listed}' ('*' allows every one).",
    ]
    return "\n".join(lines)


def stale_allowances(allowed: Iterable[str], removed: Mapping[str, Declared]) -> list[str]:
    """Names in allowDelete that this run deletes nothing of: left in, they would let a later
    accidental deletion of that image through."""
    going = {entry.display_name for entry in removed.values()}
    return sorted({name for name in allowed if name != ALLOW_ALL and name not in going})


def blocked(
    removing: Mapping[str, list[str]], allowed: Iterable[str], protection: bool, env_value: str | None
) -> dict[str, Declared]:
    """The removals a protected run may not make: those neither ``allowed`` (vmimage:allowDelete)
    nor the environment's VMIMAGE_ALLOW_DELETE names. The provider and the policy pack both ask."""
    if not protection:
        return {}
    removed = {name: Declared(*[*entry, "?", "?"][:2]) for name, entry in removing.items()}
    return unallowed(removed, [*allowed, *parse_allowed(env_value)])
