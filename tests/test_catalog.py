"""The catalog as Pulumi's mocks see it: for each stack file, the declared resources and their wiring."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
import yaml

from components.catalog import ImageCatalog, catalog_table
from tests.test_program import stack_config
from vmimage.catalog import PlannedImage, SyncedItem, display_name_conflicts, plan, resource_name
from vmimage.config import ConfigError, load_catalog_config
from vmimage.vsphere.listing import ListedItem

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "pulumi-python:dynamic/vmimage:"


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.created.append(args)
        outputs = dict(args.inputs)
        if args.typ == PREFIX + "ContentLibraryItem":
            outputs.update(item_id=f"uuid-of-{args.inputs['name']}", content_version="3")
        if args.typ in (PREFIX + "VirtualMachineImage", PREFIX + "ClusterVirtualMachineImage"):
            kind = args.typ.rsplit(":", 1)[1]
            outputs.update(
                vmi_id=f"vmi-of-{args.inputs['item_id']}",
                kind=kind,
                status={"name": args.inputs["display_name"], "type": "OVF"},
                labels={f"capability.image.vmoperator.vmware.com/{c}": "true" for c in args.inputs["capabilities"]},
            )
        if args.typ == PREFIX + "ContentLibraryItem":
            return outputs["item_id"], outputs  # an item's resource ID is its UUID, as the provider makes it
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class FakeListing:
    def __init__(self, libraries: dict[str, list[ListedItem]], namespaces: tuple[str, ...] = ()) -> None:
        self.libraries = libraries
        self.namespaces = namespaces

    def namespace_exists(self, name: str) -> bool:
        return name in self.namespaces

    def library_id(self, name: str) -> str:
        return f"lib-{name}"

    def items(self, library_id: str) -> list[ListedItem]:
        return self.libraries[library_id.removeprefix("lib-")]


MARKETPLACE = [
    ListedItem("9e0b0c4e-0000-4000-8000-000000000001", "TKG Ubuntu 22.04", "ovf", "5"),
    ListedItem("9e0b0c4e-0000-4000-8000-000000000002", "TKG Photon 5", "ovf", "2"),
]


def build(stack: str, listing=None):
    config = load_catalog_config(
        {
            key.split(":", 1)[1]: yaml.safe_load(value) if value[:1] in "[{" else value
            for key, value in stack_config(ROOT / "stacks" / f"Pulumi.{stack}.yaml").items()
            if key.startswith("vmimage:")
        }
    )
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="vmimage", stack=stack, preview=False)
    catalog = ImageCatalog("catalog", config, listing)
    return mocks, catalog, config


def by_type(mocks: Mocks) -> dict[str, list[pulumi.runtime.MockResourceArgs]]:
    found: dict[str, list] = {}
    for args in mocks.created:
        found.setdefault(args.typ.rsplit(":", 1)[-1], []).append(args)
    return found


@pulumi.runtime.test
def test_dev_stack():
    mocks, catalog, _ = build("dev")

    def check(outputs):
        images, table = outputs
        found = by_type(mocks)
        assert [a.inputs["name"] for a in found["ContentLibrary"]] == ["dev-images"]
        assert found["ContentLibrary"][0].inputs["datastore"] == "LocalDS_0"
        items = {a.inputs["name"]: a.inputs for a in found["ContentLibraryItem"]}
        assert set(items) == {"photon-5-sample", "ubuntu-24.04-sample", "tools-sample"}
        assert all(i["library_id"] == found["ContentLibrary"][0].name + "-id" for i in items.values())
        assert items["tools-sample"]["source"] == "build/samples/tools-sample.iso"
        cluster = {a.inputs["display_name"]: a.inputs for a in found["ClusterVirtualMachineImage"]}
        namespaced = {a.inputs["display_name"]: a.inputs for a in found["VirtualMachineImage"]}
        assert set(cluster) == {"photon-5-sample", "tools-sample"} and set(namespaced) == {"ubuntu-24.04-sample"}
        ubuntu = namespaced["ubuntu-24.04-sample"]
        assert (ubuntu["namespace"], ubuntu["item_id"], ubuntu["content_version"]) == (
            "dev",
            "uuid-of-ubuntu-24.04-sample",
            "3",
        )  # wired to its item's outputs
        assert ubuntu["capabilities"] == ["nvidia-gpu"]
        assert "kubeconfig" not in ubuntu  # the dev stack names no cluster
        assert "CustomResourceDefinition" not in found
        names = {a.name for a in mocks.created}
        assert resource_name("catalog", "library", "dev-images") in names
        assert resource_name("catalog", "item", "dev-images", "photon-5-sample") in names
        assert resource_name("catalog", "cvmi", "photon-5-sample", "cluster") in names
        assert resource_name("catalog", "vmi", "ubuntu-24.04-sample", "dev") in names
        assert images["ubuntu-24.04-sample"] == [
            {"vmi_id": "vmi-of-uuid-of-ubuntu-24.04-sample", "kind": "VirtualMachineImage", "namespace": "dev"}
        ]
        assert table.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "DISPLAY"]
        assert len(table.splitlines()) == 4

    return pulumi.Output.all(catalog.images, catalog.table).apply(check)


@pulumi.runtime.test
def test_a_vm_resolves_its_image_against_the_catalogs_manifests():
    """`catalog.manifests` (built on first use) carries what resolution reads: the display name,
    the VMI ID, the namespace and the capability labels."""
    from components.vm import VirtualMachine

    _, catalog, _ = build("dev")
    vm = VirtualMachine(
        "trainer",
        namespace="dev",
        image_name="ubuntu-24.04-sample",
        class_name="c",
        images=catalog.manifests,
        required_capabilities=["nvidia-gpu"],  # a capability label only: the mocked status has none
    )

    def check(values):
        image, manifests = values
        assert image == {"kind": "VirtualMachineImage", "name": "vmi-of-uuid-of-ubuntu-24.04-sample"}
        assert {m["metadata"]["name"] for m in manifests} == {
            f"vmi-of-uuid-of-{name}" for name in ("photon-5-sample", "ubuntu-24.04-sample", "tools-sample")
        }

    return pulumi.Output.all(vm.image, catalog.manifests).apply(check)


@pulumi.runtime.test
def test_staging_stack_with_a_synced_library():
    mocks, catalog, _ = build("staging", FakeListing({"vmware-marketplace": MARKETPLACE}))

    def check(_):
        found = by_type(mocks)
        assert [a.inputs["name"] for a in found["ContentLibrary"]] == ["platform-images-staging"]  # the other exists
        cluster = {a.inputs["display_name"]: a.inputs for a in found["ClusterVirtualMachineImage"]}
        assert set(cluster) == {"Photon OS 5.0", "TKG Ubuntu 22.04", "TKG Photon 5"}
        assert cluster["TKG Photon 5"]["item_id"] == MARKETPLACE[1].id
        assert cluster["TKG Photon 5"]["content_version"] == "2"
        assert cluster["Photon OS 5.0"]["context"] == "supervisor-staging"
        namespaced = [(a.inputs["display_name"], a.inputs["namespace"]) for a in found["VirtualMachineImage"]]
        assert sorted(namespaced) == [("Ubuntu 24.04 LTS", "team-a"), ("Ubuntu 24.04 LTS", "team-b")]
        assert "CustomResourceDefinition" not in found  # the Supervisor has VM Operator

    return catalog.images.apply(check)


@pulumi.runtime.test
def test_prod_stack():
    """A Supervisor: the libraries go to the namespaces in scope, the image resources predict
    (they never write an object), and one ObservedImages resource, after all of them and the
    associations, waits for VM Operator's objects. The cluster images live in a library the
    Supervisor's admin associated beforehand (existing), the only kind VM Operator publishes
    cluster images from."""
    listing = FakeListing({"vmware-marketplace": MARKETPLACE}, namespaces=("ml-training", "tanzu-system"))
    mocks, catalog, config = build("prod", listing)

    def check(images):
        found = by_type(mocks)
        items = {a.inputs["name"]: a.inputs for a in found["ContentLibraryItem"]}
        assert items["Photon OS 5.0"]["sha256"] == config.images[0].sha256
        assert sorted((a.inputs["display_name"], a.inputs["namespace"]) for a in found["VirtualMachineImage"]) == [
            ("TKG Photon 5", "tanzu-system"),
            ("TKG Ubuntu 22.04", "tanzu-system"),
            ("Ubuntu 24.04 LTS (GPU)", "ml-training"),
        ]
        image_resources = found["VirtualMachineImage"] + found["ClusterVirtualMachineImage"]
        assert all(a.inputs["mode"] == "supervisor" for a in image_resources)
        assert all(a.inputs["context"] == "supervisor-prod" for a in image_resources)  # to read, never to write
        assert {items[name]["library_id"] for name in ("Photon OS 5.0", "Ubuntu 24.04 LTS")} == {
            "lib-platform-images-cluster"
        }
        (observer,) = found["ObservedImages"]
        assert (observer.inputs["wait_seconds"], observer.inputs["strict"]) == (600, False)
        assert observer.inputs["context"] == "supervisor-prod"
        entries = {(e["kind"], e.get("namespace"), e["display_name"]) for e in observer.inputs["images"]}
        assert entries == {
            (a.typ.rsplit(":", 1)[1], a.inputs.get("namespace"), a.inputs["display_name"]) for a in image_resources
        }
        associations = {a.inputs["namespace"]: a.inputs["library_ids"] for a in found["NamespaceLibraries"]}
        assert set(associations) == {"ml-training", "tanzu-system"}
        assert associations["tanzu-system"] == ["lib-vmware-marketplace"]
        assert len(associations["ml-training"]) == 1  # platform-images, by the ID of the library it creates
        assert set(images) == {
            "Photon OS 5.0",
            "Ubuntu 24.04 LTS",
            "Ubuntu 24.04 LTS (GPU)",
            "TKG Photon 5",
            "TKG Ubuntu 22.04",
        }

    return pulumi.Output.all(catalog.images, catalog.observer.urn).apply(lambda done: check(done[0]))


def test_supervisor_mode_refuses_a_namespace_vcenter_does_not_have():
    config = load_catalog_config(
        {
            "libraries": [{"name": "lib", "datastore": "ds"}],
            "images": [{"displayName": "p", "source": "p.ova", "library": "lib", "scope": ["team-a", "team-z"]}],
            "kubernetes": {"mode": "supervisor"},
        }
    )
    pulumi.runtime.set_mocks(Mocks(), project="vmimage", stack="t", preview=True)
    with pytest.raises(ConfigError, match="vCenter has no Supervisor namespace 'team-z'"):
        ImageCatalog("catalog", config, FakeListing({}, namespaces=("team-a",)))


@pulumi.runtime.test
def test_crds_are_installed_when_asked_and_images_depend_on_them():
    config = load_catalog_config(
        {
            "libraries": [{"name": "l", "datastore": "d"}],
            "images": [{"displayName": "x", "source": "x.ova", "library": "l", "scope": ["a"]}],
            "kubernetes": {"kubeconfig": "/k", "context": "c", "installCrds": True},
        }
    )
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="vmimage", stack="t", preview=False)
    catalog = ImageCatalog("catalog", config)

    def check(_):
        found = by_type(mocks)
        assert sorted(a.inputs["metadata"]["name"] for a in found["CustomResourceDefinition"]) == [
            "clustervirtualmachineimages.vmoperator.vmware.com",
            "virtualmachineimages.vmoperator.vmware.com",
        ]
        assert found["kubernetes"][0].inputs["context"] == "c"  # the CRDs go to the configured cluster
        assert found["kubernetes"][0].inputs["kubeconfig"] == "/k"
        (image,) = found["VirtualMachineImage"]
        assert (image.inputs["kubeconfig"], image.inputs["context"]) == ("/k", "c")

    return catalog.images.apply(check)


def test_the_same_display_name_twice_in_a_scope_names_both_entries():
    config = load_catalog_config(
        {
            "libraries": [{"name": "l", "datastore": "d"}, {"name": "m", "existing": True}],
            "images": [{"displayName": "Photon", "source": "a.ova", "library": "l", "scope": ["team-a", "team-b"]}],
            "sync": [{"library": "m", "scope": ["team-b"]}],
        }
    )
    planned = plan(config, {0: [SyncedItem("u", "Photon", "1")]})
    assert display_name_conflicts(planned) == [
        "display name 'Photon' appears twice in namespace team-b: vmimage:images[0] and "
        "vmimage:sync[0] (item 'Photon' of library 'm')"
    ]
    with pytest.raises(ConfigError, match="appears twice in namespace team-b"):
        pulumi.runtime.set_mocks(Mocks(), project="vmimage", stack="t", preview=True)
        ImageCatalog("catalog", config, FakeListing({"m": [ListedItem("u", "Photon", "ovf", "1")]}))


def test_same_name_in_cluster_and_namespace_is_allowed():
    planned = [PlannedImage("Photon", None, "a", ()), PlannedImage("Photon", "team-a", "b", ())]
    assert display_name_conflicts(planned) == []


def test_resource_names_are_stable_and_distinct():
    assert resource_name("catalog", "vmi", "Photon OS 5.0", "dev") == resource_name(
        "catalog", "vmi", "Photon OS 5.0", "dev"
    )
    assert resource_name("c", "Photon OS 5.0") != resource_name("c", "photon-os-5-0")
    assert resource_name("c", "Photon OS 5.0").startswith("c-photon-os-5-0-")


def test_catalog_table_lists_cluster_images_first():
    table = catalog_table(
        [
            {
                "apiVersion": "vmoperator.vmware.com/v1alpha5",
                "kind": "VirtualMachineImage",
                "metadata": {"name": "vmi-2", "namespace": "dev"},
                "status": {"name": "B", "type": "OVF"},
            },
            {
                "apiVersion": "vmoperator.vmware.com/v1alpha5",
                "kind": "ClusterVirtualMachineImage",
                "metadata": {"name": "vmi-1"},
                "status": {"name": "A", "type": "ISO"},
            },
        ]
    )
    lines = table.splitlines()
    assert lines[1].split()[:4] == ["(cluster)", "vmi-1", "A", "ISO"] and lines[2].split()[:4] == [
        "dev",
        "vmi-2",
        "B",
        "OVF",
    ]


def test_renamed_resources_keep_their_former_names_as_aliases():
    from vmimage.catalog import named_with_aliases

    name, aliases = named_with_aliases(["catalog"], ["item"], ["lib-b", "lib-a"], ["Photon 5", "photon-5-sample"])
    assert name == resource_name("catalog", "item", "lib-b", "Photon 5")  # what a stack without renames has
    assert aliases == [
        resource_name("catalog", "item", "lib-b", "photon-5-sample"),
        resource_name("catalog", "item", "lib-a", "Photon 5"),
        resource_name("catalog", "item", "lib-a", "photon-5-sample"),
    ]
    assert named_with_aliases(["catalog"], ["library"], ["lib"]) == (resource_name("catalog", "library", "lib"), [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["images"][1].update(renamedFrom=["photon"]),
            "vmimage:images[1].renamedFrom: 'photon' is images[0]'s displayName now in library 'lib'",
        ),
        (
            lambda c: c["libraries"].append({"name": "old", "datastore": "ds", "renamedFrom": ["lib"]}),
            "vmimage:libraries[1].renamedFrom: 'lib' is libraries[0]'s name now",
        ),
        (
            lambda c: c["libraries"].append({"name": "shared", "existing": True, "forceDestroy": True}),
            "an existing library is never changed or deleted",
        ),
    ],
)
def test_a_former_name_that_is_another_entrys_name_is_refused(change, message):
    config = {
        "libraries": [{"name": "lib", "datastore": "ds"}],
        "images": [
            {"displayName": "photon", "source": "p.ova", "library": "lib"},
            {"displayName": "ubuntu", "source": "u.ova", "library": "lib"},
        ],
    }
    change(config)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_catalog_config(config)
