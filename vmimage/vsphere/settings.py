"""Connection settings, named as pulumi-vsphere names them so existing stacks carry over."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from vmimage.errors import ImageError

# stack config key → environment fallback, as pulumi-vsphere (and Terraform's provider) define them
SERVER = ("vsphere:vsphereServer", "VSPHERE_SERVER")
USER = ("vsphere:user", "VSPHERE_USER")
PASSWORD = ("vsphere:password", "VSPHERE_PASSWORD")
ALLOW_UNVERIFIED_SSL = ("vsphere:allowUnverifiedSsl", "VSPHERE_ALLOW_UNVERIFIED_SSL")
CA_FILE = ("vsphere:caFile", "VSPHERE_CA_FILE")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class ConnectionSettings(BaseModel):
    """Where vCenter is and how to log in. The password is a SecretStr: its repr is masked."""

    model_config = ConfigDict(frozen=True)

    server: str
    user: str
    password: SecretStr
    allow_unverified_ssl: bool = False
    ca_file: str | None = None

    @property
    def base_url(self) -> str:
        return f"https://{self.server}"

    @property
    def host(self) -> str:
        return self.server.rsplit(":", 1)[0] if self.server.count(":") == 1 else self.server

    @property
    def port(self) -> int:
        return int(self.server.rsplit(":", 1)[1]) if self.server.count(":") == 1 else 443

    def ssl_context(self) -> ssl.SSLContext:
        """Verified TLS (system CAs, or vsphere:caFile) unless the user opted out."""
        if self.allow_unverified_ssl:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ImageError(f"{CA_FILE[0]} {self.ca_file!r}", f"cannot load the CA certificate ({exc})") from None


def _value(config: Mapping[str, Any], env: Mapping[str, str], names: tuple[str, str]) -> str | None:
    key, variable = names
    value = config.get(key)
    if value is None or value == "":
        value = env.get(variable)
    return None if value is None else str(value)


def _flag(config: Mapping[str, Any], env: Mapping[str, str], names: tuple[str, str]) -> bool:
    value = _value(config, env, names)
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImageError(names[0], f"{value!r} is not a boolean; use true or false")


def _require(config: Mapping[str, Any], env: Mapping[str, str], names: tuple[str, str], how: str) -> str:
    value = _value(config, env, names)
    if not value:
        raise ImageError(names[0], f"not set: {how}, or set {names[1]}")
    return value


def server_name(config: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """vsphere:vsphereServer (or VSPHERE_SERVER) as host[:port], None when unset. One that carries
    credentials (user:password@host) is refused, and not repeated: messages, logs and the
    preview's summary name the server."""
    server = _value(config, env, SERVER)
    if not server:
        return None
    server = server.strip().removeprefix("https://").rstrip("/")
    if "@" in server:
        raise ImageError(
            SERVER[0],
            "holds credentials (user:password@ before the host; not repeated here): give the host alone, the "
            "user in vsphere:user and the password with `pulumi config set --secret vsphere:password`",
        )
    return server


def resolve_settings(config: Mapping[str, Any], env: Mapping[str, str]) -> ConnectionSettings:
    """Settings from stack config, falling back to the environment; missing ones say how to set them."""
    _require(config, env, SERVER, "run `pulumi config set vsphere:vsphereServer vcenter.example.com`")
    server = server_name(config, env) or ""
    return ConnectionSettings(
        server=server,
        user=_require(config, env, USER, "run `pulumi config set vsphere:user administrator@vsphere.local`"),
        password=SecretStr(_require(config, env, PASSWORD, "run `pulumi config set --secret vsphere:password`")),
        allow_unverified_ssl=_flag(config, env, ALLOW_UNVERIFIED_SSL),
        ca_file=_value(config, env, CA_FILE) or None,
    )
