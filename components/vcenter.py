"""The program's vCenter session: logged in before anything is declared, so a preview fails where
`up` would (an unreachable server, refused credentials), or an offline preview says what it left out."""

from __future__ import annotations

import os

import pulumi

from vmimage.catalog import supervisor_associations
from vmimage.config import VSPHERE_KEYS, CatalogConfig, ConfigError
from vmimage.review.preview_checks import OFFLINE, offline, unchecked
from vmimage.vsphere.listing import VCenterListing
from vmimage.vsphere.rest import VSphereError
from vmimage.vsphere.settings import resolve_settings, server_name


def vcenter(catalog_config: CatalogConfig) -> VCenterListing | None:
    """The program's vCenter session, logged in: every preview (and `up`) checks that vCenter
    answers and takes the credentials, read-only, and the catalog looks existing libraries,
    synced items and Supervisor namespaces up through it. None for an offline preview
    (VMIMAGE_OFFLINE=1), which warns what it did not check."""
    vsphere = pulumi.Config("vsphere")
    settings = {f"vsphere:{key}": vsphere.get(key) for key in VSPHERE_KEYS}
    if offline(os.environ):
        if not pulumi.runtime.is_dry_run():
            raise ConfigError(f"{OFFLINE} is set: it is for previews, and `pulumi up` needs vCenter; unset it")
        existing = [library.name for library in catalog_config.libraries if library.existing]
        if existing:
            raise ConfigError(
                f"an offline preview ({OFFLINE}=1) cannot plan library {', '.join(map(repr, existing))} "
                "(existing: true): its ID, and a synced library's items, come from vCenter; preview with vCenter"
            )
        supervisor = catalog_config.kubernetes is not None and catalog_config.kubernetes.supervisor
        created = [library.name for library in catalog_config.libraries]
        namespaces = supervisor_associations(catalog_config) if supervisor else {}
        pulumi.log.warn(unchecked(server_name(settings, os.environ), created, namespaces))
        return None
    listing = VCenterListing(resolve_settings(settings, os.environ))
    try:
        listing.session.session_headers()  # the login, and the session the catalog goes on with
    except VSphereError as error:
        listing.close()
        unanswered = error.status is None and pulumi.runtime.is_dry_run()  # no answer, not a refusal
        hint = f" (to preview without vCenter, set {OFFLINE}=1)" if unanswered else ""
        raise ConfigError(f"{error}{hint}") from None
    return listing
