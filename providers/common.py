"""Small helpers the dynamic providers share: inputs without engine fields, change sets."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CheckFailure, ConfigureRequest, ResourceProvider
from pulumi.output import Unknown
from pulumi.runtime import rpc

from providers import connection

PROVIDER_KEY = "__provider"


def is_unknown(value: Any) -> bool:
    """A value the engine does not know yet (during preview): rpc.Unknown, or its wire sentinel."""
    return isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN)


def changed(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """Keys whose value differs (an unknown new value counts as a change); never the pickled provider."""
    return [
        key for key in keys if key != PROVIDER_KEY and (is_unknown(news.get(key)) or olds.get(key) != news.get(key))
    ]


def require_text(news: dict[str, Any], key: str, failures: list[CheckFailure], limit: int = 80) -> None:
    value = news.get(key)
    if is_unknown(value):
        return
    if not isinstance(value, str) or not value.strip():
        failures.append(CheckFailure(key, f"{key} must be a non-empty string"))
    elif len(value) > limit:
        failures.append(CheckFailure(key, f"{key} is {len(value)} characters; vCenter allows at most {limit}"))


class VSphereProvider(ResourceProvider):
    """A provider that talks to vCenter: `configure` hands the stack's vsphere:* config to
    `providers.connection`, which keeps it in module state, never on the pickled object."""

    def configure(self, req: ConfigureRequest) -> None:
        connection.configure(req)
