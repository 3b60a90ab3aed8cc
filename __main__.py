"""The Pulumi program: stack config in, catalog out. Wiring only; the work is elsewhere."""

import os

import pulumi

from components.catalog import ImageCatalog
from vmimage.catalog import supervisor_associations
from vmimage.config import KEYS, NAMESPACE, CatalogConfig, ConfigError, load_catalog_config
from vmimage.crds import FILES, crd_name
from vmimage.errors import ImageError
from vmimage.kube import KubeTarget, read_crds
from vmimage.preview_checks import OFFLINE, offline, unchecked
from vmimage.vsphere.listing import VCenterListing
from vmimage.vsphere.rest import VSphereError
from vmimage.vsphere.settings import SERVER, resolve_settings

VSPHERE_KEYS = (
    "vsphere:vsphereServer",
    "vsphere:user",
    "vsphere:password",
    "vsphere:allowUnverifiedSsl",
    "vsphere:caFile",
)


def vcenter(catalog_config: CatalogConfig) -> VCenterListing | None:
    """The program's vCenter session, logged in: every preview (and `up`) checks that vCenter
    answers and takes the credentials, read-only, and the catalog looks existing libraries,
    synced items and Supervisor namespaces up through it. None for an offline preview
    (VMIMAGE_OFFLINE=1), which warns what it did not check."""
    vsphere = pulumi.Config("vsphere")
    settings = {key: vsphere.get(key.split(":", 1)[1]) for key in VSPHERE_KEYS}
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
        pulumi.log.warn(unchecked(settings[SERVER[0]] or os.environ.get(SERVER[1]), created, namespaces))
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


config = pulumi.Config(NAMESPACE)
values = {key: config.get_object(key) for key in KEYS if config.get(key) is not None}
listing = None
try:
    catalog_config = load_catalog_config(values)
    listing = vcenter(catalog_config)
    kubernetes = catalog_config.kubernetes
    cluster_crds = None
    if kubernetes is not None and kubernetes.install_crds:  # install VM Operator's CRDs only where none exist
        target = KubeTarget(kubernetes.kubeconfig, kubernetes.context)
        cluster_crds = read_crds(target, [crd_name(kind) for kind in FILES])
    secret_keys = {key for key in KEYS if pulumi.runtime.is_config_secret(f"{NAMESPACE}:{key}")}  # any --secret path
    catalog = ImageCatalog("catalog", catalog_config, listing, cluster_crds=cluster_crds, secret_keys=secret_keys)
except (ConfigError, ImageError) as error:
    raise pulumi.RunError(str(error)) from None
finally:
    if listing is not None:
        listing.close()

pulumi.export("images", catalog.images)
pulumi.export("table", catalog.table)
