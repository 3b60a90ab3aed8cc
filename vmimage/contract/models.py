"""The VirtualMachineImage objects as pydantic models.

These models are the wire format vmimage writes: the CLI prints them and the providers
publish them. They follow VM Operator's v1alpha5/v1alpha6 schema (identical for images),
camelCase on the wire; `vmimage.contract.crds` holds VM Operator's own CRDs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

GROUP = "vmoperator.vmware.com"
VERSION = "v1alpha5"  # written where the cluster says nothing else (its CRDs decide: vmimage.cluster.kube)
VERSIONS = ("v1alpha5", "v1alpha6")  # the versions whose image schema vmimage writes; identical there
API_VERSION = f"{GROUP}/{VERSION}"
IMAGE_REGISTRY_GROUP, IMAGE_REGISTRY_VERSION = "imageregistry.vmware.com", "v1alpha1"
IMAGE_REGISTRY_API_VERSION = f"{IMAGE_REGISTRY_GROUP}/{IMAGE_REGISTRY_VERSION}"

NAMESPACED_KIND = "VirtualMachineImage"
CLUSTER_KIND = "ClusterVirtualMachineImage"
ImageKind = Literal["VirtualMachineImage", "ClusterVirtualMachineImage"]

READY = "Ready"
REASON_PROVIDER_NOT_READY = "VirtualMachineImageProviderNotReady"
REASON_NOT_SYNCED = "VirtualMachineImageNotSynced"
REASON_SECURITY_NOT_COMPLIANT = "VirtualMachineImageProviderSecurityNotCompliant"
V1ALPHA1_COMPATIBLE = "VirtualMachineImageV1Alpha1Compatible"

# A Kubernetes resource.Quantity: serialised as a string, accepted as int or string.
_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = Annotated[
    str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": _QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict, with unset and empty fields left out (Go's omitempty)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OSInfo(WireModel):
    id: str | None = Field(None, description="The CIM OS type number of the guest id, e.g. 101.")
    type: str | None = Field(None, description="The vSphere guest id, e.g. vmwarePhoton64Guest.")
    version: str | None = Field(None, description="The OS version (VM Operator leaves it unset).")


class ProductInfo(WireModel):
    product: str | None = Field(None, description="General product descriptor.")
    vendor: str | None = Field(None, description="Organization that produced the image.")
    version: str | None = Field(None, description="Short-form version.")
    full_version: str | None = Field(None, alias="fullVersion", description="Long-form version.")


ControllerType = Literal["IDE", "NVME", "SCSI", "SATA"]


class Disk(WireModel):
    """VirtualMachineImageDiskInfo (v1alpha5 and v1alpha6)."""

    name: str = Field(description="The disk's name: the OVF Item's ElementName.")
    limit: Quantity | None = Field(None, description="The total virtual disk capacity.")
    requested: Quantity | None = Field(None, description="The minimum storage the disk requires.")
    unit_number: int | None = Field(None, alias="unitNumber", description="The disk's unit number.")
    controller_type: ControllerType | None = Field(None, alias="controllerType", description="Its controller's type.")
    controller_bus_number: int | None = Field(
        None, alias="controllerBusNumber", description="Its controller's bus number."
    )


class OVFProperty(WireModel):
    key: str = Field(description="The property's ovf:key.")
    type: str = Field(description="The vApp type, e.g. string(1..253), password, int.")
    default: str | None = Field(None, description="The default value, when not empty.")


class KeyValue(WireModel):
    key: str
    value: str | None = None


class Condition(WireModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(max_length=32768)
    last_transition_time: datetime = Field(alias="lastTransitionTime")


class ImageStatus(WireModel):
    """VirtualMachineImageStatus, as VM Operator publishes it."""

    name: str | None = Field(None, description="Display name of the image.")
    type: Literal["OVF", "ISO"] | None = Field(None, description="Content type.")
    firmware: str | None = Field(None, description="Firmware type, as the OVF names it (efi, bios).")
    hardware_version: int | None = Field(
        None, alias="hardwareVersion", ge=0, le=2**31 - 1, description="VMware virtual hardware version."
    )
    capabilities: list[str] | None = Field(None, description="Capabilities of the image, sorted.")
    os_info: OSInfo = Field(default_factory=OSInfo, alias="osInfo", description="Operating system information.")
    product_info: ProductInfo = Field(default_factory=ProductInfo, alias="productInfo", description="Product metadata.")
    disks: list[Disk] | None = Field(None, description="Disk information.")
    ovf_properties: list[OVFProperty] | None = Field(
        None, alias="ovfProperties", description="User-configurable OVF properties."
    )
    vmware_system_properties: list[KeyValue] | None = Field(
        None, alias="vmwareSystemProperties", description="VMware-specific system properties."
    )
    provider_item_id: str | None = Field(None, alias="providerItemID", description="The content library item's UUID.")
    provider_content_version: str | None = Field(
        None, alias="providerContentVersion", description="The content library item's content version."
    )
    conditions: list[Condition] | None = Field(None, description="Resource conditions.")


class ProviderRef(WireModel):
    api_version: str = Field(alias="apiVersion")
    kind: str
    name: str


class ImageSpec(WireModel):
    provider_ref: ProviderRef | None = Field(
        None,
        alias="providerRef",
        description="Reference to the resource containing the source of the image's information.",
    )


class OwnerReference(WireModel):
    api_version: str = Field(alias="apiVersion")
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = Field(None, alias="blockOwnerDeletion")


class ObjectMeta(WireModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = Field(None, alias="ownerReferences")


class Image(WireModel):
    """A VirtualMachineImage or ClusterVirtualMachineImage object."""

    api_version: Literal["vmoperator.vmware.com/v1alpha5", "vmoperator.vmware.com/v1alpha6"] = Field(
        API_VERSION, alias="apiVersion"
    )
    kind: ImageKind = NAMESPACED_KIND
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ImageSpec = Field(default_factory=ImageSpec)
    status: ImageStatus = Field(default_factory=ImageStatus)
