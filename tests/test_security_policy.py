"""Libraries with vCenter's OVF security policy and the stack's trusted certificates, through the
real engine on the simulator and a real API server.

What vmimage publishes and predicts is held to VM Operator's own record of an unsigned item in a
policy library (tests/fixtures/vm-operator/security-policy), with the item's UUID, library and
name substituted. VM Operator stops before the descriptor of an item that is not compliant, so its
object is the same for any OVF package: the package here is the dev stack's unsigned ubuntu sample
(the recorded photon-ova package itself cannot be uploaded: its 4 KiB disk member is not the size
its descriptor declares, which the preview refuses). The simulator never verifies a signature: it
marks every item of a policy library not compliant (NOT_AVAILABLE), the side these records show.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.pulumi_cli import Stack
from tests.test_fidelity import PLACEHOLDER_TIME, RECORDS
from tests.test_providers import PASSWORD, direct_client, vsphere_config
from tests.tls import self_signed
from tests.vm_operator_playback import publish, recorded_object, up_while
from vmimage.contract.ids import vmi_id
from vmimage.contract.verify import observed
from vmimage.descriptor.trust import pem_fingerprint
from vmimage.review.facts import NOT_COMPLIANT_READY

pytestmark = pytest.mark.vcsim
PACKAGE = json.loads((RECORDS / "security-policy" / "photon-ova.package.json").read_text())
CLUSTER_NAME = PACKAGE["cluster"]["simulator_item"]["name"]  # photon-ova-cluster
NAMESPACED_NAME = PACKAGE["namespaced"]["simulator_item"]["name"]  # photon-ova-namespaced, in team-a
CERTIFICATE = "dynamic/vmimage:TrustedCertificate"


def certificate(path: Path, common_name: str, before: str = "") -> Path:
    """A self-signed signing CA, as PEM (with ``before``: explanatory text ahead of it, as bundles have)."""
    _, cert = self_signed(common_name, days=30, hosts=False)
    path.write_text(before + cert.public_bytes(serialization.Encoding.PEM).decode())
    return path


def trust_store(simulator) -> dict[str, str]:
    """vCenter's trusted certificates: entry id → fingerprint."""
    with direct_client(simulator) as client:
        return {entry.id: str(pem_fingerprint(entry.text)) for entry in client.trusted_certificates()}


def as_recorded(live: dict) -> dict:
    """An object read from the cluster, normalised as the recorder normalised VM Operator's."""
    obj = observed(live)
    for condition in obj.get("status", {}).get("conditions") or []:
        condition["lastTransitionTime"] = PLACEHOLDER_TIME
    return obj


def record(item: dict, library_id: str, namespace: str | None = None) -> dict:
    """VM Operator's record for this item (its UUID, library and name substituted), normalised."""
    obj = recorded_object(
        "photon-ova", item["id"], library_id, item["content_version"], namespace, item["name"], security_policy=True
    )
    return as_recorded(obj)


def policy_config(simulator, ova: Path, library: str, certificates: list[Path], kube, **kubernetes) -> dict:
    return {
        "vsphere:vsphereServer": simulator.server,
        "vsphere:user": "user",
        "vsphere:caFile": str(simulator.ca_file),
        "vmimage:libraries": [{"name": library, "datastore": "LocalDS_0", "securityPolicy": "ovf-strict"}],
        "vmimage:trustedCertificates": [str(path) for path in certificates],
        "vmimage:kubernetes": {"kubeconfig": str(kube.kubeconfig), **kubernetes},
    }


def stack_items(stack: Stack) -> dict[str, dict]:
    return {
        r["outputs"]["name"]: {**r["outputs"], "id": r["id"]}
        for r in stack.resources("dynamic/vmimage:ContentLibraryItem").values()
    }


@pytest.fixture(scope="module")
def ova(samples) -> Path:
    return samples / "ubuntu-24.04-sample.ova"


def test_a_policy_library_publishes_an_unsigned_image_as_vm_operator_does_and_destroy_keeps_others_certificates(
    simulator, kube, ova, tmp_path
):
    """Publish mode: the library is created with vCenter's OVF default policy and the certificates are
    trusted (both visible on vCenter's APIs); the unsigned package is predicted and published NotReady,
    equal to VM Operator's record field for field. vCenter already trusted one of the stack's
    certificates (the administrator's, written in another PEM form in the stack's file): adopted,
    and left by destroy; another one the administrator trusted has the same subject as the stack's
    own but another key: no match, so the stack adds its own, and destroy removes that one only."""
    ours = certificate(tmp_path / "signer.pem", "vmimage test signer")
    admins = certificate(tmp_path / "platform-ca.pem", "platform signing CA")
    lookalike = certificate(tmp_path / "lookalike.pem", "vmimage test signer")  # same subject, another key
    listed = tmp_path / "platform-ca-bundle.pem"  # the administrator's certificate, as the stack's file has it
    listed.write_text("# the platform's signing CA, as vCenter trusts it\n" + admins.read_text().replace("\n", "\r\n"))
    with direct_client(simulator) as client:
        client.add_trusted_certificate(admins.read_text())
        client.add_trusted_certificate(lookalike.read_text())
        policies = {p.name: p.id for p in client.security_policies()}
    before = trust_store(simulator)
    assert pem_fingerprint(listed.read_text()) == pem_fingerprint(admins.read_text()) in before.values()

    stack = Stack(tmp_path / "publish", name="policy")
    config = policy_config(simulator, ova, "signed-only", [ours, listed], kube)
    config["vmimage:images"] = [
        {"displayName": CLUSTER_NAME, "source": str(ova), "library": "signed-only", "scope": "cluster"},
        {"displayName": NAMESPACED_NAME, "source": str(ova), "library": "signed-only", "scope": ["team-a"]},
    ]
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    preview = stack.preview()
    assert f"'{CLUSTER_NAME}': NotReady: not security compliant (unsigned)" in preview.output
    events = tmp_path / "preview.json"
    events.write_text(stack.run("preview", "--json").stdout)
    summary = subprocess.run(
        [sys.executable, "-m", "vmimage", "preview-summary", str(events)], capture_output=True, text=True
    )
    assert summary.returncode == 0, summary.stderr
    assert "NotReady: not security compliant (unsigned)" in summary.stdout
    becomes = {
        r["inputs"]["name"]: r["inputs"]["becomes"]
        for r in json.loads(events.read_text())["steps"]
        for r in [r.get("newState") or {}]
        if r.get("type", "").endswith("ContentLibraryItem")
    }
    assert becomes[CLUSTER_NAME]["signature"] == {"status": "unsigned", "signer": None, "trusted": False}
    assert becomes[CLUSTER_NAME]["ready"] == NOT_COMPLIANT_READY

    up = stack.up()
    (library,) = stack.resources("dynamic/vmimage:ContentLibrary").values()
    with direct_client(simulator) as client:
        assert client.get_library(library["id"]).security_policy_id == policies["OVF default policy"]
    store = trust_store(simulator)
    certificates = {r["outputs"]["subject"]: r for r in stack.resources(CERTIFICATE).values()}
    assert certificates["CN=vmimage test signer"]["outputs"]["adopted"] is False
    assert certificates["CN=platform signing CA"]["outputs"]["adopted"] is True
    assert certificates["CN=platform signing CA"]["id"] in before  # the administrator's entry, adopted
    assert set(store) == set(before) | {certificates["CN=vmimage test signer"]["id"]}
    assert "vCenter already trusts it" in up.output

    items = stack_items(stack)
    for name, namespace in ((CLUSTER_NAME, None), (NAMESPACED_NAME, "team-a")):
        item = items[name]
        assert (item["security_compliance"], item["certificate_status"]) == (False, "NOT_AVAILABLE")
        kind = "virtualmachineimages" if namespace else "clustervirtualmachineimages"
        live = kube.get(f"{kind}.v1alpha5.vmoperator.vmware.com", vmi_id(item["id"]), namespace)  # the record's
        published = as_recorded(live)
        published["metadata"].pop("managedFields", None)
        assert published == record(item, library["id"], namespace)
    stack.preview("--expect-no-changes")

    stack.destroy()
    assert trust_store(simulator) == before  # the administrator's two stay; the stack's own is gone
    with direct_client(simulator) as client:
        assert client.find_libraries("signed-only") == []


def test_a_supervisor_stack_predicts_the_not_compliant_object_and_vm_operator_agrees(simulator, kube, ova, tmp_path):
    """Supervisor mode: the preview and the image resource predict the NotReady object from vCenter's
    security_compliance; VM Operator (played back from its record as the namespace gets the library)
    publishes it, and the comparison finds it as predicted."""
    from tests.test_namespaces import create_namespace
    from vmimage.vsphere.namespaces import NamespacesClient
    from vmimage.vsphere.rest import VapiSession
    from vmimage.vsphere.settings import resolve_settings

    settings = resolve_settings({**vsphere_config(simulator), "vsphere:password": PASSWORD}, {})
    with VapiSession(settings) as session:
        namespaces = NamespacesClient(session)
        if namespaces.get("team-a") is None:
            create_namespace(namespaces, "team-a", [])
        stack = Stack(tmp_path / "supervisor", name="supervisor")
        config = policy_config(simulator, ova, "signed-only-sv", [], kube, mode="supervisor", waitSeconds=120)
        del config["vmimage:trustedCertificates"]
        config["vmimage:images"] = [
            {"displayName": NAMESPACED_NAME, "source": str(ova), "library": "signed-only-sv", "scope": ["team-a"]}
        ]
        stack.configure(config, secrets={"vsphere:password": PASSWORD})
        assert "NotReady: not security compliant (unsigned)" in stack.preview().output

        done = []

        # publishes the record once the namespace has the library and its item
        def vm_operator(stop: threading.Event) -> None:
            with direct_client(simulator) as client:
                while not stop.wait(0.3) and not done:
                    for library_id in client.find_libraries("signed-only-sv"):
                        if library_id not in namespaces.libraries("team-a"):
                            continue
                        for item_id in client.list_items(library_id):
                            item = client.get_item(item_id)
                            if item.name == NAMESPACED_NAME:
                                publish(
                                    kube,
                                    recorded_object(
                                        "photon-ova", item_id, library_id, "1", "team-a", item.name,
                                        security_policy=True,
                                    ),
                                )  # fmt: skip
                                done.append(item_id)

        up = up_while(stack, vm_operator)
        assert done and "differs from the prediction" not in up.output, up.output
        (observer,) = stack.resources("dynamic/vmimage:ObservedImages").values()
        assert list(observer["outputs"]["observed"].values()) == ["as predicted"]
        (image,) = stack.resources("dynamic/vmimage:VirtualMachineImage").values()
        condition = image["outputs"]["status"]["conditions"][0]
        assert (condition["reason"], image["outputs"]["status"].get("providerContentVersion")) == (
            "VirtualMachineImageProviderSecurityNotCompliant",
            None,
        )
        assert "NotReady: not security compliant (unsigned)" in up.output
        stack.destroy()


def test_a_policy_applied_in_place_is_previewed_for_the_items_in_it_and_an_unknown_name_fails(
    simulator, kube, ova, tmp_path
):
    """A library without a policy gets one: the preview warns what vCenter does to the items already in
    it, and each of the stack's items there shows it will be NotReady; the simulator keeps the policy
    as it was (it ignores the update), so `up` refuses, naming what to do. A policy name vCenter does
    not have fails the preview, naming the ones it has."""
    stack = Stack(tmp_path / "change", name="change")
    config = policy_config(simulator, ova, "gets-a-policy", [], kube)
    del config["vmimage:trustedCertificates"], config["vmimage:kubernetes"]
    del config["vmimage:libraries"][0]["securityPolicy"]
    config["vmimage:images"] = [{"displayName": "ubuntu", "source": str(ova), "library": "gets-a-policy"}]
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    stack.up()
    (item,) = stack_items(stack).values()
    assert "security_compliance" not in item and item["image"]["conditions"][0]["status"] == "True"

    config["vmimage:libraries"][0]["securityPolicy"] = "ovf-strict"
    stack.configure(config)
    steps = stack.preview_steps()
    assert sorted(op for name, op in steps.items() if op != "same") == ["update", "update", "update"], steps
    preview = stack.preview()
    assert "security policy 'none' -> 'OVF default policy': vCenter verifies every OVF item" in preview.output
    assert "'ubuntu': NotReady: not security compliant (unsigned)" in preview.output
    refused = stack.up(check=False)
    assert refused.returncode != 0
    assert "did not apply the security policy 'OVF default policy'" in refused.output
    assert "Set it in the vSphere Client (the library, Edit Settings, Security Policy)" in refused.output
    assert "Traceback" not in refused.output

    config["vmimage:libraries"][0]["securityPolicy"] = "Strict OVF"
    stack.configure(config)
    failed = stack.preview(check=False)
    assert failed.returncode != 0
    assert "securityPolicy 'Strict OVF': vCenter" in failed.output
    assert "has no security policy of this name (it has: 'OVF default policy')" in failed.output
    stack.destroy()
