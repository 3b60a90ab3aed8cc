"""OVF manifests (``.mf``): one ``ALGORITHM(file)= hexdigest`` line per file."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vmimage.errors import ImageError

MAX_MANIFEST_BYTES = 1 * 2**20
_DIGEST_LENGTHS = {"SHA1": 40, "SHA256": 64, "SHA512": 128}
ALGORITHMS = tuple(_DIGEST_LENGTHS)  # what a manifest may use, so what a file read before it is hashed with
_LINE = re.compile(r"^(SHA1|SHA256|SHA512)\s*\((.+)\)\s*=\s*([0-9A-Fa-f]+)$")


@dataclass(frozen=True)
class Digest:
    algorithm: str  # SHA1, SHA256 or SHA512
    hexdigest: str  # lower case

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm.lower())


def parse_manifest(data: bytes, source: str) -> dict[str, Digest]:
    """File name → expected digest; any malformed line is an error naming its number."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ImageError(source, f"manifest is {len(data)} bytes, over the {MAX_MANIFEST_BYTES} byte limit")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImageError(source, "manifest is not UTF-8 text") from None
    digests: dict[str, Digest] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if not match:
            raise ImageError(source, f"manifest line {number} is not of the form 'SHA256(file)= hexdigest'")
        algorithm, name, hexdigest = match.groups()
        if len(hexdigest) != _DIGEST_LENGTHS[algorithm]:
            expected = _DIGEST_LENGTHS[algorithm]
            raise ImageError(
                source, f"manifest line {number}: a {algorithm} digest has {expected} hex digits, not {len(hexdigest)}"
            )
        name = name.strip()
        if name in digests:  # which line counts is the verifier's guess: a signer must not vouch for both
            raise ImageError(
                source, f"manifest line {number} lists {name!r} again: a file has one digest (list each file once)"
            )
        digests[name] = Digest(algorithm, hexdigest.lower())
    return digests


def verify_digest(digests: dict[str, Digest], name: str, data: bytes, source: str) -> None:
    """Check ``data`` (the file called ``name``) against the manifest."""
    expected = digests.get(name)
    if expected is None:
        raise ImageError(source, unlisted_message(name))
    hasher = expected.hasher()
    hasher.update(data)
    check_digest(expected, hasher.hexdigest(), name, source)


def unlisted_message(name: str) -> str:
    """The one wording for a file a package's manifest leaves out."""
    return (
        f"the manifest does not list {name!r}: every file of a package with a manifest must be in it "
        "(repack it, e.g. with ovftool, or remove the file)"
    )


def several_manifests_message(names: list[str]) -> str:
    """The one wording for a package with more than one manifest."""
    return f"the package holds {len(names)} manifests ({', '.join(map(repr, names))}); keep one"


def check_digest(expected: Digest, actual_hex: str, name: str, source: str) -> None:
    if not hmac.compare_digest(expected.hexdigest, actual_hex.lower()):
        raise ImageError(
            source,
            f"{expected.algorithm} of {name!r} is {actual_hex}, but the manifest says {expected.hexdigest}: "
            "the file is corrupt or was changed after packing",
        )


_CHUNK = 1 << 20


def stream_digests(read: Callable[[int], bytes], size: int, algorithms: Sequence[str], where: str) -> dict[str, str]:
    """The digests of the next ``size`` bytes of ``read``, every algorithm in one pass (a disk is read once)."""
    hashers = {a: hashlib.new(a.lower()) for a in algorithms}
    remaining = size
    while remaining:
        chunk = read(min(_CHUNK, remaining))
        if not chunk:
            raise ImageError(where, "the file ended early")
        for hasher in hashers.values():
            hasher.update(chunk)
        remaining -= len(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}
