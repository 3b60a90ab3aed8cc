"""Byte counts as the Kubernetes quantities VM Operator publishes for disks."""

from __future__ import annotations

_BINARY = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL = ("", "k", "M", "G", "T", "P", "E")


def _binary_si(n_bytes: int) -> bool:
    """VM Operator's choice of format: binary only for N × 1024^k with N below 1024."""
    while n_bytes >= 1024 and n_bytes != 1024:
        if n_bytes % 1024:
            return False
        n_bytes //= 1024
    return n_bytes == 1024 or n_bytes < 1024


def _canonical(n_bytes: int, base: int, suffixes: tuple[str, ...]) -> str:
    exponent = 0
    while n_bytes and n_bytes % base == 0 and exponent < len(suffixes) - 1:
        n_bytes //= base
        exponent += 1
    return f"{n_bytes}{suffixes[exponent]}"


def disk_quantity(n_bytes: int) -> str:
    """``16Gi``, ``30Mi`` for N × 1024^k; otherwise the decimal form (``52143587328``, ``2k``).

    VM Operator's BytesToResource picks BinarySI or DecimalSI, and Kubernetes prints the
    canonical form of that format; values below 1024 print in decimal either way.
    """
    if n_bytes < 0:
        raise ValueError(f"negative byte count {n_bytes}")
    if _binary_si(n_bytes) and n_bytes >= 1024:
        return _canonical(n_bytes, 1024, _BINARY)
    return _canonical(n_bytes, 1000, _DECIMAL)
