"""Ownership by stack instance: what one stack made is never another's to take or delete.

The same project and resource names are in every copy of the repository, so a stack `prod` in
another backend, organisation or fork (or an empty state) declares exactly what this one does.
Its tokens differ all the same (vmimage/declaration.py, providers/instance.py): a create refuses
an item another instance made, naming it, and takes back one its own killed run made; an image
object published by two instances is deleted only by the last to let go. First the item
provider through the engine protocol, then two stacks through the real CLI, simulator and API
server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from providers.common import INSTANCE
from providers.library_item import UNFINISHED, ContentLibraryItemProvider
from tests.devcluster import Cluster
from tests.pulumi_cli import Stack
from tests.test_engine import items
from tests.test_providers import ITEM, PASSWORD, direct_client, vsphere_config
from tests.test_reliability import failing_create
from vmimage.contract.ids import vmi_id
from vmimage.declaration import marked, new_instance, unmarked
from vmimage.descriptor.samples import SAMPLES, SampleImage, write_ova
from vmimage.vsphere.inventory import find_datastore_id
from vmimage.vsphere.publish import upload_source
from vmimage.vsphere.settings import resolve_settings

pytestmark = pytest.mark.vcsim
PROVIDER_ENV = {"VMIMAGE_PROGRESS_INTERVAL": "0"}
LIBRARY_NAME = "ownership"

DECLARATION = "vmimage/prod/catalog-item-ownership-photon-5-a1b2c3"


def declared() -> ContentLibraryItemProvider:
    return ContentLibraryItemProvider(DECLARATION)


# --- the item provider --------------------------------------------------------------------------


def test_another_instances_item_of_the_same_declaration_is_refused_and_kept(host, library, client, tmp_path):
    ova = write_ova(tmp_path / "p.ova", SAMPLES[0])
    inputs = {"library_id": library.id, "name": "same-names", "source": str(ova)}
    theirs = host.up(ITEM, declared(), {**inputs, INSTANCE: new_instance()})
    details = failing_create(host, {**inputs, INSTANCE: new_instance()}, declared())
    assert f"already has an item with this name ({theirs.id})" in details
    assert "another stack" in details and "neither deletes nor takes it" in details
    assert client.find_items(library.id, "same-names") == [theirs.id]
    host.delete(theirs.id, theirs.outputs)


def test_a_finished_item_of_this_declaration_is_taken_back_with_its_uuid(host, library, client, tmp_path):
    """What a `pulumi up` killed after the item was made, before Pulumi recorded it, leaves: the
    next create of the same declaration of the same instance makes no new item (a new UUID would
    be a new VMI ID); it uploads into that one what it lacks."""
    ova = write_ova(tmp_path / "p.ova", SAMPLES[0])
    inputs = {"library_id": library.id, "name": "killed-run", "source": str(ova), "description": "Photon"}
    inputs[INSTANCE] = new_instance()
    first = host.up(ITEM, declared(), inputs)  # its record lost, as with a kill
    token = declared().token(inputs, library.id)
    assert client.get_item(first.id).description == marked("Photon", token)
    since = len(host.stderr)
    again = host.up(ITEM, declared(), inputs)
    assert again.op == "create" and again.id == first.id and again.outputs["vmi_id"] == vmi_id(first.id)
    log = host.wait_for_log("already holds", since)  # nothing uploaded again
    assert f"taking back item {first.id} ('killed-run')" in log
    assert again.outputs["description"] == "Photon"
    # the killed run's source was another: it is uploaded into the same item
    (tmp_path / "v2").mkdir()  # the same file names: the simulator cannot remove one from an item
    changed = write_ova(tmp_path / "v2" / "p.ova", SampleImage(name="killed-run", version="5.1"))
    since = len(host.stderr)
    third = host.up(ITEM, declared(), {**inputs, "source": str(changed)})
    assert first.outputs["image"]["productInfo"]["version"] == "5.0"
    assert third.id == first.id and third.outputs["image"]["productInfo"]["version"] == "5.1"
    log = host.wait_for_log("uploaded in", since)
    assert f"taking back item {first.id}" in log and "already holds" not in log
    assert client.find_items(library.id, "killed-run") == [first.id]
    assert client.get_item(first.id).description == marked("Photon", token)
    host.delete(first.id, third.outputs)


def test_an_upload_in_progress_of_another_writer_is_never_removed(host, library, client, tmp_path):
    """An item marked unfinished without this instance's token: another writer's upload (no
    token: a provider on its own, an earlier release), or another stack's. Left alone, named."""
    ova = write_ova(tmp_path / "p.ova", SAMPLES[0])
    inputs = {"library_id": library.id, "name": "in-progress", "source": str(ova), INSTANCE: new_instance()}
    for description in (UNFINISHED, marked(UNFINISHED, "0123456789abcdef0123456789abcdef")):
        other = client.create_item(library.id, "in-progress", description, "OVF")
        details = failing_create(host, inputs, declared())
        assert f"({other})" in details and "another writer is uploading or failed to upload" in details
        assert client.find_items(library.id, "in-progress") == [other]
        assert client.get_item(other).description == description
        client.delete_item(other)


def test_an_item_of_a_stack_before_instances_keeps_its_token_and_uuid(host, library, client, tmp_path):
    """A stack deployed before instances has items marked with an unsalted token. The program now
    gives every item the instance: no change for it (the instance is no input a diff reads), and
    an update keeps the item's own token."""
    ova = write_ova(tmp_path / "p.ova", SAMPLES[0])
    earlier = "5f1d2c3b4a5f1d2c3b4a5f1d2c3b4a5f"  # as the release before instances made it
    item_id = client.create_item(library.id, "before-instances", marked("", earlier), "OVF")
    upload_source(client, item_id, str(ova))
    inputs = {"library_id": library.id, "name": "before-instances", "source": str(ova)}
    adopted = host.up(ITEM, ContentLibraryItemProvider(), {**inputs, "adopt_id": item_id})
    state = {**adopted.state, "adopt_id": None}
    same = host.up(ITEM, declared(), {**inputs, INSTANCE: new_instance()}, state=state, old_inputs=adopted.inputs)
    assert same.op == "same" and same.id == item_id
    described = host.up(
        ITEM, declared(), {**inputs, "description": "now described", INSTANCE: new_instance()}, after=same
    )
    assert described.op == "update" and described.id == item_id
    assert unmarked(client.get_item(item_id).description) == ("now described", None)  # adopt_id wrote it bare
    host.delete(item_id, described.outputs)


# --- two stacks `prod`, two backends, one library and one cluster -----------------------------

SHARED, VENDOR = "shared-images", "vendor-sync"


@pytest.fixture(scope="module")
def libraries(simulator, tmp_path_factory) -> dict[str, str]:
    """An existing library both stacks publish into, and one someone else fills, which both sync."""
    settings = resolve_settings({**vsphere_config(simulator), "vsphere:password": PASSWORD}, {})
    folder = tmp_path_factory.mktemp("vendor")
    with direct_client(simulator) as client:
        datastore = find_datastore_id(settings, "LocalDS_0")
        found = {name: client.create_library(name, datastore) for name in (SHARED, VENDOR)}
        vendor = client.create_item(found[VENDOR], "vendor-tool", "", "OVF")
        upload_source(client, vendor, str(write_ova(folder / "vendor-tool.ova", SampleImage(name="vendor-tool"))))
    return {**found, "vendor-tool": vendor}


def prod_config(simulator, samples: Path, kube: Cluster, images: bool = True) -> dict:
    photon = {
        "displayName": "photon-5-sample",
        "source": str(samples / "photon-5-sample.ova"),
        "library": SHARED,
        "scope": "cluster",
    }
    return {
        "vsphere:vsphereServer": simulator.server,
        "vsphere:user": "user",
        "vsphere:caFile": str(simulator.ca_file),
        "vmimage:libraries": [{"name": SHARED, "existing": True}, {"name": VENDOR, "existing": True}],
        "vmimage:images": [photon] if images else [],
        "vmimage:sync": [{"library": VENDOR, "scope": "cluster"}],
        "vmimage:kubernetes": {"kubeconfig": str(kube.kubeconfig)},
    }


def prod_stack(folder: Path, config: dict) -> Stack:
    stack = Stack(folder, name="prod")
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    return stack


def owners(kube: Cluster, name: str) -> set[str] | None:
    """The vmimage field managers of the cluster image ``name`` (None: no such object)."""
    found = kube.kubectl("get", "cvmi", name, "-o", "json", "--show-managed-fields", check=False)
    if found.returncode != 0:
        assert "NotFound" in found.stderr, found.stderr
        return None
    entries = json.loads(found.stdout)["metadata"].get("managedFields") or []
    return {e["manager"] for e in entries if e["manager"].startswith("vmimage/") and e["operation"] == "Apply"}


def test_two_backends_with_stack_prod_keep_each_others_items_and_objects(simulator, samples, kube, libraries, tmp_path):
    vendor = vmi_id(libraries["vendor-tool"])
    a = prod_stack(tmp_path / "a", prod_config(simulator, samples, kube))
    a.up()
    photon = items(a)["photon-5-sample"]
    a_owners, photon_owners = owners(kube, vendor), owners(kube, photon["vmi_id"])
    assert a_owners is not None and len(a_owners) == 1
    assert photon_owners is not None and len(photon_owners) == 1
    (a_owner,) = a_owners

    # the same stack name in another backend declares the same item: refused, naming it
    b = prod_stack(tmp_path / "b", prod_config(simulator, samples, kube))
    refused = b.up(check=False)
    assert refused.returncode != 0
    assert f"library {libraries[SHARED]} already has an item with this name ({photon['id']})" in refused.output
    with direct_client(simulator) as client:
        assert client.find_items(libraries[SHARED], "photon-5-sample") == [photon["id"]]
    assert items(a)["photon-5-sample"]["id"] == photon["id"]
    a.preview("--expect-no-changes")

    # what both may declare: the vendor library's image, published by each as an owner of its own
    b.configure(prod_config(simulator, samples, kube, images=False))
    b.up()
    both = owners(kube, vendor)
    assert both is not None and len(both) == 2 and a_owner in both
    assert owners(kube, photon["vmi_id"]) == photon_owners

    b.destroy()  # lets go of its own fields only
    assert owners(kube, vendor) == {a_owner}
    assert owners(kube, photon["vmi_id"]) == photon_owners
    with direct_client(simulator) as client:
        assert client.find_items(libraries[SHARED], "photon-5-sample") == [photon["id"]]
    # B's apply wrote its own transition times into the status both derive from the item: A's refresh
    # reads them as an edit, and its next `up` writes its own back, as after any edit by hand
    a.refresh()
    a.up()
    a.preview("--expect-no-changes")

    # and the other way round: A's destroy leaves what B still declares
    b.up()
    a.destroy()
    b_again = owners(kube, vendor)
    assert b_again is not None and len(b_again) == 1 and a_owner not in b_again
    assert owners(kube, photon["vmi_id"]) is None  # A's own
    with direct_client(simulator) as client:
        assert client.find_items(libraries[SHARED], "photon-5-sample") == []
    b.preview("--expect-no-changes")
    b.destroy()
    assert owners(kube, vendor) is None


def test_an_upload_in_progress_is_not_deleted_by_a_stack_that_declares_its_name(
    simulator, samples, kube, libraries, tmp_path
):
    """Another writer (no token) is uploading an item the stack declares: the stack's `up` fails
    naming it, and the item stays as it is."""
    with direct_client(simulator) as client:
        other = client.create_item(libraries[SHARED], "photon-5-sample", UNFINISHED, "OVF")
    stack = prod_stack(tmp_path / "c", prod_config(simulator, samples, kube))
    refused = stack.up(check=False)
    assert refused.returncode != 0
    assert f"has an item with this name ({other}) that another writer is uploading" in refused.output
    # the engine ends a failed run alive: the program, orphaned by its language host then, said the
    # engine was gone (providers/lifeline.py), a false alarm in every failed `up`
    assert "engine is gone" not in refused.output and "parent process" not in refused.output
    with direct_client(simulator) as client:
        assert client.find_items(libraries[SHARED], "photon-5-sample") == [other]
        assert client.get_item(other).description == UNFINISHED
        client.delete_item(other)
    stack.destroy()


def test_a_lost_state_is_refused_by_name_and_restoring_it_keeps_the_item_and_its_vmi_id(
    simulator, samples, kube, libraries, tmp_path
):
    """The careless operator: `pulumi stack rm --force`, then `up` on a new state of the same name.
    A new state is a new instance: the old item is refused, named, left as it is, and the error names
    the way back that keeps its VMI ID (the state restored), not only the one that ends it (a delete)."""
    config = {**prod_config(simulator, samples, kube), "vmimage:sync": []}
    stack = prod_stack(tmp_path / "lost", config)
    stack.up()
    photon = items(stack)["photon-5-sample"]
    backup = tmp_path / "backup.json"
    stack.run("stack", "export", "--file", str(backup))
    stack.run("stack", "rm", "--force", "--yes", "prod")
    stack.run("stack", "init", "prod", "--secrets-provider", "passphrase")
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    refused = stack.up(check=False)
    assert refused.returncode != 0
    assert f"library {libraries[SHARED]} already has an item with this name ({photon['id']})" in refused.output
    assert "restore that state instead (`pulumi stack import --file <backup>`)" in refused.output
    with direct_client(simulator) as client:
        assert client.find_items(libraries[SHARED], "photon-5-sample") == [photon["id"]]
    # the way back it names: the same instance again, the same item and VMI ID
    stack.run("stack", "import", "--file", str(backup))
    stack.up()
    stack.preview("--expect-no-changes")
    assert items(stack)["photon-5-sample"]["id"] == photon["id"]
    assert items(stack)["photon-5-sample"]["vmi_id"] == photon["vmi_id"]
    stack.destroy()
    with direct_client(simulator) as client:
        assert client.find_items(libraries[SHARED], "photon-5-sample") == []
