"""The kubectl-style listing of images: VM Operator's own printer columns, read from its CRDs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from vmimage.contract.crds import printer_columns
from vmimage.contract.models import CLUSTER_KIND, NAMESPACED_KIND, Image

_CAPABILITIES = ("Capabilities", ".status.capabilities")


def _columns(kind: str | None, wide: bool) -> list[tuple[str, str]]:
    """What `kubectl get` prints for ``kind``: VirtualMachineImage's columns end with its
    capabilities, ClusterVirtualMachineImage's have none; -o wide adds them where missing.
    ``kind`` None: the columns both kinds print, for one table of both (the stack's output)."""
    if kind is None:
        cluster = printer_columns(CLUSTER_KIND)
        columns = [column for column in printer_columns(NAMESPACED_KIND) if column in cluster]
    else:
        columns = printer_columns(kind)
    if wide and _CAPABILITIES not in columns:
        columns = [*columns, _CAPABILITIES]
    return columns


def kind_columns(kind: str | None, wide: bool = False) -> tuple[str, ...]:
    """The header `kubectl get` prints for ``kind``: NAME, then the printer columns upper-cased."""
    return ("NAME", *(name.upper() for name, _ in _columns(kind, wide)))


COLUMNS = kind_columns(None)  # NAME and the columns both kinds print
WIDE_COLUMNS = kind_columns(None, wide=True)


def _cell(document: dict[str, Any], path: str) -> str:
    """A simple JSONPath's value as kubectl prints a string column: text as is, a list or an
    object as JSON (`["nvidia-gpu"]`), nothing as an empty cell."""
    value: Any = document
    for key in path.lstrip(".").split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def image_row(image: Image, wide: bool = False, kind: str | None = None) -> list[str]:
    """One row of ``kind_columns(kind, wide)``."""
    document = image.wire()
    columns = _columns(kind, wide)
    return [image.metadata.name or "<none>", *(_cell(document, path) for _, path in columns)]


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell and separated by three spaces, as kubectl does."""
    rows = [list(header), *map(list, rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def image_table(images: Iterable[Image], kind: str, wide: bool = False) -> str:
    """`kubectl get` of images of one kind."""
    return format_table(kind_columns(kind, wide), (image_row(i, wide, kind) for i in images))
