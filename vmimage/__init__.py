"""vmimage: the VM image catalog's core, one package per concept (docs/architecture.md draws the layers).

No Pulumi import anywhere below; only `vsphere/` and `cluster/kube.py` talk to a network.
"""

from vmimage.errors import ImageError

__all__ = ["ImageError"]
