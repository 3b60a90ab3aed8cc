"""The one error type of the core: everything a user can cause ends up as an ImageError."""

from __future__ import annotations

import re

_SCHEME = re.compile(r"\b[a-z][a-z0-9+.-]{0,15}://", re.IGNORECASE)
# where the next URL on a line starts, ending the one before: after a space, a quote or a bracket
# only, so "p://" inside a password does not end its URL early
_NEXT_SCHEME = re.compile(r"(?<![^\s'\"(<\[=,;])[a-z][a-z0-9+.-]{0,15}://", re.IGNORECASE)
_HOST_END = re.compile(r"[/?#\s'\"<>]")
_PATH_END = re.compile(r"[?#\s'\"<>]")
_QUERY_END = re.compile(r"[#\s]")


def _query(query: str) -> str:
    return "&".join(f"{part.split('=', 1)[0]}=***" if "=" in part else "***" for part in query.split("&"))


def redact(text: str) -> str:
    """``text`` with what may be a credential taken out of every URL in it: ``user:password@``
    becomes ``***@``, each query value ``***``, a fragment ``#***``; the host and path stay.

    A password may hold anything but a line break (quotes, spaces, ``<>``, ``@``, ``/``,
    ``%``-escapes), so the userinfo runs to the last ``@`` on the URL's line (before another
    URL): a path or text after the URL with an ``@`` in it goes too, never a part of a password."""
    out, at = [], 0
    while (scheme := _SCHEME.search(text, at)) is not None:
        start = scheme.end()
        line_end = text.find("\n", start)
        line_end = len(text) if line_end < 0 else line_end
        following = _NEXT_SCHEME.search(text, start, line_end)
        limit = following.start() if following else line_end
        userinfo_end = text.rfind("@", start, limit)
        out.append(text[at:start])
        position = start
        if userinfo_end >= 0:
            out.append("***@")
            position = userinfo_end + 1
        for end_pattern, lead in ((_HOST_END, ""), (_PATH_END, "/")):
            if lead and not text.startswith(lead, position):
                continue
            found = end_pattern.search(text, position + len(lead), limit)
            end = found.start() if found else limit
            out.append(text[position:end])
            position = end
        if text.startswith("?", position):
            found = _QUERY_END.search(text, position, limit)
            end = found.start() if found else limit
            out.append("?" + (_query(text[position + 1 : end]) if end > position + 1 else ""))
            position = end
        if text.startswith("#", position):
            found = re.compile(r"\s").search(text, position, limit)
            end = found.start() if found else limit
            out.append("#***" if end > position + 1 else "#")
            position = end
        at = position
    out.append(text[at:])
    return "".join(out)


def redact_url(url: str) -> str:
    """One URL as ``redact`` shows it."""
    return redact(url)


def url_has_credentials(url: str) -> bool:
    return redact_url(url) != url


class ImageError(Exception):
    """A problem with an image file or a value the user gave.

    ``source`` names what was being read (a path, a member of an OVA, a CLI argument),
    ``reason`` says what is wrong and, where possible, what to do about it.
    """

    def __init__(self, source: str, reason: str) -> None:
        source, reason = redact(source), redact(reason)  # a source URL may carry credentials
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
