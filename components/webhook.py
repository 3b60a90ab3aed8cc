"""ImageWebhook: the display-name mutating webhook, deployed with pulumi-kubernetes.

Choices, and why:
- ``failurePolicy: Fail``: a VM created while the webhook is down would keep a display name
  no controller can resolve; refusing it is the clear error. Two replicas and a
  PodDisruptionBudget keep the webhook up; the ``matchConditions`` below keep it out of
  the way of every VM that already names its image and requires no capability.
- ``timeoutSeconds: 5``: resolution is an in-memory lookup (p99 well under 5 s even under
  load, see docs/benchmarks.md); a stuck call fails fast instead of holding the API server.
- ``matchConditions`` (vmimage.admission.mutation.mutating_webhook): called only for VMs with
  ``spec.imageName`` and without ``spec.image``, or with a ``vmimage.io/required-capabilities``
  annotation to check.
- ``sideEffects: None``, ``admissionReviewVersions: [v1]``, rules for CREATE only.
- RBAC: get, list and watch of the two image kinds, nothing else.
"""

from __future__ import annotations

import base64

import pulumi
import pulumi_kubernetes as k8s

from vmimage.admission.mutation import mutating_webhook
from vmimage.contract.models import GROUP

LABELS = {"app.kubernetes.io/name": "vmimage-webhook", "app.kubernetes.io/part-of": "vmimage"}


class ImageWebhook(pulumi.ComponentResource):
    """Type ``vmimage:index:ImageWebhook``."""

    service_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        container_image: str,
        tls_cert: pulumi.Input[str],
        tls_key: pulumi.Input[str],
        ca_bundle: pulumi.Input[str],
        namespace: str = "vmimage-system",
        replicas: int = 2,
        failure_policy: str = "Fail",
        timeout_seconds: int = 5,
        strict: bool = False,
        provider: k8s.Provider | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("vmimage:index:ImageWebhook", name, None, opts)
        if failure_policy not in ("Fail", "Ignore"):
            raise ValueError("failure_policy is Fail or Ignore")
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        meta = {"namespace": namespace, "labels": LABELS}
        ns = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": namespace, "labels": LABELS}, opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[ns])
        account = k8s.core.v1.ServiceAccount(f"{name}-account", metadata={**meta, "name": name}, opts=in_ns)
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-reader",
            metadata={"name": f"{name}-image-reader", "labels": LABELS},
            rules=[
                {
                    "apiGroups": [GROUP],
                    "resources": ["virtualmachineimages", "clustervirtualmachineimages"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
            opts=child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-reader",
            metadata={"name": f"{name}-image-reader", "labels": LABELS},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role.metadata["name"]},
            subjects=[{"kind": "ServiceAccount", "name": account.metadata["name"], "namespace": namespace}],
            opts=child,
        )
        secret = k8s.core.v1.Secret(
            f"{name}-tls",
            metadata={**meta, "name": f"{name}-tls"},
            type="kubernetes.io/tls",
            string_data={"tls.crt": tls_cert, "tls.key": pulumi.Output.secret(tls_key)},
            opts=in_ns,
        )
        args = ["webhook", "--cert", "/tls/tls.crt", "--key", "/tls/tls.key", "--port", "8443", "--images-from", "kube"]
        probe = {"scheme": "HTTPS", "port": 8443}
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={**meta, "name": name},
            spec={
                "replicas": replicas,
                "selector": {"matchLabels": LABELS},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {
                        "serviceAccountName": account.metadata["name"],
                        "containers": [
                            {
                                "name": "webhook",
                                "image": container_image,
                                "command": ["vmimage"],
                                "args": [*args, *(["--strict"] if strict else [])],
                                "ports": [{"name": "https", "containerPort": 8443}],
                                "readinessProbe": {"httpGet": {**probe, "path": "/readyz"}},
                                "livenessProbe": {"httpGet": {**probe, "path": "/healthz"}},
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "96Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": {
                                    "runAsNonRoot": True,
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": True}],
                            }
                        ],
                        "volumes": [{"name": "tls", "secret": {"secretName": secret.metadata["name"]}}],
                    },
                },
            },
            opts=in_ns,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={**meta, "name": name},
            spec={"minAvailable": 1, "selector": {"matchLabels": LABELS}},
            opts=in_ns,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={**meta, "name": name},
            spec={"selector": LABELS, "ports": [{"port": 443, "targetPort": "https"}]},
            opts=in_ns,
        )
        self.configuration = k8s.admissionregistration.v1.MutatingWebhookConfiguration(
            f"{name}-config",
            metadata={"name": f"{name}.vmimage", "labels": LABELS},
            webhooks=[
                mutating_webhook(
                    {
                        "service": {
                            "name": service.metadata["name"],
                            "namespace": namespace,
                            "path": "/mutate",
                            "port": 443,
                        },
                        "caBundle": pulumi.Output.from_input(ca_bundle).apply(
                            lambda pem: base64.b64encode(pem.encode()).decode()
                        ),
                    },
                    failure_policy,
                    timeout_seconds,
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[deployment]),
        )
        self.service_name = service.metadata["name"]
        self.register_outputs({"service_name": self.service_name})
