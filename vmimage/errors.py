"""The one error type of the core: everything a user can cause ends up as an ImageError."""

from __future__ import annotations


class ImageError(Exception):
    """A problem with an image file or a value the user gave.

    ``source`` names what was being read (a path, a member of an OVA, a CLI argument),
    ``reason`` says what is wrong and, where possible, what to do about it.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
