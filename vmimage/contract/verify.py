"""What VM Operator published against what vmimage predicted: supervisor mode's check, and
`vmimage verify`'s. Pure: two objects in, the differences out, field by field."""

from __future__ import annotations

import copy
from typing import Any

from vmimage.contract.image import DISPLAY_NAME_ANNOTATION
from vmimage.contract.labels import CAPABILITY_LABEL_PREFIX

# what the API server keeps for itself: left out of an observed object
_SERVER_METADATA = {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"}


def _without_moments(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_moments(v) for k, v in value.items() if k not in ("lastTransitionTime", "observedGeneration")
        }
    if isinstance(value, list):
        return [_without_moments(v) for v in value]
    return value


def observed(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as read from the cluster, without what the API server keeps for itself."""
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    return {**obj, "metadata": metadata}


def without_vmimage_capabilities(predicted: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """The prediction without what vmimage adds where VM Operator leaves it out: capabilities
    (status.capabilities and their labels), which the CRD documents and VM Operator's code at
    the recorded commit does not fill (docs/reference.md)."""
    if "capabilities" in (actual.get("status") or {}):
        return predicted
    trimmed = copy.deepcopy(predicted)
    (trimmed.get("status") or {}).pop("capabilities", None)
    labels = (trimmed.get("metadata") or {}).get("labels") or {}
    for key in [k for k in labels if k.startswith(CAPABILITY_LABEL_PREFIX)]:
        del labels[key]
    return trimmed


def differences(predicted: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """``path: predicted X, VM Operator has Y`` for each field the two objects do not share:
    the name, the labels and annotations, spec and status (moments left out, and capabilities
    where VM Operator fills none)."""
    predicted = without_vmimage_capabilities(predicted, actual)
    found: list[str] = []

    def compare(path: str, want: Any, have: Any) -> None:
        if isinstance(want, dict) and isinstance(have, dict):
            for key in sorted(set(want) | set(have)):
                compare(f"{path}.{key}" if path else key, want.get(key), have.get(key))
        elif want != have:
            found.append(f"{path}: predicted {want!r}, VM Operator has {have!r}")

    want_meta, have_meta = predicted.get("metadata") or {}, actual.get("metadata") or {}
    compare("metadata.name", want_meta.get("name"), have_meta.get("name"))
    for key in ("labels", "annotations"):
        compare(f"metadata.{key}", want_meta.get(key) or {}, have_meta.get(key) or {})
    for key in ("spec", "status"):
        compare(key, _without_moments(predicted.get(key) or {}), _without_moments(actual.get(key) or {}))
    return found


def _ready(obj: dict[str, Any]) -> str | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)


# What VM Operator derives from the item, by where it shows: a change of the item (new content,
# a new name) reaches these fields first, so an object that has them as predicted has caught up.
DERIVED = {
    "status.providerContentVersion": lambda obj: (obj.get("status") or {}).get("providerContentVersion"),
    "status.name": lambda obj: (obj.get("status") or {}).get("name"),
    f"metadata.annotations[{DISPLAY_NAME_ANNOTATION}]": lambda obj: (
        (obj.get("metadata") or {}).get("annotations") or {}
    ).get(DISPLAY_NAME_ANNOTATION),
    "status.conditions[Ready]": _ready,
}


def behind(actual: dict[str, Any] | None, predicted: dict[str, Any]) -> list[str]:
    """The fields VM Operator derives from the item (DERIVED) where its object is not yet as
    predicted: its content version, display name and display-name annotation, and readiness
    (Ready, or NotReady for a package it would refuse). ``["the object"]`` when there is none.
    A prediction without a content version (a server that reports none) does not wait for one."""
    if not actual:
        return ["the object"]
    return [
        field
        for field, read in DERIVED.items()
        if read(actual) != read(predicted)
        and not (field == "status.providerContentVersion" and read(predicted) is None)
    ]


def settled(actual: dict[str, Any] | None, predicted: dict[str, Any]) -> bool:
    """Whether VM Operator has caught up with the item: every field it derives from it (content
    version, display name and its annotation, readiness) is as predicted. Only then is a
    comparison fair: before, a difference may be VM Operator not having seen the change yet."""
    return not behind(actual, predicted)
