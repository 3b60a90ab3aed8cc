"""Label selectors as kubectl parses them: ``a``, ``!a``, ``a=b``, ``a!=b``, ``a in (b,c)``, ``a notin (b)``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from vmimage.errors import ImageError

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"^(?P<neg>!)?\s*(?P<key>{_KEY})$")
_EQUALITY = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # != and notin


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def parse_selector(selector: str) -> list[Requirement]:
    """Parse a selector; a malformed one is an ImageError that quotes the bad term."""
    requirements = []
    if not selector.strip():
        return requirements
    for term in _split(selector):
        if match := _SET.match(term):
            values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
            if not all(re.fullmatch(_VALUE, v) for v in values):
                raise ImageError(f"selector {selector!r}", f"{term!r} has an invalid value")
            requirements.append(Requirement(match["key"], match["op"], values))
        elif match := _EQUALITY.match(term):
            op = "!=" if match["op"] == "!=" else "="
            requirements.append(Requirement(match["key"], op, frozenset([match["value"]])))
        elif match := _EXISTS.match(term):
            requirements.append(Requirement(match["key"], "!exists" if match["neg"] else "exists"))
        else:
            raise ImageError(
                f"selector {selector!r}",
                f"cannot parse {term!r} (expected key, !key, key=value, key!=value, key in (a,b) or key notin (a,b))",
            )
    return requirements


def matches(requirements: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    return all(requirement.matches(labels or {}) for requirement in requirements)
