"""Byte counts as Kubernetes quantities, the way `kubectl` would print them."""

from __future__ import annotations

_BINARY_SUFFIXES = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def binary_quantity(n_bytes: int) -> str:
    """``20Gi`` when the count is an exact multiple of a binary unit, else plain bytes.

    The largest unit that divides exactly wins, so 1.5 GiB prints as ``1536Mi``.
    """
    if n_bytes < 0:
        raise ValueError(f"negative byte count {n_bytes}")
    if n_bytes:
        for suffix, factor in _BINARY_SUFFIXES:
            if n_bytes % factor == 0:
                return f"{n_bytes // factor}{suffix}"
    return str(n_bytes)
