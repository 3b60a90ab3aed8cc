"""The catalog's rules, as the policy pack (policies/) applies them: pure functions over what the
engine shows of a resource, each returning the problems it finds (empty when none)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vmimage.errors import redact

UNVERIFIED_SSL_KEY = "vsphere:allowUnverifiedSsl"


def missing_sha256(item: Mapping[str, Any]) -> list[str]:
    """A library item whose content nothing pins: production images declare `sha256`."""
    if item.get("sha256") or item.get("adopt_id"):
        return []
    source = redact(str(item.get("source") or "?"))
    return [
        f"image {item.get('name')!r} ({source}) declares no sha256: production images pin their content "
        "(add `sha256:` to the image in the stack config; for a bare .ovf, its manifest's SHA-256)"
    ]


def unverified_ssl(config: Mapping[str, Any]) -> list[str]:
    """vsphere:allowUnverifiedSsl set: TLS to vCenter is not verified."""
    value = config.get(UNVERIFIED_SSL_KEY)
    if str(value).lower() != "true":
        return []
    return [
        f"{UNVERIFIED_SSL_KEY} is true: TLS to vCenter is not verified outside a dev stack "
        "(set vsphere:caFile to vCenter's CA instead, and remove allowUnverifiedSsl)"
    ]


def below_floors(
    name: str,
    status: Mapping[str, Any],
    *,
    min_hardware_version: int | None = None,
    require_efi: bool = False,
    allowed_os_types: Sequence[str] = (),
) -> list[str]:
    """An OVF image under the platform's floors: hardware version, firmware, OS type."""
    if status.get("type") != "OVF":
        return []
    problems = []
    hardware = status.get("hardwareVersion")
    min_hardware_version = int(min_hardware_version) if min_hardware_version is not None else None  # JSON: 21.0
    if min_hardware_version is not None and (not isinstance(hardware, int) or hardware < min_hardware_version):
        problems.append(
            f"image {name!r} has hardware version {hardware or 'unknown'}, under the floor vmx-{min_hardware_version} "
            "(upgrade the VM's compatibility before exporting it)"
        )
    firmware = str(status.get("firmware") or "").upper()
    if require_efi and firmware != "EFI":
        problems.append(f"image {name!r} boots with {firmware or 'unknown'} firmware, and EFI is required")
    os_type = (status.get("osInfo") or {}).get("type")
    if allowed_os_types and os_type not in allowed_os_types:
        problems.append(f"image {name!r} has OS type {os_type or 'unknown'}, not one of {', '.join(allowed_os_types)}")
    return problems


def duplicate_display_names(entries: Iterable[tuple[str | None, str, str]]) -> list[str]:
    """The same display name twice in one scope makes resolution ambiguous: name both entries.
    ``entries``: (namespace, or None for cluster scope; display name; where it comes from)."""
    first: dict[tuple[str | None, str], str] = {}
    problems = []
    for namespace, display_name, origin in entries:
        key = (namespace, display_name)
        if key in first:
            scope = "cluster scope" if namespace is None else f"namespace {namespace}"
            problems.append(f"display name {display_name!r} appears twice in {scope}: {first[key]} and {origin}")
        else:
            first[key] = origin
    return problems
