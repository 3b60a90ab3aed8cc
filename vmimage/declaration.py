"""Which declaration made a thing: what lets a `pulumi up` killed at any moment be run again,
without taking what another stack made.

The engine records a resource only after its provider returns, so a run killed in between
leaves a library item (or an image object) that no state knows, and the next run creates the
same declaration again. A declaration is its resource name within one stack *instance*: the
stack's state holds a random salt (providers/instance.py) from its first run on, recorded
before any item or object exists, so that the same stack name in another backend, another
organisation, a fork or an empty state is another instance. Its token, with the inputs a change
of which replaces the resource, is the same for the same create run again and new for a
replacement; no other stack makes it from the same names. An item carries it as the last line
of its description; an image object as its field manager.
"""

from __future__ import annotations

import hashlib
import secrets

MARK = "vmimage-declaration:"


def new_instance() -> str:
    """A stack instance's salt: random, never derived from a name any copy of the project shares."""
    return secrets.token_hex(16)


def checkpoints_skipped(environ: dict[str, str]) -> bool:
    """Whether the CLI records the state only when the run ends (PULUMI_SKIP_CHECKPOINTS, read as
    the CLI reads it): a salt made in such a run is lost with the run if it is killed."""
    value = environ.get("PULUMI_SKIP_CHECKPOINTS", "")
    return value == "1" or value.lower() == "true"


def declaration_token(instance: str, declaration: str, *replacing: str) -> str:
    """The token of one declaration of one stack instance, with these replacing inputs."""
    return hashlib.sha256("\0".join([instance, declaration, *replacing]).encode()).hexdigest()[:32]


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
