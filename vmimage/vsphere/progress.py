"""Upload progress in a person's units: sizes, rate and time left, as one line each.

Pure: the provider's progress callback gives bytes and seconds, these give the words.
"""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _unit(size: float) -> int:
    index = 0
    while size >= 1024 and index < len(_UNITS) - 1:
        size /= 1024
        index += 1
    return index


def human_bytes(size: float, unit: int | None = None) -> str:
    """``3.0 GiB``, ``512 MiB``, ``900 B``; in ``unit`` (an index of _UNITS) when given."""
    index = _unit(size) if unit is None else unit
    value = size / 1024**index
    if index == 0:
        return f"{int(value)} B"
    return f"{value:.1f} {_UNITS[index]}" if value < 100 else f"{value:.0f} {_UNITS[index]}"


def duration(seconds: float) -> str:
    """``4 s``, ``2 min 5 s``, ``1 h 3 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def rate(size: float, seconds: float) -> str:
    return f"{human_bytes(size / max(seconds, 1e-6))}/s"


def transfer_line(name: str, sent: int, total: int, elapsed: float) -> str:
    """``Debian 12: 1.1 of 3.0 GiB (38%), 578 MiB/s, 4 s left``: sent in the total's unit."""
    unit = _unit(total)
    percent = 100 * sent // total if total else 100
    left = ""
    if 0 < sent < total and elapsed > 0:
        left = f", {duration((total - sent) * elapsed / sent)} left"
    sent_text = human_bytes(sent, unit).rsplit(" ", 1)[0]
    return f"{name}: {sent_text} of {human_bytes(total, unit)} ({percent}%), {rate(sent, elapsed)}{left}"


def pull_line(name: str, elapsed: float, fetched: int = 0, total: int = 0) -> str:
    """A pull under way: vCenter's byte counts where it gives them, else the time so far."""
    if total:
        return transfer_line(name, fetched, total, elapsed)
    return f"{name}: vCenter is pulling it, {duration(elapsed)} so far"


def finished_line(name: str, total: int, elapsed: float) -> str:
    """``Debian 12: 3.0 GiB uploaded in 5 s (578 MiB/s)``."""
    return f"{name}: {human_bytes(total)} uploaded in {duration(elapsed)} ({rate(total, elapsed)})"


def new_content_line(name: str, total: int | None) -> str:
    """The line an in-place content update starts with: the item, and so the VMI ID, stay."""
    size = f"{human_bytes(total)}, " if total is not None else ""
    return f"new content for {name!r}: {size}item kept, VMI ID kept"
