"""Which declaration made a thing: what lets a `pulumi up` killed at any moment be run again.

The engine records a resource only after its provider returns, so a run killed in between
leaves a library item (or an image object) that no state knows, and the next run creates the
same declaration again. A declaration is its stack and resource name (the component knows
them); its token, with the inputs a change of which replaces the resource, is the same for the
same create run again and new for a replacement. An item carries it as the last line of its
description; an image object as its field manager.
"""

from __future__ import annotations

import hashlib

MARK = "vmimage-declaration:"


def declaration_token(declaration: str, *replacing: str) -> str:
    """The token of one declaration with these replacing inputs."""
    return hashlib.sha256("\0".join([declaration, *replacing]).encode()).hexdigest()[:32]


def marked(description: str, token: str | None) -> str:
    """An item's description as vCenter keeps it: the declared one, then the token's line."""
    if not token:
        return description
    return f"{description}\n\n{MARK} {token}" if description else f"{MARK} {token}"


def unmarked(description: str) -> tuple[str, str | None]:
    """The declared description and the token of an item's description (None without one)."""
    head, _, last = description.rpartition("\n")
    if last.startswith(MARK):
        return head.removesuffix("\n"), last.removeprefix(MARK).strip() or None
    if description.startswith(MARK):
        return "", description.removeprefix(MARK).strip() or None
    return description, None
