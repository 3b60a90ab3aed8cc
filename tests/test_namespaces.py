"""Supervisor namespaces' content libraries (providers/namespace_libraries.py) on the simulator's
`/api/vcenter/namespaces/instances`: the stack's libraries go in, everything else stays."""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import pytest

from providers.content_library import ContentLibraryProvider
from providers.namespace_libraries import NamespaceLibrariesProvider
from tests.engine import provider_host
from tests.proxy import fault_proxy
from tests.test_providers import LIBRARY, PASSWORD, vsphere_config
from vmimage.vsphere.namespaces import NamespacesClient
from vmimage.vsphere.rest import Call, VapiSession
from vmimage.vsphere.settings import resolve_settings

pytestmark = pytest.mark.vcsim
NAMESPACE_LIBRARIES = "pulumi-python:dynamic/vmimage:NamespaceLibraries"


@pytest.fixture(scope="module")
def namespaces(vcsim):
    """A client of the test's own: what the Supervisor's admin does in Workload Management."""
    with VapiSession(resolve_settings({**vsphere_config(vcsim), "vsphere:password": PASSWORD}, {})) as session:
        yield NamespacesClient(session)


def create_namespace(client: NamespacesClient, name: str, libraries: list[str]) -> None:
    spec = {"vm_classes": ["best-effort-small"], "content_libraries": libraries}
    body = {"cluster": "domain-c1", "namespace": name, "vm_service_spec": spec}
    client.session.call(
        Call("POST", "/vcenter/namespaces/instances", "/vcenter/namespaces/instances", body, body, api_only=True)
    )


def test_the_stacks_libraries_are_added_and_only_they_are_removed(host, namespaces):
    libraries = [
        host.up(LIBRARY, ContentLibraryProvider(), {"name": f"ns-lib-{n}", "datastore": "LocalDS_0"}).id for n in (1, 2)
    ]
    create_namespace(namespaces, "team-a", ["hand-made"])
    created = host.up(
        NAMESPACE_LIBRARIES, NamespaceLibrariesProvider(), {"namespace": "team-a", "library_ids": [libraries[0]]}
    )
    assert created.op == "create" and created.outputs["added"] == [libraries[0]]
    assert namespaces.libraries("team-a") == ["hand-made", libraries[0]]
    both = host.up(
        NAMESPACE_LIBRARIES,
        NamespaceLibrariesProvider(),
        {"namespace": "team-a", "library_ids": libraries},
        after=created,
    )
    assert both.op == "update" and sorted(both.outputs["added"]) == sorted(libraries)
    spec = namespaces.require("team-a")["vm_service_spec"]
    namespaces.set_libraries("team-a", [*spec["content_libraries"], "added-by-hand-later"])
    second_only = host.up(
        NAMESPACE_LIBRARIES,
        NamespaceLibrariesProvider(),
        {"namespace": "team-a", "library_ids": [libraries[1]]},
        after=both,
    )
    assert second_only.op == "update" and second_only.outputs["added"] == [libraries[1]]
    assert namespaces.libraries("team-a") == ["hand-made", libraries[1], "added-by-hand-later"]
    host.delete(second_only.id, second_only.outputs)
    after = namespaces.require("team-a")["vm_service_spec"]
    assert after == {"content_libraries": ["hand-made", "added-by-hand-later"], "vm_classes": ["best-effort-small"]}


def test_a_library_that_was_there_before_is_not_the_stacks_to_remove(host, namespaces):
    create_namespace(namespaces, "team-b", ["shared-lib"])
    created = host.up(
        NAMESPACE_LIBRARIES, NamespaceLibrariesProvider(), {"namespace": "team-b", "library_ids": ["shared-lib"]}
    )
    assert (created.outputs["library_ids"], created.outputs["added"]) == (["shared-lib"], [])
    host.delete(created.id, created.outputs)
    assert namespaces.libraries("team-b") == ["shared-lib"]


def test_refresh_sees_a_library_removed_by_hand_and_the_next_up_adds_it_again(host, namespaces):
    create_namespace(namespaces, "team-c", [])
    created = host.up(
        NAMESPACE_LIBRARIES, NamespaceLibrariesProvider(), {"namespace": "team-c", "library_ids": ["lib-x"]}
    )
    namespaces.set_libraries("team-c", [])
    _, outputs, inputs = host.read(created.id, created.outputs, created.inputs)
    assert outputs["library_ids"] == [] and inputs["library_ids"] == []
    again = host.up(
        NAMESPACE_LIBRARIES, NamespaceLibrariesProvider(), {"namespace": "team-c", "library_ids": ["lib-x"]},
        state={**outputs, "__id": created.id}, old_inputs=inputs,
    )  # fmt: skip
    assert again.op == "update" and namespaces.libraries("team-c") == ["lib-x"]


def test_a_namespace_vcenter_does_not_have_is_a_clear_error(host):
    with pytest.raises(grpc.RpcError) as caught:
        host.up(NAMESPACE_LIBRARIES, NamespaceLibrariesProvider(), {"namespace": "no-such-ns", "library_ids": ["x"]})
    assert (
        "namespace 'no-such-ns'" in caught.value.details() and "has no Supervisor namespace" in caught.value.details()
    )
    assert "Traceback" not in caught.value.details()


@pytest.fixture(scope="module")
def proxied(vcsim):
    """A provider host that reaches the simulator through a fault proxy (tests/proxy.py)."""
    key = vcsim.ca_file.with_name("key.pem")
    with (
        fault_proxy(vcsim.server, vcsim.ca_file, key) as proxy,
        provider_host(vsphere_config(vcsim, server=proxy.server)) as started,
    ):
        yield started, proxy


def instance(namespace: str) -> str:
    return f"/api/vcenter/namespaces/instances/{namespace}"


@pytest.mark.parametrize("nth", [1, 2, 3, 4])
def test_a_library_an_administrator_associates_during_a_create_survives(proxied, namespaces, nth):
    """The Supervisor's admin associates a library of their own just before the provider's
    ``nth`` read of the namespace: before its first read, between two of its reads (where a
    write computed from one read and sent with another's spec dropped it), or after its write."""
    host, proxy = proxied
    namespace = f"admin-race-{nth}"
    create_namespace(namespaces, namespace, ["by-hand"])
    reads: list[str] = []

    def admin_meanwhile(method: str, path: str) -> None:
        if method == "GET" and path == instance(namespace):
            reads.append(path)
            if len(reads) == nth:
                namespaces.set_libraries(namespace, [*namespaces.libraries(namespace), "admin-lib"])

    proxy.before = admin_meanwhile
    try:
        created = host.up(
            NAMESPACE_LIBRARIES, NamespaceLibrariesProvider(), {"namespace": namespace, "library_ids": ["stack-lib"]}
        )
    finally:
        proxy.before = None
    assert len(reads) >= nth  # the admin's change did land during the create
    assert sorted(namespaces.libraries(namespace)) == ["admin-lib", "by-hand", "stack-lib"]
    assert created.outputs["added"] == ["stack-lib"]


def test_two_stacks_that_want_one_library_keep_it_until_the_last_lets_go(host, namespaces):
    """Stack A associates library L; stack B wants it too (and the admin's by-hand library).
    A's delete leaves both for B; B's delete takes L out (a declaration associated it and none
    wants it any more) and leaves the admin's library."""
    create_namespace(namespaces, "shared-ns", ["by-hand"])
    provider = NamespaceLibrariesProvider()
    a = host.up(NAMESPACE_LIBRARIES, provider, {"namespace": "shared-ns", "library_ids": ["lib-l"]})
    b = host.up(NAMESPACE_LIBRARIES, provider, {"namespace": "shared-ns", "library_ids": ["by-hand", "lib-l"]})
    assert (a.outputs["added"], b.outputs["added"]) == (["lib-l"], [])
    assert a.outputs["owner"] != b.outputs["owner"]
    owners = namespaces.owners
    assert owners.wanted_by_others("shared-ns", "lib-l", None) == sorted([a.outputs["owner"], b.outputs["owner"]])
    host.delete(a.id, a.outputs)
    assert namespaces.libraries("shared-ns") == ["by-hand", "lib-l"]  # B still wants it
    assert owners.wanted_by_others("shared-ns", "lib-l", None) == [b.outputs["owner"]]
    host.delete(b.id, b.outputs)
    assert namespaces.libraries("shared-ns") == ["by-hand"]
    assert owners.wanted_by_others("shared-ns", "lib-l", None) == [] and not owners.added("shared-ns", "lib-l")


def test_a_library_associated_by_hand_in_a_namespace_made_anew_stays_when_the_last_stack_lets_go(host, namespaces):
    """Stack A associated library L, then let go of it while the namespace was gone (deleted, and
    its associations with it). The namespace is made anew and its administrator associates L by
    hand; stack B wants L too. The mark "a declaration associated L" that A left is no longer true:
    B's delete used to read it and take the administrator's library out."""
    create_namespace(namespaces, "made-anew", [])
    provider = NamespaceLibrariesProvider()
    a = host.up(NAMESPACE_LIBRARIES, provider, {"namespace": "made-anew", "library_ids": ["lib-l"]})
    assert a.outputs["added"] == ["lib-l"]
    where = "/vcenter/namespaces/instances/made-anew"
    namespaces.session.call(Call("DELETE", where, where, api_only=True))
    host.delete(a.id, a.outputs)  # vCenter has no such namespace: nothing to take out
    create_namespace(namespaces, "made-anew", ["lib-l"])  # by hand
    b = host.up(NAMESPACE_LIBRARIES, provider, {"namespace": "made-anew", "library_ids": ["lib-l"]})
    assert b.outputs["added"] == [] and not namespaces.owners.added("made-anew", "lib-l")
    host.delete(b.id, b.outputs)
    assert namespaces.libraries("made-anew") == ["lib-l"]
    # and through an update: C wants another library first, then L as well
    c = host.up(NAMESPACE_LIBRARIES, provider, {"namespace": "made-anew", "library_ids": ["lib-m"]})
    namespaces.owners.mark_added("made-anew", ["lib-l"])  # the same stale mark
    both = host.up(
        NAMESPACE_LIBRARIES, provider, {"namespace": "made-anew", "library_ids": ["lib-l", "lib-m"]}, after=c
    )
    assert both.op == "update" and not namespaces.owners.added("made-anew", "lib-l")
    host.delete(both.id, both.outputs)
    assert namespaces.libraries("made-anew") == ["lib-l"]


def test_a_library_another_stack_claims_while_one_lets_go_of_it_is_put_back(proxied, namespaces):
    """Stack B claims library L in the moment between stack A's check that nobody else wants
    it and A's write that takes it out: A associates it again, for B."""
    host, proxy = proxied
    create_namespace(namespaces, "claim-race", [])
    provider = NamespaceLibrariesProvider()
    a = host.up(NAMESPACE_LIBRARIES, provider, {"namespace": "claim-race", "library_ids": ["lib-l"]})
    claimed: list[str] = []

    def b_claims(method: str, path: str) -> None:
        if method == "PATCH" and path == instance("claim-race") and not claimed:
            claimed.append(namespaces.owners.claim("claim-race", "stack-b", ["lib-l"]))

    proxy.before = b_claims
    try:
        host.delete(a.id, a.outputs)
    finally:
        proxy.before = None
    assert claimed and namespaces.libraries("claim-race") == ["lib-l"]
    assert host.wait_for_log("associated again")
    assert namespaces.owners.added("claim-race", "lib-l")  # still a declaration's, to take out when B lets go


def test_an_earlier_releases_state_gets_an_owner_in_place_and_keeps_what_it_added(host, namespaces):
    """A state written before owners were recorded (``added`` only): the next `up` updates it in
    place, recording its claim and that it associated its library, which then stays while
    another stack wants it and goes when the last one lets go."""
    create_namespace(namespaces, "legacy-ns", ["by-hand", "lib-old"])  # lib-old: what the old release added
    legacy = {
        "namespace": "legacy-ns",
        "library_ids": ["by-hand", "lib-old"],
        "added": ["lib-old"],
        "__id": "legacy-ns",
    }
    inputs = {"namespace": "legacy-ns", "library_ids": ["by-hand", "lib-old"]}
    provider = NamespaceLibrariesProvider()
    a = host.up(NAMESPACE_LIBRARIES, provider, inputs, state=legacy, old_inputs=inputs)
    assert a.op == "update" and not a.diff.replaces and a.outputs["owner"]
    assert a.outputs["added"] == ["lib-old"] and namespaces.owners.added("legacy-ns", "lib-old")
    assert not namespaces.owners.added("legacy-ns", "by-hand")
    assert host.up(NAMESPACE_LIBRARIES, provider, inputs, after=a).op == "same"
    b = host.up(NAMESPACE_LIBRARIES, provider, {"namespace": "legacy-ns", "library_ids": ["lib-old"]})
    host.delete(a.id, a.outputs)
    assert namespaces.libraries("legacy-ns") == ["by-hand", "lib-old"]
    host.delete(b.id, b.outputs)
    assert namespaces.libraries("legacy-ns") == ["by-hand"]


def test_an_earlier_releases_state_deleted_as_it_is_leaves_what_another_stack_wants(host, namespaces):
    create_namespace(namespaces, "legacy-del", ["lib-old"])
    legacy = {"namespace": "legacy-del", "library_ids": ["lib-old"], "added": ["lib-old"]}
    b = host.up(
        NAMESPACE_LIBRARIES, NamespaceLibrariesProvider(), {"namespace": "legacy-del", "library_ids": ["lib-old"]}
    )
    legacy["__provider"] = b.inputs["__provider"]  # the pickled provider, as every state has it
    host.delete("legacy-del", legacy)
    assert namespaces.libraries("legacy-del") == ["lib-old"]
    host.delete(b.id, b.outputs)  # it did not associate it, and nothing says a declaration did: it stays
    assert namespaces.libraries("legacy-del") == ["lib-old"]
    host.delete("legacy-del", legacy)  # the old state alone: what it added goes, as before
    assert namespaces.libraries("legacy-del") == []


def test_only_vcenters_not_found_for_the_namespace_means_it_is_gone(proxied, namespaces):
    """A 404 of a path vCenter does not serve (no Workload Management, a service restarting
    behind its reverse proxy), or a not-found for a namespace vCenter still lists, fails the
    refresh and the delete and changes nothing; vCenter's own not-found of a namespace it no
    longer lists drops the resource, and the delete lets go of the declaration's tag."""
    host, proxy = proxied
    create_namespace(namespaces, "flaky-ns", [])
    created = host.up(
        NAMESPACE_LIBRARIES, NamespaceLibrariesProvider(), {"namespace": "flaky-ns", "library_ids": ["lib-f"]}
    )
    not_found = {"error_type": "NOT_FOUND", "messages": []}
    for answer, said in [
        (404, "not vCenter's answer for a missing namespace"),
        ((404, not_found), "yet vCenter lists namespace 'flaky-ns'"),
    ]:
        proxy.answer[instance("flaky-ns")] = answer
        try:
            for call in (
                lambda: host.read(created.id, created.outputs, created.inputs),
                lambda: host.delete(created.id, created.outputs),
            ):
                with pytest.raises(grpc.RpcError) as caught:
                    call()
                assert said in caught.value.details() and "Traceback" not in caught.value.details()
        finally:
            del proxy.answer[instance("flaky-ns")]
    assert namespaces.libraries("flaky-ns") == ["lib-f"]
    assert namespaces.owners.wanted_by_others("flaky-ns", "lib-f", None) == [created.outputs["owner"]]
    namespaces.session.call(Call("DELETE", instance("flaky-ns")[4:], instance("flaky-ns")[4:], api_only=True))
    gone_id, outputs, _ = host.read(created.id, created.outputs, created.inputs)
    assert gone_id == "" and set(outputs) <= {"__provider"}  # dropped from the state
    host.delete(created.id, created.outputs)
    assert namespaces.owners.wanted_by_others("flaky-ns", "lib-f", None) == []


def test_a_supervisor_mode_stack_associates_its_libraries_and_holds_vm_operator_to_the_preview(
    simulator, kube, samples, tmp_path
):
    """A stack in supervisor mode through the real engine: its library goes to the `dev`
    namespace (next to a library associated by hand, which stays), its cluster image goes to a
    library the Supervisor's admin associated beforehand, the preview predicts the objects, `up`
    waits for VM Operator's (played back from its records as the association happens) and finds
    them as predicted, and vmimage writes no object; destroy takes back only what the stack added."""
    import threading

    from tests.pulumi_cli import Stack
    from tests.test_engine import dev_config
    from tests.test_providers import direct_client
    from tests.vm_operator_playback import associate_with_supervisor, publish, recorded_object, up_while
    from vmimage.vsphere.descriptors import content_version
    from vmimage.vsphere.inventory import find_datastore_id

    settings = resolve_settings({**vsphere_config(simulator), "vsphere:password": PASSWORD}, {})
    with direct_client(simulator) as vcenter:  # the admin's library for cluster images, associated
        associate_with_supervisor(
            kube, vcenter.create_library("cluster-images", find_datastore_id(settings, "LocalDS_0"))
        )
    with VapiSession(settings) as session:
        client = NamespacesClient(session)
        create_namespace(client, "dev", ["by-hand"])
        config = dev_config(simulator, samples)
        by_name = {image["displayName"]: image for image in config["vmimage:images"]}
        config["vmimage:libraries"] = [*config["vmimage:libraries"], {"name": "cluster-images", "existing": True}]
        config["vmimage:images"] = [
            {**by_name["ubuntu-24.04-sample"], "library": "cluster-images", "scope": "cluster", "capabilities": []},
            {**by_name["tools-sample"], "scope": ["dev"]},
        ]
        config["vmimage:kubernetes"] = {"kubeconfig": str(kube.kubeconfig), "mode": "supervisor", "waitSeconds": 120}
        stack = Stack(tmp_path / "supervisor", name="supervisor")
        stack.configure(config, secrets={"vsphere:password": PASSWORD})
        preview = stack.preview()
        assert "NamespaceLibraries" in preview.stdout and "ClusterVirtualMachineImage" in preview.stdout
        events = tmp_path / "preview.json"  # what a pull request's comment says of it, in image terms
        events.write_text(stack.run("preview", "--json").stdout)
        summary = subprocess.run(
            [sys.executable, "-m", "vmimage", "preview-summary", str(events)], capture_output=True, text=True
        )
        assert summary.returncode == 0, summary.stderr
        assert "**2 added**" in summary.stdout and "tools-sample" in summary.stdout

        published = set()

        # VM Operator: an object per item, once its library reaches the scope
        def supervisor(stop: threading.Event) -> None:
            with direct_client(simulator) as vcenter:
                while not stop.wait(0.3):
                    for library_id in vcenter.find_libraries("dev-images") + vcenter.find_libraries("cluster-images"):
                        for item_id in vcenter.list_items(library_id):
                            item = vcenter.get_item(item_id)
                            version = content_version(vcenter, item)
                            if item.name == "ubuntu-24.04-sample" and item_id not in published:
                                publish(kube, recorded_object(item.name, item_id, library_id, version))
                                published.add(item_id)
                            elif (
                                item.name == "tools-sample"
                                and item_id not in published
                                and library_id in client.libraries("dev")
                            ):
                                publish(kube, recorded_object(item.name, item_id, library_id, version, "dev"))
                                published.add(item_id)

        up = up_while(stack, supervisor)
        assert "differs from the prediction" not in up.output, up.output
        (library,) = stack.resources("dynamic/vmimage:ContentLibrary").values()
        assert client.libraries("dev") == ["by-hand", library["id"]]
        predicted = {p["vmi_id"] for placements in stack.outputs()["images"].values() for p in placements}
        listed = json.loads(kube.kubectl("get", "vmi,cvmi", "-A", "-o", "json", "--show-managed-fields").stdout)
        ours = [o for o in listed["items"] if o["metadata"]["name"] in predicted]
        assert len(ours) == 2 == len(predicted)
        for obj in ours:  # VM Operator's, and only VM Operator's
            assert {e["manager"] for e in obj["metadata"]["managedFields"]} == {"vm-operator"}
        stack.preview("--expect-no-changes")
        stack.destroy()
        assert client.libraries("dev") == ["by-hand"]
