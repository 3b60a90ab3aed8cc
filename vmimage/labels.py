"""Labels derived from an image's status, for `kubectl get vmi -l ...` selection."""

from __future__ import annotations

import re

from vmimage.models import ImageStatus

OS_TYPE_LABEL = "os.image.vmoperator.vmware.com/type"
OS_VERSION_LABEL = "os.image.vmoperator.vmware.com/version"
CAPABILITY_LABEL_PREFIX = "capability.image.vmoperator.vmware.com/"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def is_label_value(value: str) -> bool:
    """A valid Kubernetes label value: at most 63 characters of [A-Za-z0-9-_.], alphanumeric at both ends."""
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def is_label_name(name: str) -> bool:
    """A valid name part of a label key (what follows the prefix's slash)."""
    return len(name) <= 63 and bool(_LABEL_NAME.match(name))


def image_labels(status: ImageStatus) -> dict[str, str]:
    """The OS and capability labels; any that would be invalid is left out, never mangled."""
    labels: dict[str, str] = {}
    if status.os_info is not None:
        for key, value in ((OS_TYPE_LABEL, status.os_info.type), (OS_VERSION_LABEL, status.os_info.version)):
            if value is not None and is_label_value(value):
                labels[key] = value
    for capability in status.capabilities or ():
        if is_label_name(capability):
            labels[CAPABILITY_LABEL_PREFIX + capability] = ""
    return labels
