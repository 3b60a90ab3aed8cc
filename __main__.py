"""The Pulumi program: stack config in, catalog out. Wiring only; the work is elsewhere."""

import pulumi

import providers.lifeline  # noqa: F401  (exits when its engine is killed: no program left behind)
from components.catalog import ImageCatalog
from components.vcenter import vcenter
from vmimage.cluster.kube import KubeTarget, read_crds
from vmimage.config import KEYS, NAMESPACE, ConfigError, load_catalog_config
from vmimage.contract.crds import FILES, crd_name
from vmimage.errors import ImageError

config = pulumi.Config(NAMESPACE)
values = {key: config.get_object(key) for key in KEYS if config.get(key) is not None}
# every key the stack sets, in every namespace: a misspelt one fails the preview, it is not "unset"
stack_keys = set(pulumi.runtime.get_config_env()) | set(pulumi.runtime.config.CONFIG.get())
listing = None
try:
    catalog_config = load_catalog_config(values, stack_keys)
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
