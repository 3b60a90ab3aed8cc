"""Images and a VirtualMachine in one stack (tests/test_policies.py): what the pack's VM rules see.

Config (namespace `test`): kubeconfig, itemId (an existing item: a Ready image with the
capability nvidia-gpu), required (the VM's required capabilities), withMissing (also an image
of an item that does not exist: NotReady, in the VM's namespace), withUnknowns (also resources
whose values a preview cannot know: a new image, an image and a VM whose namespace come from the
new image's ID, and a second image named "GPU image" in dev, which the pack must still report).
"""

import sys
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository: providers/, vmimage/

from providers.vm_image import VirtualMachineImage

config = pulumi.Config("test")
gpu = VirtualMachineImage(
    "gpu",
    item_id=config.require("itemId"),
    content_version=None,
    display_name="GPU image",
    namespace="dev",
    capabilities=["nvidia-gpu"],
)
if config.get_bool("withMissing"):
    VirtualMachineImage(
        "missing",
        item_id="6d9e5f3b-2c1a-4f7e-8d6c-5b4a3f2e1d0c",
        content_version="1",
        display_name="Missing image",
        namespace="dev",
    )
cluster = k8s.Provider("cluster", kubeconfig=config.require("kubeconfig"))
k8s.apiextensions.CustomResource(
    "web",
    api_version="vmoperator.vmware.com/v1alpha5",
    kind="VirtualMachine",
    metadata={
        "name": "web",
        "namespace": "dev",
        "annotations": {"vmimage.io/required-capabilities": config.get("required") or ""},
    },
    spec={"className": "best-effort-small", "imageName": gpu.vmi_id},
    opts=pulumi.ResourceOptions(provider=cluster),
)
if config.get_bool("withUnknowns"):
    later = VirtualMachineImage(
        "later", item_id=config.require("itemId"), content_version=None, display_name="Later image", namespace="qa"
    )
    unknown_namespace = later.vmi_id.apply(lambda _: "dev")  # unknown until `later` exists
    VirtualMachineImage(
        "later-dev",
        item_id="0f1e2d3c-4b5a-4697-8877-665544332211",
        content_version="1",
        display_name="GPU image",
        namespace=unknown_namespace,
    )
    VirtualMachineImage(
        "gpu-again",
        item_id="1a2b3c4d-5e6f-4a0b-9c8d-7e6f5a4b3c2d",
        content_version="1",
        display_name="GPU image",
        namespace="dev",
    )
    k8s.apiextensions.CustomResource(
        "later-vm",
        api_version="vmoperator.vmware.com/v1alpha5",
        kind="VirtualMachine",
        metadata={"name": "later", "namespace": unknown_namespace},
        spec={"className": "best-effort-small", "imageName": later.vmi_id},
        opts=pulumi.ResourceOptions(provider=cluster),
    )
