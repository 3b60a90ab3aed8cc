"""The deletion guard: what a run would delete, and whether the stack allows it.

Deleting a content library item deletes its UUID, and with it the VMI ID every VM spec that
names the image holds; uploading it again gives a new one. So a stack with deletion protection
(the default) deletes (or replaces) an item, an image object or a library it created only when
it is named in ``vmimage:allowDelete`` (or ``VMIMAGE_ALLOW_DELETE`` for one run). Pure: the
declared resources of the last run and of this one come in as data (providers/deletion_guard.py
keeps them), and so does the stack config the item and library providers ask at a delete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

ALLOW_ENV = "VMIMAGE_ALLOW_DELETE"
ALLOW_ALL = "*"
LIBRARY = "content library"  # what a library entry is (the rest: "library item in …", the image kinds)
PROTECTION_KEY, ALLOW_KEY = "vmimage:deletionProtection", "vmimage:allowDelete"
# where an image object's identity says vmimage writes it nowhere, replacing it deletes nothing:
# a stack without a cluster keeps it in its state only; in supervisor mode it is VM Operator's
NO_CLUSTER, SUPERVISED = "no cluster", "VM Operator's"


def object_identity(library_identity: str, cluster: str | None, supervised: bool = False) -> str:
    """An image object's identity: its library's (which replaces its item, and so it), then the
    cluster (kubeconfig and context: a new one replaces the object, and deletes it from the one
    before), then whether it is VM Operator's (a mode is an update, never a replace)."""
    return "; ".join([library_identity, cluster or NO_CLUSTER, *([SUPERVISED] if supervised else [])])


def _replaced(old: str, new: str) -> bool:
    """Whether an identity moved. Parts are compared as far as both have them: a record written
    before a part existed (an image object's cluster) is no replace, nor is a mode switched. An
    object vmimage wrote nowhere loses nothing when replaced."""
    if not old or not new:
        return False
    old_parts, new_parts = old.split("; "), new.split("; ")
    if len(old_parts) > 1 and (old_parts[1] == NO_CLUSTER or old_parts[-1] == SUPERVISED):
        return False
    return any(a != b for a, b in zip(old_parts[:2], new_parts[:2], strict=False))


@dataclass(frozen=True)
class Declared:
    """One resource the catalog declares that deleting would lose: an item, an image object or a
    library the stack created. ``identity``: what replaces it when it changes (the datastore of a
    created library, for the library, its items and their image objects); "" where nothing in the
    stack file does."""

    display_name: str
    what: str  # "library item in dev-images", "ClusterVirtualMachineImage", "VirtualMachineImage in dev"
    identity: str = ""

    def wire(self) -> list[str]:
        return [self.display_name, self.what, *([self.identity] if self.identity else [])]

    @classmethod
    def of(cls, entry: object) -> Declared:
        """An entry as the state keeps it ([display name, what, identity?]); a malformed one still
        counts, as "?", never as nothing."""
        parts = [str(part) for part in entry] if isinstance(entry, list | tuple) else [str(entry)]
        display_name, what = [*parts, "?", "?"][:2]
        return cls(display_name, what, parts[2] if len(parts) > 2 else "")


def removals(
    before: Mapping[str, object], now: Mapping[str, object], former_names: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Declared]:
    """What the last run declared (resource name → [display name, what, identity?]) that this run
    deletes: a name it declares no more, unless a resource of this run takes it over as a former
    name (``former_names``: resource name → its aliases); and a name whose identity changed (the
    engine replaces it: deletes it and creates it anew).

    A resource takes over a former name as the engine moves state: only when the last run did not
    declare it under its own name (it keeps its own state then, and the former one is deleted),
    by its first former name the last run declared, and one resource per former name."""
    if not isinstance(before, Mapping):
        raise TypeError(f"the deletion guard's record is a {type(before).__name__}, not a mapping")
    kept = {name: name for name in now if name in before}
    for name in now:
        if name in before:
            continue
        for former in (former_names or {}).get(name, ()):
            if former in before and former not in kept:
                kept[former] = name
                break
    removed = {}
    for name, entry in sorted(before.items()):
        old = Declared.of(entry)
        if name not in kept:
            removed[name] = Declared(old.display_name, old.what)
            continue
        new = Declared.of(now[kept[name]])
        if _replaced(old.identity, new.identity):
            removed[name] = Declared(old.display_name, f"{old.what} (replaced: {old.identity} → {new.identity})")
    return removed


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
    of = "image(s) and librar(ies)" if any(e.what.startswith(LIBRARY) for e in removed.values()) else "image(s)"
    lines = [
        f"deletion guard: this run would delete {len(removed)} resource(s) of {len(names)} {of}, and the stack "
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
    removed = {name: Declared.of(entry) for name, entry in removing.items()}
    # ``*`` counts from the environment only (one run, set on purpose): in the stack file it would
    # turn protection off for good while vmimage:deletionProtection still reads true
    return unallowed(removed, [*(name for name in allowed if name != ALLOW_ALL), *parse_allowed(env_value)])


def configured(config: Mapping[str, object]) -> tuple[bool, list[str]]:
    """vmimage:deletionProtection and vmimage:allowDelete as the engine hands a provider the
    stack's config (Configure; a structured value as JSON text). Unset, or unreadable: protected,
    nothing allowed (a value that cannot be read allows nothing)."""
    protection = config.get(PROTECTION_KEY)
    protected = str(protection).strip().lower() not in ("false", "0", "no", "off") if protection is not None else True
    allowed = config.get(ALLOW_KEY)
    if isinstance(allowed, str):
        try:
            allowed = json.loads(allowed)
        except ValueError:
            allowed = None
    names = [name for name in allowed if isinstance(name, str)] if isinstance(allowed, list) else []
    return protected, names


def refused_delete(entry: Declared, config: Mapping[str, object], env_value: str | None) -> str | None:
    """Why a provider may not delete this now, or None: the guard's rule once more, at the delete
    itself, from the stack's config of this run. The guard's check (in the preview) compares
    with what the last run recorded; this holds when that record is no guide (a run that failed
    after the guard recorded it, a replacement, a guard taken out of the state)."""
    protected, allowed = configured(config)
    refused = blocked({"": entry.wire()}, allowed, protected, env_value)
    return guard_message(refused) if refused else None
