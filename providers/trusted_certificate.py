"""TrustedCertificate: one certificate in vCenter's content library trust store.

vCenter's trusted-certificates API (``/api/content/trusted-certificates``) keeps an entry per
certificate with nothing but its text: no name, no description, no owner. The resource knows its
certificate by fingerprint, and whether the stack added it: a certificate vCenter already trusted
when the stack came to it (an administrator's, another stack's) is adopted as not the stack's and
never deleted by it.
"""

from __future__ import annotations

import os
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers import connection
from providers.common import VSphereProvider, changed, is_unknown, say, warn
from vmimage.descriptor.trust import pem_fingerprint
from vmimage.errors import ImageError
from vmimage.review.guard import Declared
from vmimage.review.preview_checks import offline
from vmimage.vsphere.content_library import ContentLibraryClient, TrustedCertificateEntry

INPUTS = ("path", "pem", "sha256", "subject")
IN_PLACE = ("path",)  # where the stack reads it: the state's record only
REPLACING = ("sha256",)  # another certificate is another entry
ADOPTED = "adopted"  # true: vCenter trusted it before the stack did; the stack never deletes it
# set by check, never kept: vCenter no longer trusts the state's certificate (taken off by hand, or by
# the stack that added it where this one adopted it), so `up` trusts it again, as this stack's own
GONE = "no_longer_trusted"


def _entry(
    client: ContentLibraryClient, sha256: str, certificate_id: str | None = None
) -> TrustedCertificateEntry | None:
    """vCenter's entry of this certificate (by fingerprint: the same certificate written another way
    is the same), the one of ``certificate_id`` first; None when vCenter does not trust it."""
    entries = [e for e in client.trusted_certificates() if pem_fingerprint(e.text) == sha256]
    return next((e for e in entries if e.id == certificate_id), entries[0] if entries else None)


def _label(props: dict[str, Any]) -> str:
    return f"trusted certificate {props.get('subject')} (sha256 {str(props.get('sha256'))[:16]}…, {props.get('path')})"


class TrustedCertificateProvider(VSphereProvider):
    """Adds a certificate to vCenter's content library trust store, or adopts the entry vCenter has;
    deletes only what it added."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        inputs = {key: news.get(key) for key in INPUTS}
        pem = news.get("pem")
        if not is_unknown(pem):
            sha256 = pem_fingerprint(pem) if isinstance(pem, str) else None
            if sha256 is None:
                failures.append(CheckFailure("pem", f"{news.get('path')}: not a PEM certificate"))
            elif news.get("sha256") not in (None, sha256):
                failures.append(CheckFailure("sha256", f"{news.get('path')}: the certificate's sha256 is {sha256}"))
            inputs["sha256"] = sha256
            if olds and not failures and olds.get("sha256") == sha256:
                failures.extend(self._still_trusted(inputs))
        return CheckResult(inputs, failures)

    @staticmethod
    def _still_trusted(inputs: dict[str, Any]) -> list[CheckFailure]:
        """Marks ``inputs`` GONE when vCenter trusts the certificate no more (asked in every preview,
        unless offline); a question vCenter does not answer is a failure, never "still trusted"."""
        try:
            if offline(os.environ):
                return []
            with connection.content_library() as client:
                gone = _entry(client, str(inputs["sha256"])) is None
        except ImageError as error:
            return [CheckFailure("pem", f"{_label(inputs)}: cannot ask vCenter whether it still trusts it: {error}")]
        if gone:
            inputs[GONE] = True
            warn(
                f"{_label(inputs)}: vCenter no longer trusts it (taken off by hand, or by a stack that added it "
                "where this one adopted it): `up` trusts it again, as this stack's"
            )
        return []

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        updates = changed(olds, news, IN_PLACE)
        replaces = changed(olds, news, REPLACING) + ([GONE] if news.get(GONE) else [])
        return DiffResult(changes=bool(updates or replaces), replaces=replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = {key: value for key, value in props.items() if key != GONE}
        with connection.content_library() as client:
            found = _entry(client, props["sha256"])
            if found is not None:
                say(
                    f"{_label(props)}: vCenter already trusts it (entry {found.id}): adopted as not this stack's, "
                    "so no destroy of the stack removes it"
                )
                return CreateResult(found.id, {**props, "certificate_id": found.id, ADOPTED: True})
            certificate_id = client.add_trusted_certificate(props["pem"])
            found = _entry(client, props["sha256"], certificate_id)
        if found is None:
            raise ImageError(_label(props), "vCenter accepted the certificate but does not list it as trusted")
        say(f"{_label(props)}: trusted by vCenter's content libraries (entry {found.id})")
        return CreateResult(found.id, {**props, "certificate_id": found.id, ADOPTED: False})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with connection.content_library() as client:
            found = _entry(client, str(props.get("sha256")), id_)
        # The entry the stack added is gone: another entry of the same certificate (an administrator's)
        # is not the stack's to delete, so the next `up` adopts it (or adds it again, if none).
        if found is None or (found.id != id_ and not props.get(ADOPTED)):
            return ReadResult("", {})
        return ReadResult(found.id, {**props, "certificate_id": found.id})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, "certificate_id": olds.get("certificate_id", id_), ADOPTED: olds.get(ADOPTED)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Removes the entry the stack added, and only that: an adopted one stays, and so does an
        entry of that ID that holds another certificate by now."""
        if props.get(ADOPTED):
            say(f"{_label(props)}: left in vCenter's trust store: it trusted it before this stack did")
            return
        with connection.content_library() as client:
            found = _entry(client, str(props.get("sha256")), id_)
            if found is None:
                return  # already gone
            if found.id != id_:
                warn(f"{_label(props)}: vCenter trusts it under entry {found.id}, not the stack's {id_}: left there")
                return
            refused = connection.refused_delete(Declared(str(props.get("path")), "trusted certificate"))
            if refused:
                raise ImageError(_label(props), f"not deleted: {refused}")
            client.delete_trusted_certificate(id_)


class TrustedCertificate(pulumi.dynamic.Resource, module="vmimage", name="TrustedCertificate"):
    """A certificate vCenter's content libraries trust (vmimage:trustedCertificates). Type token:
    pulumi-python:dynamic/vmimage:TrustedCertificate."""

    certificate_id: pulumi.Output[str]
    sha256: pulumi.Output[str]
    adopted: pulumi.Output[bool]

    def __init__(
        self,
        resource_name: str,
        *,
        path: str,
        pem: str,
        subject: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``pem``: one certificate (vmimage.descriptor.trust reads the stack's files into them);
        ``path``: the file it came from, for messages and the deletion guard."""
        inputs = {"path": path, "pem": pem, "subject": subject, "sha256": None, "certificate_id": None, ADOPTED: None}
        super().__init__(TrustedCertificateProvider(), resource_name, inputs, opts)
