"""VirtualMachineImage and ClusterVirtualMachineImage: a library item as Kubernetes sees it.

The status is computed by the core from the item's descriptor (downloaded once per
content version). With a Kubernetes target the resource also owns the object in the
cluster: it applies it (field manager ``vmimage``) and writes its status through the status
subresource, which Pulumi's Kubernetes provider cannot do.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers import connection
from providers.common import (
    DECLARATION,
    VSphereProvider,
    changed,
    contract_moved,
    is_unknown,
    present,
    require_text,
)
from vmimage.config import kubeconfig_problem
from vmimage.declaration import declaration_token
from vmimage.errors import ImageError
from vmimage.facts import with_capabilities
from vmimage.ids import library_item_name, vmi_id
from vmimage.image import image_object, item_kind
from vmimage.kube import ImageObjects, KubeTarget
from vmimage.labels import is_label_name, is_label_value
from vmimage.models import CLUSTER_KIND, NAMESPACED_KIND, REASON_PROVIDER_NOT_READY, VERSION
from vmimage.status import CONTRACT, ItemImage, image_status, item_status, not_ready_condition
from vmimage.verify import differences, observed, settled
from vmimage.vsphere.descriptors import DescriptorCache, content_version
from vmimage.vsphere.rest import NotFoundError

INPUTS = (
    "item_id",
    "content_version",
    "content_fingerprint",
    "display_name",
    "namespace",
    "capabilities",
    "extra_labels",
    "kubeconfig",
    "context",
    "becomes",
)
# becomes: what the image will be (vmimage/facts.py), from the item's local descriptor: shown by
# `pulumi preview --diff` and preview-summary before any upload; never a reason for an update itself
# content_fingerprint: what the item was published from. A server that keeps the content version
# (govmomi's simulator leaves every item at "1") still moves the image on when the content changes.
IN_PLACE = (
    "content_version",
    "content_fingerprint",
    "display_name",
    "capabilities",
    "extra_labels",
    "drift",
)
REPLACING = ("item_id", "namespace", "kubeconfig", "context")
# supervisor mode: {"wait_seconds": N, "strict": bool}, present only there. The resource then
# never writes the object: it waits for VM Operator's and compares it with its prediction.
OBSERVE = "observe"
POLL_SECONDS = float(os.environ.get("VMIMAGE_OBSERVE_POLL_SECONDS", "2"))
PROGRESS_SECONDS = float(os.environ.get("VMIMAGE_PROGRESS_INTERVAL", "15"))
DESCRIPTORS = DescriptorCache()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _image(props: dict[str, Any]) -> tuple[ItemImage, str | None]:
    """The image from vCenter (the item and its descriptor, through the core) and the item's library."""
    item_id = props["item_id"]
    common = dict(name=props["display_name"], now=_now(), capabilities=props.get("capabilities") or (), item_id=item_id)
    with connection.content_library() as client:
        try:
            item = client.get_item(item_id)
        except NotFoundError:
            status = image_status(None, **common, content_version=props.get("content_version"))
            missing = not_ready_condition(REASON_PROVIDER_NOT_READY, f"library item {item_id} does not exist", _now())
            return ItemImage(status.model_copy(update={"type": None, "conditions": [missing]})), None
        version = content_version(client, item, known=props.get("content_version"))
        descriptor = DESCRIPTORS.fetch(client, item, version, content_key=props.get("content_fingerprint"))
    image = item_status(
        descriptor.data if descriptor else None,
        f"item {item_id}:{descriptor.name if descriptor else '(no descriptor)'}",
        iso=item.type.lower() == "iso",
        **common,
        content_version=version,
    )
    return image, item.library_id or None


class _Image(VSphereProvider):
    kind: str = NAMESPACED_KIND

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        require_text(news, "display_name", failures, limit=253)
        item_id = news.get("item_id")
        if not is_unknown(item_id):
            try:
                vmi_id(str(item_id or ""))
            except ImageError:
                failures.append(CheckFailure("item_id", f"item_id {item_id!r} is not a library item UUID"))
        if self.kind == NAMESPACED_KIND:
            require_text(news, "namespace", failures, limit=63)
        elif news.get("namespace"):
            failures.append(CheckFailure("namespace", "a ClusterVirtualMachineImage has no namespace"))
        for capability in news.get("capabilities") or ():
            if not is_unknown(capability) and not is_label_name(str(capability)):
                failures.append(CheckFailure("capabilities", f"capability {capability!r} is not a valid label name"))
        for key, value in (news.get("extra_labels") or {}).items():
            if not is_unknown(value) and not is_label_value(str(value)):
                failures.append(CheckFailure("extra_labels", f"label {key}={value!r}: not a valid label value"))
        kubeconfig = news.get("kubeconfig")
        if isinstance(kubeconfig, str) and (problem := kubeconfig_problem(kubeconfig)):
            failures.append(CheckFailure("kubeconfig", f"kubeconfig {problem}"))
        inputs = {key: news.get(key) for key in INPUTS}
        inputs.update(present(news, OBSERVE))
        inputs["capabilities"] = (
            sorted(set(inputs["capabilities"] or []))
            if not any(is_unknown(c) for c in inputs["capabilities"] or [])
            else inputs["capabilities"]
        )
        inputs["extra_labels"] = inputs["extra_labels"] or {}
        becomes = inputs.pop("becomes")
        if isinstance(becomes, dict) and isinstance(inputs["capabilities"], list):
            inputs["becomes"] = with_capabilities(becomes, inputs["capabilities"])
        elif is_unknown(becomes):
            inputs["becomes"] = becomes
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        updates = changed(olds, news, IN_PLACE) + contract_moved(olds)
        replaces = changed(olds, news, REPLACING)
        return DiffResult(changes=bool(updates or replaces), replaces=replaces)

    def _target(self, props: dict[str, Any]) -> KubeTarget | None:
        if not props.get("kubeconfig") and not props.get("context"):
            return None
        return KubeTarget(props.get("kubeconfig") or None, props.get("context") or None)

    def _publish(self, props: dict[str, Any], owner: str) -> dict[str, Any]:
        image, library_id = _image(props)
        if image.sync_error:
            pulumi.log.warn(f"{props['display_name']!r}: VM Operator would not sync this item: {image.sync_error}")
        cluster_scope = self.kind == CLUSTER_KIND
        target = self._target(props)
        with connection.cluster(target) if target is not None else contextlib.nullcontext() as cluster:
            version, item_uid = VERSION, None
            if cluster is not None:  # VM Operator's version and owner, as this cluster has them
                version = cluster.image_version()
                item_name = library_item_name(props["item_id"])
                item_uid = cluster.item_uid(item_kind(cluster_scope), props.get("namespace"), item_name)
            obj = image_object(
                image.status,
                cluster=cluster_scope,
                namespace=props.get("namespace"),
                labels=image.labels,
                extra_labels=props.get("extra_labels") or {},
                library_id=library_id,
                item_uid=item_uid,
                version=version,
            ).wire()
            if cluster is not None and props.get(OBSERVE):
                obj = self._observe(cluster, obj, props)
            elif cluster is not None:
                cluster.publish(obj, owner)
        observing = bool(props.get(OBSERVE))
        return {
            **{key: props.get(key) for key in INPUTS},
            "contract": CONTRACT,  # which VM Operator's objects it reproduces: a new one rewrites it in place
            "drift": None,
            "vmi_id": obj["metadata"]["name"],
            "kind": obj["kind"],
            "status": obj["status"],
            "labels": obj["metadata"].get("labels") or {},
            "published": target is not None and not observing,
            "owner": None if observing else owner,
        }

    def _observe(self, cluster: ImageObjects, predicted: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
        """Wait (bounded) for VM Operator's object of this name to catch up with the item, then
        compare it with the prediction: differences are warnings, or the failure under strict.
        Returns VM Operator's object. Never writes one."""
        settings = props.get(OBSERVE) or {}
        wait = float(settings.get("wait_seconds") or 600)
        name, namespace = predicted["metadata"]["name"], props.get("namespace")
        where = f"namespace {namespace}" if namespace else "cluster scope"
        started = last_said = time.monotonic()
        while True:
            live = cluster.get(self.kind, namespace, name)
            if settled(live, predicted):
                break
            now = time.monotonic()
            if now - started >= wait:
                seen = "has not published it" if live is None else "has not caught up with the item"
                raise ImageError(
                    f"{self.kind} {name} ({props['display_name']!r}, {where})",
                    f"VM Operator {seen} within {wait:.0f} s: is the item's library associated with the "
                    f"namespace (or the Supervisor), and is VM Operator running? (kubectl get "
                    f"{'cvmi' if not namespace else 'vmi -n ' + namespace} {name})",
                )
            if now - last_said >= PROGRESS_SECONDS:
                last_said = now
                waited = f"{now - started:.0f} s"
                pulumi.log.info(f"waiting for VM Operator to publish {self.kind} {name} in {where} ({waited})")
            time.sleep(POLL_SECONDS)
        assert live is not None
        found = differences(predicted, live)
        if found:
            lines = "\n  ".join(found)
            if settings.get("strict"):
                raise ImageError(
                    f"{self.kind} {name} ({props['display_name']!r})",
                    f"VM Operator's object differs from the prediction (strict):\n  {lines}",
                )
            pulumi.log.warn(
                f"{self.kind} {name} ({props['display_name']!r}): VM Operator's object differs from the "
                f"prediction:\n  {lines}"
            )
        return observed(live)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outputs = self._publish(props, owner=create_owner(self.declared(props)))
        pulumi.log.info(f"{outputs['kind']} {outputs['vmi_id']} ({props['display_name']!r})")
        return CreateResult(outputs["vmi_id"], outputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._publish(news, owner=olds.get("owner") or uuid.uuid4().hex))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        target = self._target(props)
        if target is None:
            return ReadResult(id_, props)
        with connection.cluster(target) as cluster:
            live = cluster.get(self.kind, props.get("namespace"), id_)
        if live is None:
            return ReadResult("", {})  # deleted out of band: the next `up` publishes it again
        live_labels = live.get("metadata", {}).get("labels") or {}
        drift = []
        if (live.get("status") or {}) != (props.get("status") or {}):
            drift.append("status")
        if any(live_labels.get(key) != value for key, value in (props.get("labels") or {}).items()):
            drift.append("labels")
        outputs = {**props, "status": live.get("status") or {}, "labels": live_labels}
        inputs = {key: props.get(key) for key in INPUTS}
        if drift:  # an input the program never sets: the next diff sees it and `up` rewrites the object
            inputs["drift"] = outputs["drift"] = f"edited outside Pulumi: {', '.join(drift)}"
        return ReadResult(id_, outputs, inputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        target = self._target(props)
        if target is None or props.get(OBSERVE):  # an observed object is VM Operator's
            return
        with connection.cluster(target) as cluster:  # already gone counts as done
            outcome = cluster.delete_owned(self.kind, props.get("namespace"), id_, props.get("owner"))
        if outcome == "kept":
            pulumi.log.info(f"{self.kind} {id_} stays: another declaration of the catalog publishes it now")


class VirtualMachineImageProvider(_Image):
    kind = NAMESPACED_KIND


class ClusterVirtualMachineImageProvider(_Image):
    kind = CLUSTER_KIND


def create_owner(props: dict[str, Any]) -> str:
    """The owner (field manager) a create applies the object as.

    A new one for every create of a new declaration: when a replace (or a renamed resource)
    publishes the same object before the old declaration is deleted, the old one no longer owns
    it. Yet the same for the same create run again: a `pulumi up` killed mid-apply leaves the
    object applied and the resource unrecorded, and the next run's create must take over that
    object as the same owner, not leave a second manager behind. So: the declaration (its stack
    and resource name, from the component) and every input a change of which replaces it."""
    declaration = props.get(DECLARATION)
    if not declaration:
        return uuid.uuid4().hex
    return declaration_token(str(declaration), *(str(props.get(key) or "") for key in REPLACING))


def _inputs(observe: dict[str, Any] | None = None, **values: Any) -> dict[str, Any]:
    """The resource's properties: the declared inputs (INPUTS) that are set, and the outputs the
    program reads.

    The state keeps every output the provider returns (kind, owner, published too); the program
    gets an Output object for each property named here, and each costs it work per image, so only
    what it sets or reads is named. An unset input is left out rather than passed as None: the
    engine never sees a None input either way."""
    return {
        **({OBSERVE: observe} if observe else {}),
        **{key: value for key in INPUTS if (value := values.get(key)) is not None},
        **{key: None for key in ("vmi_id", "status", "labels")},
    }


class _ImageResource(pulumi.dynamic.Resource):
    """The outputs the program reads, on both image kinds."""

    vmi_id: pulumi.Output[str]
    status: pulumi.Output[dict]
    labels: pulumi.Output[dict]


class VirtualMachineImage(_ImageResource, module="vmimage", name="VirtualMachineImage"):
    """A namespaced image. Type token: pulumi-python:dynamic/vmimage:VirtualMachineImage."""

    def __init__(
        self,
        resource_name: str,
        *,
        item_id: pulumi.Input[str],
        content_version: pulumi.Input[str | None],
        display_name: pulumi.Input[str],
        content_fingerprint: pulumi.Input[str | None] = None,
        becomes: pulumi.Input[dict[str, Any] | None] = None,
        namespace: pulumi.Input[str],
        capabilities: pulumi.Input[list[str]] | None = None,
        extra_labels: pulumi.Input[dict[str, str]] | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        declaration: str | None = None,
        observe: dict[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``declaration``: what names this declaration across runs (its stack and resource
        name): a create run again after an interrupted one publishes as the same owner.
        ``observe`` (supervisor mode): ``{"wait_seconds": N, "strict": bool}``: never write the
        object; wait for VM Operator's and compare it with the prediction."""
        inputs = _inputs(
            observe,
            item_id=item_id,
            content_version=content_version,
            content_fingerprint=content_fingerprint,
            becomes=becomes,
            display_name=display_name,
            namespace=namespace,
            capabilities=capabilities,
            extra_labels=extra_labels,
            kubeconfig=kubeconfig,
            context=context,
        )
        super().__init__(VirtualMachineImageProvider(declaration), resource_name, inputs, opts)


class ClusterVirtualMachineImage(_ImageResource, module="vmimage", name="ClusterVirtualMachineImage"):
    """A cluster-wide image. Type token: pulumi-python:dynamic/vmimage:ClusterVirtualMachineImage."""

    def __init__(
        self,
        resource_name: str,
        *,
        item_id: pulumi.Input[str],
        content_version: pulumi.Input[str | None],
        display_name: pulumi.Input[str],
        content_fingerprint: pulumi.Input[str | None] = None,
        becomes: pulumi.Input[dict[str, Any] | None] = None,
        capabilities: pulumi.Input[list[str]] | None = None,
        extra_labels: pulumi.Input[dict[str, str]] | None = None,
        kubeconfig: str | None = None,
        context: str | None = None,
        declaration: str | None = None,
        observe: dict[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``declaration``: what names this declaration across runs (its stack and resource
        name): a create run again after an interrupted one publishes as the same owner.
        ``observe`` (supervisor mode): ``{"wait_seconds": N, "strict": bool}``: never write the
        object; wait for VM Operator's and compare it with the prediction."""
        inputs = _inputs(
            observe,
            item_id=item_id,
            content_version=content_version,
            content_fingerprint=content_fingerprint,
            becomes=becomes,
            display_name=display_name,
            capabilities=capabilities,
            extra_labels=extra_labels,
            kubeconfig=kubeconfig,
            context=context,
        )
        super().__init__(ClusterVirtualMachineImageProvider(declaration), resource_name, inputs, opts)
