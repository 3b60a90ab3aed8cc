"""The labels VM Operator puts on an image (its status-to-label sync and the descriptor's
``vmservice.vmi.labels`` ExtraConfig), for ``kubectl get vmi -l ...`` selection."""

from __future__ import annotations

import re

from vmimage.contract.models import READY, REASON_SECURITY_NOT_COMPLIANT, ImageStatus

TYPE_LABEL = "image.vmoperator.vmware.com/type"
OS_ID_LABEL = "os.image.vmoperator.vmware.com/id"
OS_TYPE_LABEL = "os.image.vmoperator.vmware.com/type"
OS_VERSION_LABEL = "os.image.vmoperator.vmware.com/version"
CAPABILITY_LABEL_PREFIX = "capability.image.vmoperator.vmware.com/"
EXTRA_CONFIG_LABELS = "vmservice.vmi.labels"  # ExtraConfig key: "team:platform,gpu"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def is_label_value(value: str) -> bool:
    """A valid Kubernetes label value: at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends."""
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def is_label_name(name: str) -> bool:
    """A valid name part of a label key (what follows the prefix's slash)."""
    return len(name) <= 63 and bool(_LABEL_NAME.match(name))


def is_label_key(key: str) -> bool:
    """A valid label key: an optional DNS-subdomain prefix and a slash, then a name."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return is_label_name(name)


def extra_config_labels(value: str) -> dict[str, str]:
    """The labels of ``vmservice.vmi.labels``: comma-separated ``key:value`` or ``key`` (value "").

    VM Operator splits exactly so and skips entries with more than one colon; vmimage also
    skips keys or values the API server would refuse, which would otherwise fail the object.
    """
    labels: dict[str, str] = {}
    for entry in value.split(",") if value else ():
        parts = entry.split(":")
        if len(parts) > 2:
            continue
        key, label = parts[0], parts[1] if len(parts) == 2 else ""
        if is_label_key(key) and is_label_value(label):
            labels[key] = label
    return labels


def status_labels(status: ImageStatus) -> dict[str, str]:
    """The type, OS and capability labels as VM Operator's SyncStatusToLabels sets them: a value
    that is empty or not a valid label value leaves its label out; capability labels are "true"."""
    labels: dict[str, str] = {}
    os_info = status.os_info
    if _not_compliant(status):  # VM Operator stops before its label sync: only vmimage's capabilities
        return {
            CAPABILITY_LABEL_PREFIX + c: "true"
            for c in status.capabilities or ()
            if is_label_key(CAPABILITY_LABEL_PREFIX + c)
        }
    for key, value in (
        (TYPE_LABEL, status.type),
        (OS_ID_LABEL, os_info.id),
        (OS_TYPE_LABEL, os_info.type),
        (OS_VERSION_LABEL, os_info.version),
    ):
        if value and is_label_value(value):
            labels[key] = value
    for capability in status.capabilities or ():
        if is_label_key(CAPABILITY_LABEL_PREFIX + capability):
            labels[CAPABILITY_LABEL_PREFIX + capability] = "true"
    return labels


def _not_compliant(status: ImageStatus) -> bool:
    return any(c.type == READY and c.reason == REASON_SECURITY_NOT_COMPLIANT for c in status.conditions or ())


def image_labels(
    status: ImageStatus, descriptor_labels: dict[str, str] | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """All labels of an image: the stack's ``extra`` ones, the descriptor's, then the status's,
    in the order VM Operator applies them (a later one wins a shared key)."""
    return {**(extra or {}), **(descriptor_labels or {}), **status_labels(status)}
