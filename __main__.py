"""The Pulumi program: stack config in, catalog out. Wiring only; the work is elsewhere."""

import pulumi

from vmimage.config import NAMESPACE, CatalogConfig, ConfigError, load_catalog_config

config = pulumi.Config(NAMESPACE)
values = {key: config.get_object(key) for key in ("libraries", "images") if config.get(key) is not None}
try:
    catalog: CatalogConfig = load_catalog_config(values)
except ConfigError as error:
    raise pulumi.RunError(str(error)) from None

pulumi.export("libraries", [library.name for library in catalog.libraries])
pulumi.export("images", [image.display_name for image in catalog.images])
