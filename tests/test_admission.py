"""The mutation as a pure function (the webhook tests cover it over HTTPS)."""

import base64
import json

import pytest

from tests.conftest import FIXTURES
from vmimage.admission.mutation import MalformedReview, review

PHOTON = {
    "kind": "ClusterVirtualMachineImage",
    "metadata": {"name": "vmi-0a0044d7c690bcbea"},
    "status": {"name": "Photon OS 5.0"},
}


def request(spec, namespace="team-a", operation="CREATE", where="request"):
    vm = {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": "VirtualMachine",
        "metadata": {"name": "vm", "namespace": namespace},
        "spec": spec,
    }
    body = {"uid": "u", "kind": {"kind": "VirtualMachine"}, "operation": operation, "object": vm}
    if where == "request":
        body["namespace"] = namespace
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}


def test_a_vmi_id_without_spec_image_gets_spec_image():
    answer = review(request({"imageName": "vmi-0a0044d7c690bcbea"}), [PHOTON])["response"]
    assert json.loads(base64.b64decode(answer["patch"]))[1] == {
        "op": "add",
        "path": "/spec/image",
        "value": {"kind": "ClusterVirtualMachineImage", "name": "vmi-0a0044d7c690bcbea"},
    }


def test_the_namespace_comes_from_the_object_when_the_request_has_none():
    answer = review(request({"imageName": "Photon OS 5.0"}, where="object"), [PHOTON])["response"]
    assert answer["allowed"] and answer["patchType"] == "JSONPatch"


def test_a_vm_without_an_image_name_passes():
    assert review(request({"className": "c"}), [PHOTON])["response"] == {"uid": "u", "allowed": True}


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"uid": 7}},
        {
            "kind": "AdmissionReview",
            "apiVersion": "admission.k8s.io/v1",
            "request": {"uid": "u", "operation": "CREATE", "kind": {"kind": "VirtualMachine"}},
        },
    ],
)
def test_malformed(body):
    with pytest.raises(MalformedReview):
        review(body, [PHOTON])


GPU_PHOTON = {
    "kind": "ClusterVirtualMachineImage",
    "metadata": {
        "name": "vmi-0a0044d7c690bcbea",
        "labels": {  # VM Operator's capability labels are "true"; another value is no capability
            "capability.image.vmoperator.vmware.com/cloud-init": "true",
            "capability.image.vmoperator.vmware.com/sev-snp": "false",
        },
    },
    "status": {"name": "Photon OS 5.0", "capabilities": ["nvidia-gpu"]},
}


def with_required(body: dict, capabilities: str) -> dict:
    body["request"]["object"]["metadata"]["annotations"] = {"vmimage.io/required-capabilities": capabilities}
    return body


def test_required_capabilities_the_image_has_pass():
    answer = review(with_required(request({"imageName": "Photon OS 5.0"}), "nvidia-gpu, cloud-init"), [GPU_PHOTON])
    assert answer["response"]["allowed"] and answer["response"]["patchType"] == "JSONPatch"


def test_a_missing_required_capability_is_denied_naming_the_vm_the_image_and_what_is_missing():
    answer = review(with_required(request({"imageName": "Photon OS 5.0"}), "nvidia-gpu,sev-snp"), [GPU_PHOTON])
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"] == (
        "VM team-a/vm requires capabilities its image vmi-0a0044d7c690bcbea (Photon OS 5.0) does not have: sev-snp"
        " (it has: cloud-init, nvidia-gpu)"
    )


def test_a_vm_that_names_its_image_is_checked_too_when_it_requires_capabilities():
    named = {
        "imageName": "vmi-0a0044d7c690bcbea",
        "image": {"kind": "ClusterVirtualMachineImage", "name": "vmi-0a0044d7c690bcbea"},
    }
    assert review(request(dict(named)), [PHOTON])["response"] == {"uid": "u", "allowed": True}
    answer = review(with_required(request(dict(named)), "nvidia-gpu"), [PHOTON])["response"]
    assert answer["allowed"] is False and "does not have: nvidia-gpu" in answer["status"]["message"]
    assert "patch" not in answer


# VM Operator's objects for an item vCenter holds not security compliant (a library with an OVF
# security policy, an unsigned package): NotReady, reason VirtualMachineImageProviderSecurityNotCompliant.
NOT_COMPLIANT = sorted((FIXTURES / "vm-operator" / "security-policy").glob("*.vm-operator.v1alpha*.json"))


@pytest.mark.parametrize("record", NOT_COMPLIANT, ids=lambda p: p.name)
def test_an_image_that_is_not_security_compliant_is_refused_with_its_reason(record):
    image = json.loads(record.read_text())
    name, display = image["metadata"]["name"], image["status"]["name"]
    namespace = image["metadata"].get("namespace", "team-a")
    named = {"imageName": name, "image": {"kind": image["kind"], "name": name}}
    for body in (  # by display name; by VMI ID; named already (sent for its required capabilities)
        request({"imageName": display}, namespace=namespace),
        request({"imageName": name}, namespace=namespace),
        with_required(request(named, namespace=namespace), "cloud-init"),
    ):
        answer = review(body, [image, PHOTON])["response"]
        assert answer["allowed"] is False and "patch" not in answer
        assert answer["status"]["code"] == 403
        assert answer["status"]["message"] == (
            f"VM {namespace}/vm: its image {name} ({display}) is not security compliant (Ready False, "
            "VirtualMachineImageProviderSecurityNotCompliant: Provider item is not security compliant): VM Operator "
            "deploys no VM from it; sign the package with a certificate vCenter trusts (`vmimage sign`) and publish "
            "it again, or choose another image"
        )


def test_an_image_not_ready_for_another_reason_is_not_refused_by_the_security_check():
    """The webhook refused no NotReady image before: only the security reason is refused."""
    not_synced = {
        **PHOTON,
        "status": {
            "name": "Photon OS 5.0",
            "conditions": [{"type": "Ready", "status": "False", "reason": "VirtualMachineImageNotSynced"}],
        },
    }
    answer = review(request({"imageName": "Photon OS 5.0"}), [not_synced])["response"]
    assert answer["allowed"] is True and answer["patchType"] == "JSONPatch"
    compliant = json.loads(NOT_COMPLIANT[0].read_text())
    compliant["status"]["conditions"][0].update(status="True", reason="True", message="")
    answer = review(request({"imageName": compliant["status"]["name"]}), [compliant])["response"]
    assert answer["allowed"] is True


def test_spec_image_is_checked_as_the_kind_it_names():
    """A namespaced image and a cluster image may share a name (a VMI ID): a VM whose spec.image
    names the cluster one, not security compliant, is refused though the namespaced one is Ready,
    and one naming the namespaced kind gets that image's checks."""
    cluster = json.loads(next(p for p in NOT_COMPLIANT if ".cluster." in p.name).read_text())
    name = cluster["metadata"]["name"]
    namespaced = {
        "kind": "VirtualMachineImage",
        "metadata": {"name": name, "namespace": "team-a"},
        "status": {
            "name": "photon",
            "capabilities": ["cloud-init"],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    for kind, allowed in (("ClusterVirtualMachineImage", False), ("VirtualMachineImage", True)):
        body = with_required(request({"imageName": name, "image": {"kind": kind, "name": name}}), "cloud-init")
        answer = review(body, [namespaced, cluster])["response"]
        assert answer["allowed"] is allowed, (kind, answer)
        if not allowed:
            assert "is not security compliant" in answer["status"]["message"]
