"""Red-team cases for the stack's trusted certificates and policy libraries, on the simulator
through the real engine: who else could match what the stack deletes or adopts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pulumi_cli import Stack
from tests.test_providers import PASSWORD, direct_client
from tests.test_security_policy import CERTIFICATE, certificate, trust_store

pytestmark = pytest.mark.vcsim


def trust_config(simulator, certificates: list[Path]) -> dict:
    return {
        "vsphere:vsphereServer": simulator.server,
        "vsphere:user": "user",
        "vsphere:caFile": str(simulator.ca_file),
        "vmimage:deletionProtection": "false",
        "vmimage:trustedCertificates": [str(path) for path in certificates],
    }


def test_a_refresh_never_takes_an_administrators_entry_for_the_one_the_stack_added(simulator, tmp_path):
    """The stack added its certificate; an administrator trusted the same certificate again (another
    entry) and removed the stack's entry. A refresh must not record the administrator's entry as
    the stack's own: destroy would delete it."""
    ours = certificate(tmp_path / "ca.pem", "refresh CA")
    stack = Stack(tmp_path / "refresh", name="refresh")
    stack.configure(trust_config(simulator, [ours]), secrets={"vsphere:password": PASSWORD})
    stack.up()
    (resource,) = stack.resources(CERTIFICATE).values()
    assert resource["outputs"]["adopted"] is False
    with direct_client(simulator) as client:
        client.add_trusted_certificate(ours.read_text().replace("\n", "\r\n"))
        client.delete_trusted_certificate(resource["id"])
    admins = trust_store(simulator)
    assert len(admins) == 1 and resource["id"] not in admins
    stack.refresh()
    assert stack.resources(CERTIFICATE) == {}  # the stack's entry is gone: no longer in the state
    stack.up()
    (adopted,) = stack.resources(CERTIFICATE).values()
    assert (adopted["id"], adopted["outputs"]["adopted"]) == (next(iter(admins)), True)
    stack.destroy()
    assert trust_store(simulator) == admins


def test_an_item_of_a_policy_library_that_vcenter_says_nothing_of_is_not_compliant():
    """vCenter's security_compliance absent (or not a boolean) on an OVF item of a policy library is no
    answer: VM Operator reads the missing field as not compliant, so the prediction must not say Ready.
    Outside a policy library, and for an ISO, the absent field changes nothing."""
    from providers.library_item import _image
    from tests.test_fidelity import RECORDS
    from vmimage.vsphere.content_library import ItemInfo

    descriptor = (RECORDS / "photon-ova.ovf").read_bytes()
    for body in ({}, {"security_compliance": None}, {"security_compliance": "true"}):
        item = ItemInfo.parse({"id": "i-1", "library_id": "l-1", "name": "photon", "type": "ovf", **body})
        assert item.security_compliance is None
        (condition,) = _image(descriptor, "photon.ovf", item, "1", policy=True)["conditions"]
        assert (condition["status"], condition["reason"]) == (
            "False",
            "VirtualMachineImageProviderSecurityNotCompliant",
        )
        assert _image(descriptor, "photon.ovf", item, "1", policy=False)["conditions"][0]["status"] == "True"
    iso = ItemInfo.parse({"id": "i-2", "library_id": "l-1", "name": "tools", "type": "iso"})
    assert _image(None, "tools.iso", iso, "1", policy=True)["conditions"][0]["status"] == "True"


def test_a_certificate_file_rewritten_in_place_deletes_the_old_certificate_only_when_allowed(simulator, tmp_path):
    """The same path, another certificate: the old one (the stack's) is a deletion the guard refuses
    in the preview, and `up` before it changes anything, until allowDelete names the file."""
    path = certificate(tmp_path / "ca.pem", "rotated CA")
    stack = Stack(tmp_path / "rotate", name="rotate")
    config = {**trust_config(simulator, [path]), "vmimage:deletionProtection": "true"}
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    stack.up()
    (old,) = stack.resources(CERTIFICATE).values()
    before = trust_store(simulator)
    certificate(path, "rotated CA")  # rotated: a new key, the same file
    preview = stack.preview(check=False)  # the guard says it in the review, as of an item
    assert preview.returncode != 0 and "Traceback" not in preview.output
    assert str(path) in preview.output and "trusted certificate" in preview.output, preview.output
    refused = stack.up(check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.output
    assert str(path) in refused.output, refused.output
    assert trust_store(simulator) == before  # refused before anything changed: the new one is not added either
    stack.configure({**config, "vmimage:allowDelete": [str(path)]})
    stack.up()
    (new,) = stack.resources(CERTIFICATE).values()
    assert set(trust_store(simulator)) >= {new["id"]} and old["id"] not in trust_store(simulator)
    stack.configure({**config, "vmimage:deletionProtection": "false"})
    stack.up()  # the destroy guard lets go
    stack.destroy()
    assert new["id"] not in trust_store(simulator)


def test_an_unchecked_policy_name_never_makes_an_unpoliced_library_and_a_removal_is_previewed(
    simulator, samples, tmp_path
):
    """Offline, the preview cannot resolve the policy's name: `up` (online) must fail before creating the
    library (never a library without the policy the config asks for). Taking the policy off a library
    that has it is previewed for its items, and `up` reads back what vCenter did."""
    ova = samples / "ubuntu-24.04-sample.ova"
    stack = Stack(tmp_path / "offline", name="offline", env={"VMIMAGE_OFFLINE": "1"})
    config = trust_config(simulator, [])
    del config["vmimage:trustedCertificates"]
    config["vmimage:libraries"] = [{"name": "typo-policy", "datastore": "LocalDS_0", "securityPolicy": "Strict OVF"}]
    config["vmimage:images"] = [{"displayName": "ubuntu", "source": str(ova), "library": "typo-policy"}]
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    preview = stack.preview()
    assert "'ubuntu': NotReady: not security compliant (unsigned)" in preview.output
    del stack.env["VMIMAGE_OFFLINE"]  # `up` refuses it
    failed = stack.up(check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.output
    assert "securityPolicy 'Strict OVF'" in failed.output, failed.output
    assert "has no security policy of this name" in failed.output
    with direct_client(simulator) as client:
        assert client.find_libraries("typo-policy") == []  # nothing created without its policy

    config["vmimage:libraries"][0]["securityPolicy"] = "ovf-strict"
    stack.configure(config)
    stack.up()
    (library,) = stack.resources("dynamic/vmimage:ContentLibrary").values()
    assert library["outputs"]["security_policy_id"]
    del config["vmimage:libraries"][0]["securityPolicy"]
    stack.configure(config)
    preview = stack.preview()
    assert "security policy 'OVF default policy' removed" in preview.output
    refused = stack.up(check=False)
    assert refused.returncode != 0 and "Traceback" not in refused.output
    assert "did not apply no security policy" in refused.output, refused.output
    stack.destroy()


def test_a_policy_taken_off_by_hand_is_a_change_that_up_applies_again(host):
    """A refresh that reads the library without its policy (taken off in the vSphere Client; the
    simulator cannot do it) leaves outputs without security_policy_id while the config still asks
    for the policy: the diff must be a change, warned, and the update applies it and reads it back
    (the simulator's library has the policy still: nothing to change, nothing refused)."""
    from providers.content_library import ContentLibraryProvider
    from tests.test_providers import LIBRARY

    inputs = {"name": "kept-policy", "datastore": "LocalDS_0", "security_policy": "OVF default policy"}
    created = host.up(LIBRARY, ContentLibraryProvider(), inputs)
    policy_id = created.outputs["security_policy_id"]
    assert policy_id
    as_refreshed = {k: v for k, v in created.outputs.items() if k != "security_policy_id"}
    checked = host.check(LIBRARY, ContentLibraryProvider(), created.inputs, inputs)
    since = len(host.stderr)
    assert host.diff(created.id, created.outputs, checked.inputs).changes is False  # nothing lost: no change
    assert host.diff(created.id, as_refreshed, checked.inputs).changes is True
    assert "without its security policy 'OVF default policy'" in host.wait_for_log("without its", since)
    assert host.update(created.id, as_refreshed, checked.inputs)["security_policy_id"] == policy_id
    host.delete(created.id, created.outputs)


def test_a_trust_store_answer_that_cannot_be_read_is_an_error_not_an_empty_store():
    """An answer of another shape must not read as "vCenter trusts nothing": delete would take the
    stack's entry for gone (and drop it from the state), create would add the certificate again."""
    from types import SimpleNamespace

    from vmimage.vsphere.content_library import ContentLibraryClient
    from vmimage.vsphere.rest import VSphereError

    def client(answer):
        settings = SimpleNamespace(server="vc.example")
        return ContentLibraryClient(SimpleNamespace(settings=settings, call=lambda call: answer))

    for answer in ({"certificates": "abc"}, {"certificates": ["id-1"]}, "abc", {"certificates": {"id": "x"}}):
        with pytest.raises(VSphereError) as caught:
            client(answer).trusted_certificates()
        assert "vc.example" in str(caught.value) and "not a list of entries" in str(caught.value)
    for empty in (None, {}, {"certificates": None}, {"certificates": []}, []):
        assert client(empty).trusted_certificates() == []
    listed = client({"certificates": [{"certificate": "id-1", "cert_text": "PEM"}]}).trusted_certificates()
    assert [(e.id, e.text) for e in listed] == [("id-1", "PEM")]


def test_the_same_certificate_trusted_again_by_hand_stays_when_the_stack_lets_go_of_its_own(simulator, tmp_path):
    """After the stack added its certificate, an administrator trusts it again (vCenter keeps a second
    entry of the same certificate, written otherwise): destroy deletes the stack's entry only."""
    ours = certificate(tmp_path / "ca.pem", "twice trusted CA")
    before = trust_store(simulator)  # what the module's other tests left
    stack = Stack(tmp_path / "twice", name="twice")
    stack.configure(trust_config(simulator, [ours]), secrets={"vsphere:password": PASSWORD})
    stack.up()
    (resource,) = stack.resources(CERTIFICATE).values()
    with direct_client(simulator) as client:
        client.add_trusted_certificate("# ours too\n" + ours.read_text().replace("\n", "\r\n"))
    admins = {k: v for k, v in trust_store(simulator).items() if k != resource["id"] and k not in before}
    assert list(admins.values()) == [resource["outputs"]["sha256"]]
    stack.destroy()
    assert trust_store(simulator) == before | admins


def test_a_policy_name_in_a_vcenter_without_policies_is_an_error_naming_none():
    """A vCenter that lists no security policy cannot create a policy library: an error, never a
    library without one."""
    from types import SimpleNamespace

    from providers.content_library import resolve_policy
    from vmimage.errors import ImageError

    client = SimpleNamespace(security_policies=list, session=SimpleNamespace(settings=SimpleNamespace(server="vc")))
    with pytest.raises(ImageError) as caught:
        resolve_policy(client, "OVF default policy")
    assert "vCenter vc has no security policy of this name (it has: none)" in str(caught.value)


def test_a_certificate_two_stacks_list_is_trusted_again_by_the_one_left(simulator, tmp_path):
    """Stack a added the certificate and stack b adopted it; a's destroy deletes it (vCenter records no
    owner). b's next preview asks vCenter, says it is no longer trusted, and its `up` trusts it again,
    as b's own now: b's destroy then deletes it, and vCenter is left as it was."""
    shared = certificate(tmp_path / "shared-ca.pem", "shared CA")
    before = trust_store(simulator)
    a, b = Stack(tmp_path / "a", name="a"), Stack(tmp_path / "b", name="b")
    for stack in (a, b):
        stack.configure(trust_config(simulator, [shared]), secrets={"vsphere:password": PASSWORD})
        stack.up()
    ((added,), (adopted,)) = (list(s.resources(CERTIFICATE).values()) for s in (a, b))
    assert (added["outputs"]["adopted"], adopted["outputs"]["adopted"]) == (False, True)
    b.preview("--expect-no-changes")  # vCenter still trusts it: nothing to do
    a.destroy()
    assert trust_store(simulator) == before  # gone from under b
    preview = b.preview()
    assert "vCenter no longer trusts it" in preview.output and "`up` trusts it again" in preview.output
    b.up()
    (again,) = b.resources(CERTIFICATE).values()
    assert again["outputs"]["adopted"] is False and again["id"] in trust_store(simulator)
    b.preview("--expect-no-changes")
    b.destroy()
    assert trust_store(simulator) == before
