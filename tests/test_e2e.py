"""The dev stack end to end: the program, the provider host, the simulator and the Kubernetes emulator.

`pulumi up` four times, as a platform team would over a few days: publish everything;
change one image's source; remove one image; find an item someone added by hand to a
synced library.
"""

from __future__ import annotations

import json

import pytest

from providers.library_item import ContentLibraryItemProvider
from tests.deploy import Deployment
from tests.engine import provider_host
from tests.test_program import ROOT, stack_config
from tests.test_providers import ITEM, PASSWORD, direct_client, vsphere_config
from vmimage.ids import vmi_id
from vmimage.samples import SampleImage, write_ova, write_samples
from vmimage.schema import schema_errors
from vmimage.vsphere.inventory import find_datastore_id
from vmimage.vsphere.settings import resolve_settings

pytestmark = pytest.mark.vcsim


def dev_config(vcsim, kube, samples, drop=()) -> dict[str, str]:
    """The dev stack file as the engine hands it over, pointed at this run's simulator, samples and cluster."""
    config = stack_config(ROOT / "stacks" / "Pulumi.dev.yaml")
    images = [image for image in json.loads(config["vmimage:images"]) if image["displayName"] not in drop]
    for image in images:
        image["source"] = str(samples / image["source"].rsplit("/", 1)[1])
    libraries = [*json.loads(config["vmimage:libraries"]), {"name": "vendor-e2e", "existing": True}]
    return {
        **config,
        "vsphere:vsphereServer": vcsim.server,
        "vsphere:caFile": str(vcsim.ca_file),
        "vsphere:password": PASSWORD,
        "vmimage:libraries": json.dumps(libraries),
        "vmimage:images": json.dumps(images),
        "vmimage:sync": json.dumps([{"library": "vendor-e2e", "scope": "cluster"}]),
        "vmimage:kubernetes": json.dumps({"kubeconfig": str(kube.kubeconfig)}),
    }


def objects(kube) -> dict[tuple[str, str | None], dict]:
    """What the cluster holds: (display name, namespace) → object."""
    return {
        (o["status"]["name"], o["metadata"].get("namespace")): o
        for o in kube.emulator.objects.values()
        if o["status"].get("name", "").endswith(("sample", "vendor-tool"))
    }


def test_dev_stack_lifecycle(vcsim, kube, tmp_path, monkeypatch):
    monkeypatch.setenv("VSPHERE_PASSWORD", PASSWORD)
    samples = tmp_path / "samples"
    write_samples(samples)
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    settings = resolve_settings({**vsphere_config(vcsim), "vsphere:password": PASSWORD}, {})
    with direct_client(vcsim) as client:  # a library someone else fills, that the stack syncs
        vendor_library = client.create_library("vendor-e2e", find_datastore_id(settings, "LocalDS_0"))

    with provider_host(vsphere_config(vcsim)) as host:
        first_vendor_item = host.up(
            ITEM,
            ContentLibraryItemProvider(),
            {
                "library_id": vendor_library,
                "name": "first-vendor-tool",
                "source": str(write_ova(vendor / "first.ova", SampleImage(name="first"))),
            },
        )
        deployment = Deployment(host)

        # 1. everything is created
        steps = deployment.up(dev_config(vcsim, kube, samples))
        assert sorted(op for op in steps.values() if op != "record") == ["create"] * 8  # library, 3 items, 4 images
        cluster = objects(kube)
        assert set(cluster) == {
            ("photon-5-sample", None),
            ("tools-sample", None),
            ("ubuntu-24.04-sample", "dev"),
            ("first-vendor-tool", None),
        }
        assert all(schema_errors(obj) == [] for obj in cluster.values())
        items = deployment.of_type("ContentLibraryItem")
        photon_item = next(state for state in items.values() if state["name"] == "photon-5-sample")
        photon_vmi = vmi_id(photon_item["__id"])
        assert cluster[("photon-5-sample", None)]["metadata"]["name"] == photon_vmi
        assert cluster[("first-vendor-tool", None)]["metadata"]["name"] == vmi_id(first_vendor_item.id)
        assert deployment.exports["images"]["ubuntu-24.04-sample"] == [
            {
                "vmi_id": cluster[("ubuntu-24.04-sample", "dev")]["metadata"]["name"],
                "kind": "VirtualMachineImage",
                "namespace": "dev",
            }
        ]
        assert "photon-5-sample" in deployment.exports["table"]

        # nothing changed: nothing to do
        steps = deployment.up(dev_config(vcsim, kube, samples))
        assert {op for op in steps.values() if op != "record"} == {"same"}

        # 2. a new photon build: the item and its image update in place, the VMI ID stays
        write_ova(
            samples / "photon-5-sample.ova",
            SampleImage(name="photon-5-sample", version="5.1", full_version="5.1.0", hardware_version=20),
        )
        steps = deployment.up(dev_config(vcsim, kube, samples))
        changed = {name: op for name, op in steps.items() if op not in ("same", "record")}
        assert sorted(changed.values()) == ["update", "update"]
        photon = objects(kube)[("photon-5-sample", None)]
        assert photon["metadata"]["name"] == photon_vmi
        assert photon["status"]["productInfo"]["version"] == "5.1" and photon["status"]["hardwareVersion"] == 20
        assert photon["status"]["providerContentVersion"] == "2"

        # 3. the tools image leaves the catalog: its object and its item go
        steps = deployment.up(dev_config(vcsim, kube, samples, drop=("tools-sample",)))
        assert sorted(op for op in steps.values() if op == "delete") == ["delete", "delete"]
        assert ("tools-sample", None) not in objects(kube)
        with direct_client(vcsim) as client:
            library_id = next(iter(deployment.of_type("ContentLibrary").values()))["__id"]
            assert client.find_items(library_id, "tools-sample") == []

        # 4. someone adds an item to the synced library by hand: the next run publishes it
        second = host.up(
            ITEM,
            ContentLibraryItemProvider(),
            {
                "library_id": vendor_library,
                "name": "second-vendor-tool",
                "source": str(write_ova(vendor / "second.ova", SampleImage(name="second", guest_id="rhel9_64Guest"))),
            },
        )
        steps = deployment.up(dev_config(vcsim, kube, samples, drop=("tools-sample",)))
        assert [op for op in steps.values() if op == "create"] == ["create"]
        added = objects(kube)[("second-vendor-tool", None)]
        assert added["metadata"]["name"] == vmi_id(second.id)
        assert added["status"]["osInfo"]["id"] == "rhel9_64Guest"
        assert added["metadata"]["labels"]["os.image.vmoperator.vmware.com/type"] == "Linux"
