"""Images and a VirtualMachine in one stack (tests/test_policies.py): what the pack's VM rules see.

Config (namespace `test`): kubeconfig, itemId (an existing item: a Ready image with the
capability nvidia-gpu), required (the VM's required capabilities), withMissing (also an image
of an item that does not exist: NotReady, in the VM's namespace).
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
