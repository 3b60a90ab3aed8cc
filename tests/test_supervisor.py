"""Supervisor mode: the image resources predict (and never write an object), one ObservedImages
resource waits for VM Operator's objects and holds them to the predictions, and the mode a
resource was created in is part of its state. VM Operator is played back from its recorded
output (tests/vm_operator_playback.py), against the real API server, the simulator and, where
the engine's own behaviour is the point, the real Pulumi CLI."""

from __future__ import annotations

import json
import re
import threading
import time

import grpc
import pytest
import yaml

from providers.content_library import ContentLibraryProvider
from providers.library_item import ContentLibraryItemProvider
from providers.vm_image import (
    ClusterVirtualMachineImageProvider,
    ObservedImagesProvider,
    _require_supervisor_library,
)
from tests.test_providers import ITEM, LIBRARY, PASSWORD
from tests.vm_operator_playback import associate_with_supervisor, publish, publish_later, recorded_object
from vmimage.contract.ids import vmi_id
from vmimage.contract.models import CLUSTER_KIND
from vmimage.contract.status import CONTRACT
from vmimage.descriptor.samples import SAMPLES, write_ova

pytestmark = pytest.mark.vcsim
CVMI = "pulumi-python:dynamic/vmimage:ClusterVirtualMachineImage"
OBSERVED = "pulumi-python:dynamic/vmimage:ObservedImages"
FAST = {"VMIMAGE_OBSERVE_POLL_SECONDS": "0.2", "VMIMAGE_PROGRESS_INTERVAL": "0.5"}
PROVIDER_ENV = FAST


@pytest.fixture(scope="module")
def library(host, kube):
    """A library the Supervisor's admin associated with the Supervisor: VM Operator publishes
    cluster images of its items."""
    created = host.up(LIBRARY, ContentLibraryProvider(), {"name": "supervisor-images", "datastore": "LocalDS_0"})
    associate_with_supervisor(kube, created.id)
    return created


def ubuntu_item(host, library, tmp_path, name: str):
    """The dev stack's ubuntu-24.04-sample package (byte-identical to the recorded one), as an item."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    ova = write_ova(tmp_path / "ubuntu-24.04-sample.ova", SAMPLES[1])
    return host.up(ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": name, "source": str(ova)})


def image_inputs(item, kube, mode: str = "supervisor") -> dict:
    return {
        "item_id": item.id,
        "content_version": item.outputs["content_version"],
        "display_name": item.outputs["name"],
        "kubeconfig": str(kube.kubeconfig),
        "mode": mode,
    }


def entry(item) -> dict:
    """What the catalog hands ObservedImages for a cluster image of ``item``."""
    return {
        "kind": CLUSTER_KIND,
        "item_id": item.id,
        "content_version": item.outputs["content_version"],
        "display_name": item.outputs["name"],
        "capabilities": [],
    }


def observer_inputs(kube, entries: list[dict], wait_seconds: int = 20, strict: bool = False) -> dict:
    return {"images": entries, "kubeconfig": str(kube.kubeconfig), "wait_seconds": wait_seconds, "strict": strict}


def recorded(item, library) -> dict:
    return recorded_object(
        "ubuntu-24.04-sample", item.id, library.id, item.outputs["content_version"], name=item.outputs["name"]
    )


def managers(kube, name: str) -> set[str]:
    shown = kube.kubectl("get", "cvmi", name, "-o", "json", "--show-managed-fields").stdout
    return {entry["manager"] for entry in json.loads(shown)["metadata"].get("managedFields") or []}


def test_the_image_predicts_at_once_and_the_observer_waits_for_vm_operators_object(host, library, kube, tmp_path):
    item = ubuntu_item(host, library, tmp_path, "ubuntu-24.04-sample")
    image = host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(item, kube))
    assert image.op == "create" and image.id == vmi_id(item.id)
    outputs = image.outputs
    assert (outputs["mode"], outputs["published"], outputs.get("owner")) == ("supervisor", False, None)
    assert kube.get("clustervirtualmachineimages", image.id) is None  # predicted: neither written nor waited for
    publish_later(kube, recorded(item, library), after=1.5)
    since = len(host.stderr)
    observer = host.up(OBSERVED, ObservedImagesProvider(), observer_inputs(kube, [entry(item)]))
    assert observer.outputs["observed"] == {f"ClusterVirtualMachineImage {image.id}": "as predicted"}
    log = host.wait_for_log("1 of 1 images not as predicted yet", since)
    assert f"ClusterVirtualMachineImage {image.id} (the object)" in log
    assert "differs from the prediction" not in "".join(host.stderr[since:])
    assert managers(kube, image.id) == {"vm-operator"}  # vmimage wrote nothing
    host.delete(image.id, image.outputs)
    host.delete(observer.id, observer.outputs)
    assert kube.get("clustervirtualmachineimages", image.id) is not None  # nor deletes VM Operator's object


def test_a_difference_is_a_warning_field_by_field_and_a_failure_under_strict(host, library, kube, tmp_path):
    item = ubuntu_item(host, library, tmp_path, "ubuntu-mismatch")

    def bios(obj: dict) -> None:
        obj["status"]["firmware"] = "bios"

    publish_later(kube, recorded(item, library), after=0.5, change=bios)
    since = len(host.stderr)
    observer = host.up(OBSERVED, ObservedImagesProvider(), observer_inputs(kube, [entry(item)]))
    warning = host.wait_for_log("differs from the prediction", since)
    assert "status.firmware: predicted 'efi', VM Operator has 'bios'" in warning
    (found,) = observer.outputs["observed"].values()
    assert found == ["status.firmware: predicted 'efi', VM Operator has 'bios'"]
    with pytest.raises(grpc.RpcError) as caught:  # strict: another setting, so every image is compared again
        host.up(OBSERVED, ObservedImagesProvider(), observer_inputs(kube, [entry(item)], strict=True), after=observer)
    assert "differs from the prediction (strict)" in caught.value.details()
    assert "status.firmware: predicted 'efi', VM Operator has 'bios'" in caught.value.details()


def test_no_object_in_time_is_a_clear_error(host, library, kube, tmp_path):
    item = ubuntu_item(host, library, tmp_path, "ubuntu-never")
    with pytest.raises(grpc.RpcError) as caught:
        host.up(OBSERVED, ObservedImagesProvider(), observer_inputs(kube, [entry(item)], wait_seconds=1))
    details = caught.value.details()
    assert "VM Operator has not published it within 1 s" in details and "is the item's library associated" in details
    assert "Traceback" not in details
    assert kube.get("clustervirtualmachineimages", vmi_id(item.id)) is None


def test_vmimage_verify_holds_the_cluster_to_the_stacks_prediction(host, library, kube, vcsim, tmp_path):
    """`vmimage verify`, outside Pulumi: as predicted (exit 0), then a field VM Operator wrote
    otherwise and an object it never published (exit 1, each named)."""

    from tests.test_cli_get import sync_stack, vmimage

    library = host.up(LIBRARY, ContentLibraryProvider(), {"name": "verify-images", "datastore": "LocalDS_0"})
    first = ubuntu_item(host, library, tmp_path / "a", "verify-ubuntu")
    second = ubuntu_item(host, library, tmp_path / "b", "verify-ubuntu-2")
    sync_stack(tmp_path / "project", "sv", vcsim, "verify-images", "cluster")
    for item in (first, second):  # VM Operator, for each item of a library the Supervisor has
        publish(
            kube,
            recorded_object(
                "ubuntu-24.04-sample", item.id, library.id, item.outputs["content_version"], name=item.outputs["name"]
            ),
        )

    def verify():
        return vmimage(
            "verify", "--stack", "sv", "--kubeconfig", str(kube.kubeconfig),
            cwd=tmp_path / "project", env={"VSPHERE_PASSWORD": PASSWORD},
        )  # fmt: skip

    ok = verify()
    assert ok.returncode == 0 and "2 images as predicted" in ok.stdout, ok.stdout + ok.stderr
    stack_file = tmp_path / "project" / "stacks" / "Pulumi.sv.yaml"
    synced_only = stack_file.read_text()
    declared = yaml.safe_load(synced_only)
    declared["config"]["vmimage:images"] = [
        {"displayName": "never-uploaded", "source": "never.ova", "library": "verify-images", "scope": "cluster"}
    ]
    stack_file.write_text(yaml.safe_dump(declared))
    missing = verify()  # the two that are there pass; the one that is not fails the run
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert missing.stdout == (
        "image 'never-uploaded' (vmimage:images[0], library 'verify-images', cluster scope): "
        "declared but vCenter has no item: not published yet, or deleted\n"
    )
    assert missing.stderr == "0 of 2 images differ from the prediction; 1 declared but not in vCenter\n"
    stack_file.write_text(synced_only)
    kube.kubectl(
        "patch", "cvmi", vmi_id(first.id), "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"firmware": "bios"}}),
    )  # fmt: skip
    kube.kubectl("delete", "cvmi", vmi_id(second.id))
    found = verify()
    assert found.returncode == 1
    assert "status.firmware: predicted 'efi', VM Operator has 'bios'" in found.stdout
    assert f"ClusterVirtualMachineImage {vmi_id(second.id)} ('verify-ubuntu-2'): not in the cluster" in found.stdout
    assert "2 of 2 images differ" in found.stderr


def test_capabilities_vm_operator_does_not_fill_are_no_difference(host, library, kube, tmp_path):
    """photon-5-sample declares a capability in its descriptor: vmimage predicts it (as the CRD
    documents), VM Operator's recorded object has none; that alone is not a difference."""
    (tmp_path / "p").mkdir()
    ova = write_ova(tmp_path / "p" / "photon-5-sample.ova", SAMPLES[0])
    item = host.up(
        ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": "photon-caps", "source": str(ova)}
    )
    obj = recorded_object(
        "photon-5-sample", item.id, library.id, item.outputs["content_version"], name=item.outputs["name"]
    )
    assert "capabilities" not in obj["status"]
    image = host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(item, kube))
    assert image.outputs["status"]["capabilities"]  # the prediction has them
    publish_later(kube, obj, after=0.5)
    since = len(host.stderr)
    observer = host.up(OBSERVED, ObservedImagesProvider(), observer_inputs(kube, [entry(item)], strict=True))
    assert list(observer.outputs["observed"].values()) == ["as predicted"]
    assert "differs from the prediction" not in "".join(host.stderr[since:])


def test_a_rename_under_strict_waits_until_vm_operator_shows_the_new_name(host, library, kube, tmp_path):
    """renamedFrom, same item: the content version does not move, only the name. The observer
    waits for VM Operator's object to show the new name (status.name and its annotation) before
    it compares, so strict passes once VM Operator has caught up, not before."""
    item = ubuntu_item(host, library, tmp_path, "ubuntu-old-name")
    publish(kube, recorded(item, library))  # VM Operator's object, under the old name
    image = host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(item, kube))
    observer = host.up(OBSERVED, ObservedImagesProvider(), observer_inputs(kube, [entry(item)], strict=True))
    assert list(observer.outputs["observed"].values()) == ["as predicted"]

    source = str(tmp_path / "ubuntu-24.04-sample.ova")
    renamed = host.up(
        ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": "ubuntu-new-name", "source": source},
        after=item,
    )  # fmt: skip
    assert (renamed.op, renamed.id) == ("update", item.id)
    assert renamed.outputs["content_version"] == item.outputs["content_version"]
    image = host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(renamed, kube), after=image)
    assert image.op == "update" and image.outputs["status"]["name"] == "ubuntu-new-name"
    assert kube.get("clustervirtualmachineimages", image.id)["status"]["name"] == "ubuntu-old-name"  # not yet seen
    publish_later(kube, recorded(renamed, library), after=1.5)
    since = len(host.stderr)
    again = host.up(
        OBSERVED, ObservedImagesProvider(), observer_inputs(kube, [entry(renamed)], strict=True), after=observer
    )
    assert again.op == "update" and again.outputs["observed"] == {
        f"ClusterVirtualMachineImage {image.id}": "as predicted"
    }
    log = host.wait_for_log("not as predicted yet", since)
    assert "status.name, metadata.annotations[vmware.com/display-name]" in log  # what it waited for
    assert kube.get("clustervirtualmachineimages", image.id)["status"]["name"] == "ubuntu-new-name"


def test_a_cluster_image_whose_library_the_supervisor_lacks_fails_at_once(host, kube, tmp_path):
    elsewhere = host.up(LIBRARY, ContentLibraryProvider(), {"name": "not-the-supervisors", "datastore": "LocalDS_0"})
    item = ubuntu_item(host, elsewhere, tmp_path, "ubuntu-unassociated")
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(item, kube))
    details = caught.value.details()
    assert f"its library 'not-the-supervisors' ({elsewhere.id}) is not associated with the Supervisor" in details
    assert "scope the image to namespaces" in details and "Traceback" not in details
    assert time.monotonic() - started < 20  # no wait for VM Operator: the image never waits at all
    associate_with_supervisor(kube, elsewhere.id)  # the admin associates it: the same image goes through
    assert host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(item, kube)).op == "create"


class _Unanswering:
    """A cluster whose image registry cannot say which libraries the Supervisor has."""

    target = object()

    def supervisor_libraries(self):
        return None, "cluster x does not serve ClusterContentLibrary objects (HTTP 404 Not Found)"


def test_a_cluster_that_cannot_say_is_warned_about_and_left_to_the_wait(monkeypatch):
    """Recorded from the provider's warning line (providers/common.py `warn`)."""
    import providers.vm_image

    said: list[str] = []
    monkeypatch.setattr(providers.vm_image, "warn", said.append)
    obj = {"kind": CLUSTER_KIND, "metadata": {"name": "vmi-0123456789abcdef0"}}
    _require_supervisor_library(_Unanswering(), "lib-1", obj, "x")  # type: ignore[arg-type]
    assert any("cannot check that cluster images' libraries are associated with the Supervisor" in m for m in said)


def test_four_waiting_images_do_not_delay_another_resources_create(host, library, kube, tmp_path):
    """The provider host answers with 4 gRPC workers. Control: four calls that each wait for VM
    Operator (as each image resource did) leave a fifth call (a library's create) stalled until
    VM Operator publishes. Supervisor mode: one ObservedImages call waits for all four images
    while four image creates and a library's create go through, VM Operator still silent."""
    items = [ubuntu_item(host, library, tmp_path / str(n), f"ubuntu-wait-{n}") for n in range(8)]
    waiting, others = items[:4], items[4:]

    def observe(entries: list[dict], done: list) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: done.append(
                host.up(OBSERVED, ObservedImagesProvider(), observer_inputs(kube, entries, wait_seconds=120))
            ),
            daemon=True,
        )
        thread.start()
        return thread

    def waiting_calls(count: int, since: int) -> None:  # each observer's progress line shows it waits
        deadline = time.monotonic() + 30
        while "".join(host.stderr[since:]).count("not as predicted yet") < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def library_create(name: str, done: list) -> threading.Thread:
        inputs = {"name": name, "datastore": "LocalDS_0"}
        thread = threading.Thread(target=lambda: done.append(host.up(LIBRARY, ContentLibraryProvider(), inputs)))
        thread.start()
        return thread

    # control: four calls that wait, one a worker
    since, observed = len(host.stderr), []
    observers = [observe([entry(item)], observed) for item in waiting]
    waiting_calls(4, since)
    created: list = []
    stalled = library_create("created-while-four-wait", created)
    stalled.join(5)  # a library's create takes well under a second when a worker is free
    assert stalled.is_alive() and not created, "four waiting calls should hold every worker of the host"
    for item in waiting:
        publish(kube, recorded(item, library))
    stalled.join(60)
    assert created and created[0].op == "create"
    for thread in observers:
        thread.join(60)
    assert [list(step.outputs["observed"].values()) for step in observed] == [["as predicted"]] * 4

    # supervisor mode: one call waits for the four images
    since, observed = len(host.stderr), []
    observer = observe([entry(item) for item in others], observed)
    waiting_calls(1, since)
    results: list = []
    calls = [
        threading.Thread(
            target=lambda item=item: results.append(
                host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(item, kube))
            )
        )
        for item in others
    ]
    for call in calls:
        call.start()
    creating = library_create("created-while-the-observer-waits", results)
    for call in [*calls, creating]:
        call.join(60)
    assert sorted(step.op for step in results) == ["create"] * 5
    assert observer.is_alive() and not observed  # all done while it still waits: VM Operator has published nothing
    assert all(kube.get("clustervirtualmachineimages", vmi_id(item.id)) is None for item in others)
    for item in others:
        publish(kube, recorded(item, library))
    observer.join(60)
    assert list(observed[0].outputs["observed"].values()) == ["as predicted"] * 4


def test_settled_waits_for_every_field_vm_operator_derives_from_the_item():
    """Content version, display name and its annotation, readiness: until each is as predicted,
    VM Operator has not caught up (pure: VM Operator's recorded object against itself, changed)."""
    from vmimage.contract.verify import behind, settled

    item, library = "2f5a1c9e-8f7b-4c3d-9e2a-1b0c4d5e6f70", "7d3e2c1b-0a9f-4e8d-b7c6-a5f4e3d2c1b0"
    predicted = recorded_object("ubuntu-24.04-sample", item, library, "2", name="new-name")
    assert settled(json.loads(json.dumps(predicted)), predicted) and behind(None, predicted) == ["the object"]
    old_name = recorded_object("ubuntu-24.04-sample", item, library, "2", name="old-name")
    assert behind(old_name, predicted) == ["status.name", "metadata.annotations[vmware.com/display-name]"]
    half_way = json.loads(json.dumps(predicted))  # the annotation applied, the status not yet
    half_way["status"]["name"] = "old-name"
    assert behind(half_way, predicted) == ["status.name"]
    old_content = recorded_object("ubuntu-24.04-sample", item, library, "1", name="new-name")
    assert behind(old_content, predicted) == ["status.providerContentVersion"]
    not_ready = json.loads(json.dumps(predicted))
    next(c for c in not_ready["status"]["conditions"] if c["type"] == "Ready")["status"] = "False"
    assert behind(not_ready, predicted) == ["status.conditions[Ready]"]
    unversioned = json.loads(json.dumps(predicted))  # a server that reports no content version
    del unversioned["status"]["providerContentVersion"]
    assert settled(old_content, unversioned) and not settled(old_name, unversioned)


def test_the_mode_is_part_of_the_state_and_a_change_of_it_is_an_update(host):
    """What each release's state reads as, and what the preview makes of a change (check and
    diff, as the engine calls them)."""
    provider = ClusterVirtualMachineImageProvider()
    program = {
        "item_id": "2f5a1c9e-8f7b-4c3d-9e2a-1b0c4d5e6f70",
        "content_version": "1",
        "display_name": "x",
        "kubeconfig": "/nonexistent/kubeconfig",
    }
    publish_inputs = host.check(CVMI, provider, {}, {**program, "mode": "publish"}).inputs
    supervisor_inputs = host.check(CVMI, provider, {}, {**program, "mode": "supervisor"}).inputs
    assert (publish_inputs["mode"], supervisor_inputs["mode"]) == ("publish", "supervisor")
    assert host.check(CVMI, provider, {}, program).inputs["mode"] == "publish"  # none given: publish
    refused = host.check(CVMI, provider, {}, {**program, "mode": "Supervisor"})
    assert refused.failures == [("mode", "mode 'Supervisor' is neither 'publish' nor 'supervisor'")]

    def state(inputs: dict, **changes) -> dict:
        """What the state holds: the inputs, and the contract every output of this release records."""
        recorded = {**inputs, "contract": CONTRACT, **changes}
        return {key: value for key, value in recorded.items() if key != "__provider" and value is not None}

    earlier_publish = state(publish_inputs, mode=None, published=True, owner="o")  # the previous release's
    earlier_supervisor = state(publish_inputs, mode=None, observe={"wait_seconds": 600, "strict": False})
    same = host.diff("vmi-x", earlier_publish, publish_inputs)
    assert same.changes is False  # an upgrade alone changes nothing
    assert host.diff("vmi-x", earlier_supervisor, supervisor_inputs).changes is False
    for olds, news in ((earlier_publish, supervisor_inputs), (state(supervisor_inputs), publish_inputs)):
        switched = host.diff("vmi-x", olds, news)
        assert (switched.changes, switched.replaces) == (True, [])  # an update in place, not a replace


def test_publish_to_supervisor_lets_go_of_the_object_and_back_writes_it_again(host, library, kube, tmp_path):
    """publish → supervisor: vmimage takes its field manager off the object it wrote (nothing of
    the object changes), says so, and never deletes it after; supervisor → publish: it writes it
    again, as an owner of its own."""
    item = ubuntu_item(host, library, tmp_path, "ubuntu-switch")
    published = host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(item, kube, mode="publish"))
    assert published.outputs["published"] is True and published.outputs["owner"]
    publish(kube, recorded(item, library))  # the cluster becomes a Supervisor: VM Operator publishes it too
    before = kube.get("clustervirtualmachineimages", published.id)
    assert f"vmimage/{published.outputs['owner']}" in managers(kube, published.id)

    since = len(host.stderr)
    switched = host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(item, kube), after=published)
    assert switched.op == "update" and (switched.outputs["published"], switched.outputs.get("owner")) == (False, None)
    said = host.wait_for_log("no longer owns", since)
    assert "supervisor mode: vmimage no longer owns this object (it stays as it is" in said
    assert "vmimage will never write or delete it" in said
    after = kube.get("clustervirtualmachineimages", published.id)
    assert not any(m.startswith("vmimage") for m in managers(kube, published.id))
    assert (after["metadata"]["labels"], after["status"]) == (before["metadata"]["labels"], before["status"])
    host.delete(switched.id, switched.outputs)  # the image leaves the catalog: the object is VM Operator's
    assert kube.get("clustervirtualmachineimages", published.id) is not None

    back = host.up(CVMI, ClusterVirtualMachineImageProvider(), image_inputs(item, kube, mode="publish"), after=switched)
    assert back.op == "update" and back.outputs["published"] is True
    assert f"vmimage/{back.outputs['owner']}" in managers(kube, published.id)


def test_a_stack_switched_to_supervisor_mode_previews_updates_and_never_deletes_vm_operators_objects(
    simulator, kube, samples, tmp_path
):
    """Through the real engine: a publish-mode stack, then `mode: supervisor` (the preview updates
    each image in place and adds the one ObservedImages; `up` lets go of the objects), then an
    image leaves the config (its object stays: VM Operator's now), then back to publish."""
    from tests.pulumi_cli import Stack
    from tests.test_engine import dev_config, items

    config = dev_config(simulator, samples)
    photon, _, tools = config["vmimage:images"]  # the two cluster images of the dev stack
    config["vmimage:images"] = [photon, tools]
    config["vmimage:kubernetes"] = {"kubeconfig": str(kube.kubeconfig)}
    stack = Stack(tmp_path / "switch", name="switch")
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    stack.up()
    published = {name: vmi_id(item["id"]) for name, item in items(stack).items()}
    assert all(any(m.startswith("vmimage/") for m in managers(kube, vmi)) for vmi in published.values())
    (library,) = stack.resources("dynamic/vmimage:ContentLibrary").values()
    associate_with_supervisor(kube, library["id"])  # the cluster is a Supervisor now, with this library
    for name, item in items(stack).items():  # and VM Operator publishes its items (the same objects)
        publish(kube, recorded_object(name, item["id"], library["id"], item["content_version"], name=name))

    config["vmimage:kubernetes"] = {**config["vmimage:kubernetes"], "mode": "supervisor", "waitSeconds": 60}
    stack.configure(config)
    steps = stack.preview_steps()
    changing = sorted(f"{op} {name.split('-')[1]}" for name, op in steps.items() if op != "same")
    assert changing == ["create vm", "update cvmi", "update cvmi"], steps  # the observer; each image in place
    shown = stack.preview().stdout
    assert len(re.findall(r'~ mode +: "publish" => "supervisor"', shown)) == 2, shown
    from vmimage.review.summary import image_changes

    summary = image_changes(json.loads(stack.run("preview", "--json").stdout))
    assert [c.what for c in summary] == [
        ["mode publish → supervisor: VM Operator publishes it; vmimage lets go of it"]
    ] * 2  # what the review comment says of each image
    up = stack.up()
    said = [line for line in up.output.splitlines() if "vmimage no longer owns this object" in line]
    assert {vmi for vmi in published.values() if any(vmi in line for line in said)} == set(published.values())
    for vmi in published.values():
        assert not any(m.startswith("vmimage") for m in managers(kube, vmi))
    stack.preview("--expect-no-changes")

    config["vmimage:images"] = [photon]
    stack.configure(config)
    stack.up()
    assert kube.get("clustervirtualmachineimages", published["tools-sample"]) is not None  # not vmimage's to delete

    config["vmimage:kubernetes"] = {**config["vmimage:kubernetes"], "mode": "publish"}
    stack.configure(config)
    steps = stack.preview_steps()
    assert sorted(f"{op} {name.split('-')[1]}" for name, op in steps.items() if op != "same") == [
        "delete vm",
        "update cvmi",
    ]
    stack.up()
    assert any(m.startswith("vmimage/") for m in managers(kube, published["photon-5-sample"]))
