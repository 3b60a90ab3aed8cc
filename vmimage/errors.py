"""The one error type of the core: everything a user can cause ends up as an ImageError."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

_URL = re.compile(r"https?://[^\s'\"<>]+", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL without what may be a credential: user:password@ becomes ***@, and every query
    value (a pre-signed URL's signature, a token) becomes ***. The host and path stay readable."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        query = urlencode([(key, "***") for key, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
        if parts.query and not query:
            query = "***"
        return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "(a URL that cannot be shown)"


def url_has_credentials(url: str) -> bool:
    return redact_url(url) != url


def redact(text: str) -> str:
    """Every URL in ``text`` redacted (error messages, logs)."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


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
