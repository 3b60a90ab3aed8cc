"""What a preview asks vCenter, and what an offline preview leaves out.

A preview logs in to vCenter (read-only) and asks it what `up` would otherwise find out too
late: whether the credentials work, whether the server answers, whether a library to create
has a name vCenter already holds. Without vCenter at hand a person can preview anyway, for
one run, by setting VMIMAGE_OFFLINE=1; the preview then warns, in one line that starts with
UNCHECKED, what it did not check, and `vmimage preview-summary` repeats that line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vmimage.errors import ImageError

OFFLINE = "VMIMAGE_OFFLINE"
UNCHECKED = f"offline preview ({OFFLINE}=1), not checked against vCenter:"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def offline(env: Mapping[str, str]) -> bool:
    """Whether this run was asked to preview without vCenter (an environment variable, never
    stack config: a committed setting would switch the checks off for every preview)."""
    value = env.get(OFFLINE, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImageError(OFFLINE, f"{env[OFFLINE]!r} is not a boolean: set it to 1 to preview without vCenter, or unset it")


def unchecked(server: str | None, libraries: Iterable[str], namespaces: Iterable[str] = ()) -> str:
    """The offline preview's warning: what a preview with vCenter would have checked."""
    where = f"vCenter {server}" if server else "vCenter (vsphere:vsphereServer is not set)"
    parts = [f"the login to {where} (is it reachable; are vsphere:user and vsphere:password right)"]
    names = ", ".join(repr(name) for name in libraries)
    if names:
        parts.append(f"whether vCenter already has a library named {names} (a library the stack would create)")
    spaces = ", ".join(repr(name) for name in namespaces)
    if spaces:
        parts.append(f"whether the Supervisor namespaces {spaces} exist")
    return f"{UNCHECKED} " + "; ".join(parts)


def unchecked_in(message: str) -> str | None:
    """What went unchecked, when ``message`` (a diagnostic of the preview) is the offline warning."""
    _, found, rest = message.partition(UNCHECKED)
    return rest.strip() if found else None
