"""vmimage: the VM image catalog core.

Pure domain code — VMI IDs, descriptor reading, image status, labels, quantities and
the CRD schemas — shared by the CLI, the Pulumi providers and the components. Nothing
in this package talks to a network or imports Pulumi.
"""

from vmimage.errors import ImageError

__all__ = ["ImageError"]
