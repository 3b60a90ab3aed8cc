"""Small helpers the dynamic providers share: inputs without engine fields, change sets."""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, ConfigureRequest, ResourceProvider
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.settings import get_engine

from providers import connection
from vmimage.contract.status import CONTRACT
from vmimage.declaration import declaration_token
from vmimage.errors import ImageError

_LINES = threading.Lock()


def say(message: str) -> None:
    """One info line from a provider (see _line)."""
    _line("info", message)


def warn(message: str) -> None:
    """One warning line from a provider (see _line)."""
    _line("warning", message)


def _line(severity: str, message: str) -> None:
    """A dynamic provider has no engine connection, so the SDK's log prints ``info: …`` to the
    host's stderr, which the engine reads line by line; print writes the text and its newline
    apart, and two provider threads then glued their lines into one. One write, under a lock,
    keeps each line whole."""
    if get_engine() is not None:
        (pulumi.log.warn if severity == "warning" else pulumi.log.info)(message)
        return
    with _LINES:
        sys.stderr.write(f"{severity}: {message}\n")
        sys.stderr.flush()


PROVIDER_KEY = "__provider"
DECLARATION = "declaration"  # present where the program names the declaration (the catalog does)
# The stack instance's salt (providers/instance.py), an input of every item and image resource of the
# catalog: ``__``-named, so no diff the CLI shows has it (an internal property, as ``__provider`` is)
INSTANCE = "__instance"


def present(values: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The optional inputs among ``keys`` that ``values`` sets. An input a release added stays
    out of the state where it is unset, so a stack deployed before it sees no change."""
    return {key: values[key] for key in keys if values.get(key)}


def is_unknown(value: Any) -> bool:
    """A value the engine does not know yet (during preview): rpc.Unknown, or its wire sentinel."""
    return isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN)


def changed(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """Keys whose value differs (an unknown new value counts as a change); never the pickled provider."""
    return [
        key for key in keys if key != PROVIDER_KEY and (is_unknown(news.get(key)) or olds.get(key) != news.get(key))
    ]


def contract_moved(olds: dict[str, Any]) -> list[str]:
    """``["contract"]`` when the state's objects reproduce another VM Operator than this release's
    (vmimage.contract.status.CONTRACT): an in-place update rewrites them. An output, not an input, so no
    reviewer reads it on every resource of a diff."""
    return [] if olds.get("contract") == CONTRACT else ["contract"]


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
    `providers.connection`, which keeps it in module state, never on the pickled object.

    ``declaration`` (what names the resource's declaration across runs: vmimage/declaration.py) is
    an attribute of the pickled provider, not an input: the engine hides the provider from a diff,
    and a reviewer has no use for it. A state written by an earlier release has it as an input.
    The stack instance's salt cannot ride on it (the program pickles the provider before the
    salt's resource has run): it is the input INSTANCE."""

    def __init__(self, declaration: str | None = None) -> None:
        super().__init__()
        self.declaration = declaration

    def declared(self, props: dict[str, Any]) -> dict[str, Any]:
        """``props`` with the declaration this provider carries (or the one an earlier release's
        state keeps among the inputs)."""
        declaration = getattr(self, "declaration", None) or props.get(DECLARATION)
        return {**props, DECLARATION: declaration} if declaration else props

    def token(self, props: dict[str, Any], *replacing: Any) -> str | None:
        """The token of this declaration of this stack instance (vmimage/declaration.py) with
        these replacing inputs; None without both (a provider used on its own, or a program
        before instances): what it makes is then no declaration's, and nothing takes it for one."""
        declaration, instance = self.declared(props).get(DECLARATION), props.get(INSTANCE)
        if not declaration or not isinstance(instance, str) or not instance or is_unknown(instance):
            return None
        return declaration_token(instance, str(declaration), *(str(value or "") for value in replacing))

    def configure(self, req: ConfigureRequest) -> None:
        connection.configure(req)


SECRET_SOURCE = "[secret source]"


def source_forms(source: str) -> list[str]:
    """Every form in which a secret source may show up in a message: the value, its redacted
    form and its path (a token may sit in it), longest first."""
    from urllib.parse import unquote, urlsplit

    from vmimage.errors import redact

    forms = {source, redact(source)}
    try:
        path = urlsplit(source).path if "://" in source else ""
    except ValueError:
        path = ""
    forms |= {form for form in (path, unquote(path)) if len(form) > 1}
    return sorted(forms, key=len, reverse=True)


def conceal(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, SECRET_SOURCE)
    return text


class ConcealedError(ImageError):
    """An error whose text had a secret source taken out; shown as that text alone."""

    def __init__(self, text: str) -> None:
        Exception.__init__(self, text)
        self.source, self.reason = "", text

    def __str__(self) -> str:
        return str(self.args[0])


@contextmanager
def concealing(source: Any, secret: Any) -> Iterator[None]:
    """Within a provider call for a secret source, every error leaves with the source taken out
    of its text (bugs too: their traceback becomes the text), so neither `pulumi up` nor the
    engine's log ever shows it."""
    if not secret or not isinstance(source, str) or not source:
        yield
        return
    try:
        yield
    except ConcealedError:
        raise
    except Exception as error:  # re-raised, concealed
        text = str(error) if isinstance(error, ImageError) else traceback.format_exc()
        raise ConcealedError(conceal(text, source_forms(source))) from None
