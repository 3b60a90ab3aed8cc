"""Shared test helpers: building objects from files with a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vmimage.contract.image import file_image, image_object
from vmimage.descriptor.source import default_display_name, read_image_file

FIXED_NOW = datetime(2024, 1, 15, 10, 0, 0, tzinfo=UTC)
READY = [
    {"type": "Ready", "status": "True", "reason": "True", "message": "", "lastTransitionTime": "2024-01-15T10:00:00Z"}
]


def inspect_file(path: Path, **options: Any) -> dict[str, Any]:
    """What `vmimage inspect` prints for ``path``, as a dict, at FIXED_NOW."""
    cluster = options.pop("cluster", False)
    namespace = options.pop("namespace", None)
    options.setdefault("name", default_display_name(str(path)))
    image = file_image(read_image_file(str(path)), now=FIXED_NOW, **options)
    return image_object(image.status, cluster=cluster, namespace=namespace, labels=image.labels).wire()
