"""The VirtualMachine and ImageWebhook components under Pulumi's mocks."""

from __future__ import annotations

import asyncio
import base64
import gc

import pulumi
import pytest

from tests.test_catalog import Mocks


def image(kind: str, name: str, display: str, namespace: str | None = None) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "vmoperator.vmware.com/v1alpha5",
        "kind": kind,
        "metadata": metadata,
        "status": {"name": display},
    }


CATALOG = [
    image("ClusterVirtualMachineImage", "vmi-0a0044d7c690bcbea", "Photon OS 5.0"),
    image("VirtualMachineImage", "vmi-1234567890abcdef0", "Photon OS 5.0", "team-a"),
    image("ClusterVirtualMachineImage", "vmi-fedcba09876543210", "Ubuntu"),
    image("ClusterVirtualMachineImage", "vmi-aaaaaaaaaaaaaaaaa", "Ubuntu"),
]


def vm_spec(mocks: Mocks, name: str) -> dict:
    return next(
        a.inputs
        for a in mocks.created
        if a.typ.startswith("kubernetes:") and a.typ.endswith(":VirtualMachine") and a.name == name
    )


@pulumi.runtime.test
def test_vm_gets_both_the_vmi_id_and_the_image_reference():
    from components.vm import VirtualMachine

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="vmimage", stack="t", preview=False)
    team_a = VirtualMachine(
        "web",
        namespace="team-a",
        image_name="Photon OS 5.0",
        class_name="best-effort-small",
        images=pulumi.Output.from_input(CATALOG),
        storage_class="wcp-policy",
    )
    team_b = VirtualMachine(
        "db", namespace="team-b", image_name="Photon OS 5.0", class_name="best-effort-medium", images=CATALOG
    )

    def check(_):
        web = vm_spec(mocks, "web")
        assert web["apiVersion"] == "vmoperator.vmware.com/v1alpha5" and web["kind"] == "VirtualMachine"
        assert web["metadata"] == {"name": "web", "namespace": "team-a"}
        assert web["spec"] == {
            "className": "best-effort-small",
            "storageClass": "wcp-policy",
            "imageName": "vmi-1234567890abcdef0",
            "image": {"kind": "VirtualMachineImage", "name": "vmi-1234567890abcdef0"},
        }
        assert vm_spec(mocks, "db")["spec"]["image"] == {
            "kind": "ClusterVirtualMachineImage",
            "name": "vmi-0a0044d7c690bcbea",
        }
        types = {a.typ for a in mocks.created}
        assert "vmimage:index:VirtualMachine" in types

    return pulumi.Output.all(team_a.vm.id, team_b.vm.id).apply(check)  # both VMs registered


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("CentOS", 'no VM image exists for "CentOS" in namespace or cluster scope'),
        ("Ubuntu", 'multiple VM images exist for "Ubuntu" in cluster scope'),
    ],
)
def test_unknown_or_ambiguous_names_fail_the_preview(name, message):
    from components.vm import VirtualMachine

    pulumi.runtime.set_mocks(Mocks(), project="vmimage", stack="t", preview=True)

    @pulumi.runtime.test
    def program():
        return VirtualMachine("x", namespace="team-b", image_name=name, class_name="c", images=CATALOG).image

    with pytest.raises(pulumi.RunError) as caught:
        program()
    assert str(caught.value) == f"VirtualMachine image {name!r} in namespace team-b: {message}"
    # the runtime keeps copies of this error in futures nobody awaits, which asyncio would
    # report as "never retrieved" whenever they are collected, often at exit: retrieve them
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.Future) and obj.done() and not obj.cancelled():
            obj.exception()


@pulumi.runtime.test
def test_vm_resolves_against_the_live_cluster_too(kube):
    from components.vm import VirtualMachine
    from tests.conftest import FIXTURES
    from tests.helpers import inspect_file
    from vmimage.cluster.kube import ImageObjects, KubeTarget

    live = inspect_file(
        FIXTURES / "ovf" / "photon-ova.ovf",
        name="Only In The Cluster",
        item_id="2a7c9e1f-3b5d-4f6a-8c0e-1d2f3a4b5c6d",
        namespace="team-b",
    )
    with ImageObjects(KubeTarget(str(kube.kubeconfig))) as cluster:
        cluster.apply(live)
        cluster.apply_status(live)
    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="vmimage", stack="t", preview=False)
    vm = VirtualMachine(
        "live",
        namespace="team-b",
        image_name="Only In The Cluster",
        class_name="c",
        images=CATALOG,
        cluster=KubeTarget(str(kube.kubeconfig)),
    )
    return vm.image_name.apply(lambda name: (name == live["metadata"]["name"]) or pytest.fail(name))


@pulumi.runtime.test
def test_webhook_component():
    from components.webhook import ImageWebhook

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="vmimage", stack="t", preview=False)
    webhook = ImageWebhook(
        "vmimage",
        container_image="registry.example.com/vmimage:0.1.0",
        tls_cert="CERT",
        tls_key="KEY",
        ca_bundle="-----BEGIN CERTIFICATE-----\nCA\n",
    )

    def check(_):
        found = {a.typ.rsplit(":", 1)[-1]: a.inputs for a in mocks.created}
        config = found["MutatingWebhookConfiguration"]["webhooks"][0]
        assert config["failurePolicy"] == "Fail" and config["timeoutSeconds"] == 5
        assert config["sideEffects"] == "None" and config["admissionReviewVersions"] == ["v1"]
        assert config["rules"] == [
            {
                "apiGroups": ["vmoperator.vmware.com"],
                "apiVersions": ["*"],
                "operations": ["CREATE"],
                "resources": ["virtualmachines"],
                "scope": "Namespaced",
            }
        ]
        assert base64.b64decode(config["clientConfig"]["caBundle"]).startswith(b"-----BEGIN CERTIFICATE-----")
        assert config["clientConfig"]["service"]["path"] == "/mutate"
        assert found["ClusterRole"]["rules"][0]["verbs"] == ["get", "list", "watch"]
        container = found["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"][-2:] == ["--images-from", "kube"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert found["Deployment"]["spec"]["replicas"] == 2
        assert found["Secret"]["type"] == "kubernetes.io/tls"
        assert "PodDisruptionBudget" in found

    return pulumi.Output.all(webhook.service_name, webhook.configuration.metadata).apply(check)


def test_webhook_failure_policy_is_checked():
    from components.webhook import ImageWebhook

    pulumi.runtime.set_mocks(Mocks(), project="vmimage", stack="t", preview=False)
    with pytest.raises(ValueError, match="Fail or Ignore"):
        ImageWebhook("w", container_image="i", tls_cert="c", tls_key="k", ca_bundle="b", failure_policy="Maybe")


def test_a_vm_whose_image_lacks_a_required_capability_fails_the_preview():
    from components.vm import VirtualMachine

    pulumi.runtime.set_mocks(Mocks(), project="vmimage", stack="t", preview=True)
    gpu = [{**CATALOG[0], "status": {"name": "Photon OS 5.0", "capabilities": ["cloud-init"]}}]

    @pulumi.runtime.test
    def program():
        return VirtualMachine(
            "trainer",
            namespace="team-b",
            image_name="Photon OS 5.0",
            class_name="c",
            images=gpu,
            required_capabilities=["nvidia-gpu", "cloud-init"],
        ).image

    with pytest.raises(pulumi.RunError) as caught:
        program()
    assert str(caught.value) == (
        "VM team-b/trainer requires capabilities its image vmi-0a0044d7c690bcbea (Photon OS 5.0) does not have: "
        "nvidia-gpu (it has: cloud-init)"
    )
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.Future) and obj.done() and not obj.cancelled():
            obj.exception()


@pulumi.runtime.test
def test_a_vm_whose_image_has_its_required_capabilities_is_declared():
    from components.vm import VirtualMachine

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="vmimage", stack="t", preview=False)
    gpu = [{**CATALOG[0], "status": {"name": "Photon OS 5.0", "capabilities": ["nvidia-gpu"]}}]
    vm = VirtualMachine(
        "trainer", namespace="team-b", image_name="Photon OS 5.0", class_name="c", images=gpu,
        required_capabilities=["nvidia-gpu"],
    )  # fmt: skip
    return vm.image_name.apply(lambda name: (name == "vmi-0a0044d7c690bcbea") or pytest.fail(name))
