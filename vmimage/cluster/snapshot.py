"""A set of image objects read from a file: what `vmimage get --from-file`, `resolve` and the
webhook's ``--images-from FILE`` work on (and what GitOps repositories hold)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from vmimage.contract.models import CLUSTER_KIND, NAMESPACED_KIND
from vmimage.descriptor.source import read_bounded_text
from vmimage.errors import ImageError

KINDS = (NAMESPACED_KIND, CLUSTER_KIND)
MAX_SNAPSHOT_BYTES = 64 * 2**20


def _documents(text: str, source: str) -> Iterator[Any]:
    try:
        if text.lstrip().startswith(("{", "[")):
            yield json.loads(text)
        else:
            yield from yaml.safe_load_all(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ImageError(source, f"not valid YAML or JSON ({exc})") from None


def parse_images(text: str, source: str, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Image objects from YAML (one or more documents) or JSON: objects, lists, or `kind: List`.
    Objects of other kinds (a VM, a ConfigMap) may share the file; each is named in ``skipped``."""
    images: list[dict[str, Any]] = []

    def take(document: Any, where: str) -> None:
        if document is None:
            return
        if isinstance(document, list):
            for index, item in enumerate(document):
                take(item, f"{where}[{index}]")
        elif isinstance(document, dict) and isinstance(document.get("items"), list):
            take(document["items"], f"{where}.items")
        elif isinstance(document, dict) and document.get("kind") in KINDS:
            if not isinstance(document.get("metadata"), dict) or not document["metadata"].get("name"):
                raise ImageError(source, f"{where}: an image without metadata.name")
            images.append(document)
        elif isinstance(document, dict) and document.get("kind"):
            if skipped is not None:
                name = (
                    (document.get("metadata") or {}).get("name") if isinstance(document.get("metadata"), dict) else None
                )
                skipped.append(f"{where}: {document['kind']}" + (f" {name}" if name else ""))
        else:
            raise ImageError(source, f"{where}: expected image objects, a list of them or a List")

    for index, document in enumerate(_documents(text, source)):
        take(document, f"document {index + 1}")
    return images


def load_images(path: str, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    return parse_images(read_bounded_text(path, MAX_SNAPSHOT_BYTES), path, skipped)
