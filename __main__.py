"""The Pulumi program: stack config in, catalog out. Wiring only; the work is elsewhere."""

import os

import pulumi

from components.catalog import ImageCatalog
from vmimage.config import KEYS, NAMESPACE, ConfigError, load_catalog_config
from vmimage.errors import ImageError
from vmimage.vsphere.listing import VCenterListing
from vmimage.vsphere.settings import resolve_settings

config = pulumi.Config(NAMESPACE)
values = {key: config.get_object(key) for key in KEYS if config.get(key) is not None}
listing = None
try:
    catalog_config = load_catalog_config(values)
    if catalog_config.sync or any(library.existing for library in catalog_config.libraries):
        vsphere = pulumi.Config("vsphere")
        settings = {
            key: vsphere.get(key.split(":", 1)[1])
            for key in (
                "vsphere:vsphereServer",
                "vsphere:user",
                "vsphere:password",
                "vsphere:allowUnverifiedSsl",
                "vsphere:caFile",
            )
        }
        listing = VCenterListing(resolve_settings(settings, os.environ))
    catalog = ImageCatalog("catalog", catalog_config, listing)
except (ConfigError, ImageError) as error:
    raise pulumi.RunError(str(error)) from None
finally:
    if listing is not None:
        listing.close()

pulumi.export("images", catalog.images)
pulumi.export("table", catalog.table)
