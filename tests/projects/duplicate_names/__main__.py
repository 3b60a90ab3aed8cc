"""A program that publishes two images under one display name without the catalog's own check
(tests/test_policies.py): the policy pack reports it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository: providers/, vmimage/

from providers.vm_image import ClusterVirtualMachineImage, VirtualMachineImage

for name, item in (
    ("photon-a", "2f5a1c9e-8f7b-4c3d-9e2a-1b0c4d5e6f70"),
    ("photon-b", "3a6b2d0f-9a8c-4d4e-8f3b-2c1d5e6f7a81"),
):
    ClusterVirtualMachineImage(name, item_id=item, content_version="1", display_name="Photon OS 5.0")
VirtualMachineImage(  # the same name in a namespace is not a duplicate: it shadows the cluster's there
    "photon-team-a",
    item_id="4b7c3e1a-0b9d-4e5f-9a4c-3d2e6f7a8b92",
    content_version="1",
    display_name="Photon OS 5.0",
    namespace="team-a",
)
