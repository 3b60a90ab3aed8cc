"""The kubectl-style listing of images, with the reference page's columns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vmimage.models import Image

COLUMNS = ("NAME", "DISPLAY NAME", "TYPE", "IMAGE VERSION", "OS NAME", "OS VERSION", "HARDWARE VERSION")
WIDE_COLUMNS = (*COLUMNS, "CAPABILITIES")


def image_row(image: Image, wide: bool = False) -> list[str]:
    status = image.status
    os_info = status.os_info
    row = [
        image.metadata.name or "<none>",
        status.name or "",
        status.type or "",
        (status.product_info.version if status.product_info else None) or "",
        (os_info.type if os_info else None) or "",
        (os_info.version if os_info else None) or "",
        str(status.hardware_version) if status.hardware_version is not None else "",
    ]
    if wide:
        row.append(",".join(status.capabilities or ()))
    return row


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell and separated by three spaces, as kubectl does."""
    rows = [list(header), *map(list, rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def image_table(images: Iterable[Image], wide: bool = False) -> str:
    return format_table(WIDE_COLUMNS if wide else COLUMNS, (image_row(i, wide) for i in images))
