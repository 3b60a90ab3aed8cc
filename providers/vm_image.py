"""VirtualMachineImage and ClusterVirtualMachineImage: a library item as Kubernetes sees it.

The status is computed by the core from the item's descriptor (downloaded once per
content version). With a Kubernetes target in publish mode the resource also owns the object
in the cluster: it applies it (field manager ``vmimage/<owner>``) and writes its status
through the status subresource, which Pulumi's Kubernetes provider cannot do. In supervisor
mode it predicts the object only (VM Operator publishes it), and one ObservedImages resource
per catalog waits for VM Operator's objects and holds them to the predictions.
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
    INSTANCE,
    VSphereProvider,
    changed,
    contract_moved,
    is_unknown,
    present,
    require_text,
    say,
    warn,
)
from vmimage.cluster.kube import ImageObjects, KubeTarget
from vmimage.cluster.kubeconfig import kubeconfig_problem
from vmimage.contract.ids import library_item_name, vmi_id
from vmimage.contract.image import image_object, item_kind
from vmimage.contract.labels import is_label_name, is_label_value
from vmimage.contract.models import CLUSTER_KIND, NAMESPACED_KIND, REASON_PROVIDER_NOT_READY, VERSION
from vmimage.contract.status import (
    CONTRACT,
    ItemImage,
    image_status,
    item_status,
    not_ready_condition,
    with_compliance,
)
from vmimage.contract.verify import behind, differences
from vmimage.errors import ImageError
from vmimage.review.facts import not_compliant_line, with_capabilities
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
POLICY = "security_policy"  # the library's security policy, present only where it has one: a change republishes
# becomes: what the image will be (vmimage/review/facts.py), from the item's local descriptor: shown by
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
    POLICY,
)
REPLACING = ("item_id", "namespace", "kubeconfig", "context")
# How the image reaches the cluster, recorded in the state: "publish" (the resource writes the
# object) or "supervisor" (VM Operator does; the resource predicts it). Not in INPUTS: a stack
# deployed before it was recorded has none, and reads as publish (or as supervisor where it has
# the input that release used for it, OBSERVE), so an upgrade alone changes nothing.
MODE = "mode"
PUBLISH, SUPERVISOR = "publish", "supervisor"
OBSERVE = "observe"  # the previous release's supervisor-mode input ({"wait_seconds", "strict"})
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
    # vCenter's word on the item's signature (a library with a security policy) wins over the descriptor
    image = with_compliance(
        image, item.security_compliance, common["now"], item.certificate_status, policy=bool(props.get(POLICY))
    )
    return image, item.library_id or None


def recorded_mode(props: dict[str, Any]) -> str:
    """The mode a resource's inputs or state record: ``mode``; else supervisor where the previous
    release's ``observe`` input is; else publish (every stack before modes were recorded)."""
    mode = props.get(MODE)
    if mode in (PUBLISH, SUPERVISOR):
        return str(mode)
    return SUPERVISOR if props.get(OBSERVE) else PUBLISH


def _predict(
    props: dict[str, Any], cluster_scope: bool, cluster: ImageObjects | None
) -> tuple[dict, ItemImage, str | None]:
    """The object VM Operator publishes for the item (wire form), the image it came from, and
    the item's library. With a cluster: at the version it serves, owned by its item object."""
    image, library_id = _image(props)
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
    return obj, image, library_id


def _label(obj: dict[str, Any], display_name: Any) -> str:
    namespace = obj["metadata"].get("namespace")
    return f"{obj['kind']} {namespace + '/' if namespace else ''}{obj['metadata']['name']} ({display_name!r})"


_UNCHECKABLE_SAID: set[KubeTarget] = set()  # clusters whose association could not be checked, said once


def _require_supervisor_library(cluster: ImageObjects, library_id: str, obj: dict[str, Any], name: Any) -> None:
    """Fail at once for a cluster image whose library the Supervisor does not have: VM Operator
    would never publish it, and waiting for it could only time out."""
    libraries, why = cluster.supervisor_libraries()
    if libraries is None:
        if cluster.target not in _UNCHECKABLE_SAID:
            _UNCHECKABLE_SAID.add(cluster.target)
            warn(
                f"cannot check that cluster images' libraries are associated with the Supervisor: {why}; "
                "the wait for VM Operator's objects tells instead"
            )
        return
    if library_id in libraries:
        return
    library = library_id
    with contextlib.suppress(ImageError), connection.content_library() as client:
        library = f"{client.get_library(library_id).name!r} ({library_id})"
    raise ImageError(
        _label(obj, name),
        f"its library {library} is not associated with the Supervisor, so VM Operator never publishes a "
        "cluster image of its items: associate the library with the Supervisor (vSphere Client: the "
        "Supervisor, Configure, VM Service or Image Registry, Content Libraries), or scope the image to "
        "namespaces, which the stack associates itself (docs/reference.md, supervisor mode)",
    )


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
        mode = news.get(MODE)
        if mode is not None and not is_unknown(mode) and mode not in (PUBLISH, SUPERVISOR):
            failures.append(CheckFailure(MODE, f"mode {mode!r} is neither {PUBLISH!r} nor {SUPERVISOR!r}"))
        inputs = {key: news.get(key) for key in INPUTS}
        inputs.update(present(news, INSTANCE, POLICY))
        inputs[MODE] = mode if is_unknown(mode) else recorded_mode(news)
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
        if is_unknown(news.get(MODE)) or recorded_mode(olds) != recorded_mode(news):
            updates.append(MODE)  # in place: the object stays; who writes it changes
        replaces = changed(olds, news, REPLACING)
        return DiffResult(changes=bool(updates or replaces), replaces=replaces)

    def _target(self, props: dict[str, Any]) -> KubeTarget | None:
        if not props.get("kubeconfig") and not props.get("context"):
            return None
        return KubeTarget(props.get("kubeconfig") or None, props.get("context") or None)

    def _publish(self, props: dict[str, Any], owner: str, olds: dict[str, Any] | None = None) -> dict[str, Any]:
        """Publish mode: write the object as ``owner``. Supervisor mode: predict it only (and, for a
        cluster image, check at once that VM Operator can publish it); coming from publish mode
        (``olds``), let go of the object vmimage wrote, which VM Operator publishes now."""
        cluster_scope = self.kind == CLUSTER_KIND
        target = self._target(props)
        supervisor = target is not None and recorded_mode(props) == SUPERVISOR
        with connection.cluster(target) if target is not None else contextlib.nullcontext() as cluster:
            obj, image, library_id = _predict(props, cluster_scope, cluster)
            if image.sync_error:
                warn(f"{props['display_name']!r}: VM Operator would not sync this item: {image.sync_error}")
            if image.not_compliant:
                warn(f"{_label(obj, props['display_name'])}: {not_compliant_line(image.not_compliant)}")
            if cluster is not None and supervisor:
                if cluster_scope and library_id:
                    _require_supervisor_library(cluster, library_id, obj, props["display_name"])
                if olds is not None and olds.get("published"):
                    self._let_go(cluster, obj, olds, props["display_name"])
            elif cluster is not None:
                cluster.publish(obj, owner)
                if olds is not None and recorded_mode(olds) == SUPERVISOR:
                    say(f"{_label(obj, props['display_name'])}: publish mode: vmimage writes it now")
        return {
            **{key: props.get(key) for key in INPUTS},
            **present(props, POLICY),
            "contract": CONTRACT,  # which VM Operator's objects it reproduces: a new one rewrites it in place
            MODE: recorded_mode(props),
            "drift": None,
            "vmi_id": obj["metadata"]["name"],
            "kind": obj["kind"],
            "status": obj["status"],
            "labels": obj["metadata"].get("labels") or {},
            "published": target is not None and not supervisor,
            "owner": None if supervisor else owner,
        }

    def _let_go(self, cluster: ImageObjects, obj: dict[str, Any], olds: dict[str, Any], name: Any) -> None:
        """publish → supervisor: the object vmimage wrote becomes VM Operator's. vmimage takes its
        field manager off it (nothing in it changes) and never writes or deletes it again."""
        label = _label(obj, name)
        meta = obj["metadata"]
        try:
            outcome = cluster.disown(self.kind, meta.get("namespace"), meta["name"], olds.get("owner"))
        except ImageError as error:  # a Supervisor's RBAC may refuse even that: the stale entry is harmless
            warn(
                f"{label}: supervisor mode: vmimage no longer owns this object, but could not take its field "
                f"manager off it ({error}); vmimage will never write or delete it again"
            )
            return
        said = {
            "released": "it stays as it is, without vmimage's field manager",
            "gone": "it is not in the cluster now",
            "not ours": "it carried no field manager of vmimage's",
        }[outcome]
        warn(
            f"{label}: supervisor mode: vmimage no longer owns this object ({said}); VM Operator publishes it "
            "from now on, and vmimage will never write or delete it"
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        outputs = self._publish(props, owner=self.create_owner(props))
        say(f"{outputs['kind']} {outputs['vmi_id']} ({props['display_name']!r}): {self._where(props)}")
        return CreateResult(outputs["vmi_id"], outputs)

    def _where(self, props: dict[str, Any]) -> str:
        """Where the object went, for the create and update lines: a stack without a cluster keeps it in its
        state only."""
        target = self._target(props)
        if target is None:
            return "state only: no cluster configured"
        place = (
            target.describe() if self.kind == CLUSTER_KIND else f"namespace {props['namespace']} of {target.describe()}"
        )
        if recorded_mode(props) == SUPERVISOR:
            return f"predicted: VM Operator publishes it in {place} (supervisor mode)"
        return f"written to {place}"

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # an owner of its own from the first write on (a stack in supervisor mode had none)
        owner = olds.get("owner") or self.create_owner(news)
        outputs = self._publish(news, owner=owner, olds=olds)
        said = f"{outputs['kind']} {outputs['vmi_id']} ({news['display_name']!r})"
        say(f"{said} updated: {self._where(news)}")
        return UpdateResult(outputs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        target = self._target(props)
        if target is None or recorded_mode(props) == SUPERVISOR:
            # supervisor mode: the object is VM Operator's, held to the prediction by the ObservedImages
            # resource and `vmimage verify`; the resource's state is the prediction
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
        inputs[MODE] = recorded_mode(props)
        if drift:  # an input the program never sets: the next diff sees it and `up` rewrites the object
            inputs["drift"] = outputs["drift"] = f"edited outside Pulumi: {', '.join(drift)}"
        return ReadResult(id_, outputs, inputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Decided by the mode the state records, never by the program's: an object of a resource
        in supervisor mode (or one that went over to it) is VM Operator's, and stays."""
        target = self._target(props)
        if target is None or recorded_mode(props) == SUPERVISOR:
            return
        with connection.cluster(target) as cluster:  # already gone counts as done
            outcome = cluster.delete_owned(self.kind, props.get("namespace"), id_, props.get("owner"))
        if outcome == "kept":
            say(f"{self.kind} {id_} stays: another declaration publishes it (of this stack, or another's)")

    def create_owner(self, props: dict[str, Any]) -> str:
        """The owner (field manager) a create applies the object as.

        A new one for every create of a new declaration: when a replace (or a renamed resource)
        publishes the same object before the old declaration is deleted, the old one no longer owns
        it. Yet the same for the same create run again: a `pulumi up` killed mid-apply leaves the
        object applied and the resource unrecorded, and the next run's create must take over that
        object as the same owner, not leave a second manager behind. So: the declaration's token
        (its stack instance and resource name, vmimage/declaration.py) with every input a change of
        which replaces it. Another stack instance, whatever its name, is another owner: its delete
        only lets go of its own fields. Without a declaration, a random owner."""
        return self.token(props, *(props.get(key) for key in REPLACING)) or uuid.uuid4().hex


class VirtualMachineImageProvider(_Image):
    kind = NAMESPACED_KIND


class ClusterVirtualMachineImageProvider(_Image):
    kind = CLUSTER_KIND


def _inputs(mode: str | None = None, instance: pulumi.Input[str] | None = None, **values: Any) -> dict[str, Any]:
    """The resource's properties: the declared inputs (INPUTS) that are set, and the outputs the
    program reads.

    The state keeps every output the provider returns (kind, owner, published too); the program
    gets an Output object for each property named here, and each costs it work per image, so only
    what it sets or reads is named. An unset input is left out rather than passed as None: the
    engine never sees a None input either way."""
    return {
        **({MODE: mode} if mode else {}),
        **({INSTANCE: instance} if instance is not None else {}),
        **{key: value for key in (*INPUTS, POLICY) if (value := values.get(key)) is not None},
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
        instance: pulumi.Input[str] | None = None,
        mode: str | None = None,
        security_policy: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``declaration`` and ``instance`` (the stack instance's salt, providers/instance.py): what
        names this declaration across runs: a create run again after an interrupted one publishes
        as the same owner, and another stack's never does.
        ``mode``: ``publish`` (the default) writes the object; ``supervisor`` predicts it only
        (VM Operator publishes it; ObservedImages holds it to the prediction). ``security_policy``:
        the item's library's (a change republishes: vCenter holds its items compliant anew)."""
        inputs = _inputs(
            mode,
            instance,
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
            security_policy=security_policy,
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
        instance: pulumi.Input[str] | None = None,
        mode: str | None = None,
        security_policy: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``declaration`` and ``instance`` (the stack instance's salt, providers/instance.py): what
        names this declaration across runs: a create run again after an interrupted one publishes
        as the same owner, and another stack's never does.
        ``mode``: ``publish`` (the default) writes the object; ``supervisor`` predicts it only
        (VM Operator publishes it; ObservedImages holds it to the prediction). ``security_policy``:
        the item's library's (a change republishes: vCenter holds its items compliant anew)."""
        inputs = _inputs(
            mode,
            instance,
            item_id=item_id,
            content_version=content_version,
            content_fingerprint=content_fingerprint,
            becomes=becomes,
            display_name=display_name,
            capabilities=capabilities,
            extra_labels=extra_labels,
            kubeconfig=kubeconfig,
            context=context,
            security_policy=security_policy,
        )
        super().__init__(ClusterVirtualMachineImageProvider(declaration), resource_name, inputs, opts)


# --- supervisor mode: waiting for VM Operator, once per catalog -------------------------------

# What an ObservedImages entry says of one image: enough to predict its object again.
ENTRY = (
    "kind",
    "namespace",
    "item_id",
    "content_version",
    "content_fingerprint",
    "display_name",
    "capabilities",
    "extra_labels",
    POLICY,
)
OBSERVER_INPUTS = ("images", "kubeconfig", "context", "wait_seconds", "strict")
DEFAULT_WAIT = 600  # seconds, as vmimage:kubernetes.waitSeconds defaults


def _key(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind} {namespace + '/' if namespace else ''}{name}"


def entry_key(entry: dict[str, Any]) -> str:
    """``Kind [namespace/]vmi-…``: an entry's name in outputs and messages."""
    return _key(str(entry.get("kind")), entry.get("namespace"), vmi_id(str(entry.get("item_id"))))


def _entry(values: dict[str, Any]) -> dict[str, Any]:
    """An entry as the state keeps it: the ENTRY keys that are set (an empty list or dict, or
    None, is not), capabilities sorted; so the same image compares equal however it travelled."""
    entry = {key: value for key in ENTRY if (value := values.get(key)) not in (None, [], {})}
    capabilities = entry.get("capabilities")
    if isinstance(capabilities, list) and not any(is_unknown(c) for c in capabilities):
        entry["capabilities"] = sorted(set(capabilities))
    return entry


def _entry_unknown(entry: Any) -> bool:
    return is_unknown(entry) or (isinstance(entry, dict) and any(is_unknown(entry.get(k)) for k in ENTRY))


class ObservedImagesProvider(VSphereProvider):
    """Waits for VM Operator's objects of a catalog's images and holds each to its prediction.

    Why one resource for all images, run after them: a dynamic provider host answers the engine
    with 4 gRPC workers (pulumi/dynamic/__main__.py, no setting), and the engine runs at most
    4 × CPUs steps at once (`--parallel`). An image resource that waited in its create would hold
    both for as long as VM Operator takes, so four of them stalled every other resource of the
    run. This resource holds one worker and one step, for one deadline (``wait_seconds``) shared
    by all the images it waits for: the image resources only predict, and return at once."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        images = news.get("images")
        entries: Any = images
        if not is_unknown(images):
            if not isinstance(images, list) or not all(is_unknown(e) or isinstance(e, dict) for e in images):
                failures.append(CheckFailure("images", "images is a list of image entries"))
                entries = []
            else:
                entries = [e if is_unknown(e) else _entry(e) for e in images]
                for entry in entries:
                    kind = None if is_unknown(entry) else entry.get("kind")
                    if kind is not None and not is_unknown(kind) and kind not in (CLUSTER_KIND, NAMESPACED_KIND):
                        failures.append(CheckFailure("images", f"kind {kind!r} is not an image kind"))
                if not any(_entry_unknown(e) for e in entries):
                    entries = sorted(entries, key=entry_key)
        wait = news.get("wait_seconds")
        if not is_unknown(wait) and (not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 1):
            failures.append(CheckFailure("wait_seconds", "wait_seconds is a number of seconds, at least 1"))
        kubeconfig = news.get("kubeconfig")
        if isinstance(kubeconfig, str) and (problem := kubeconfig_problem(kubeconfig)):
            failures.append(CheckFailure("kubeconfig", f"kubeconfig {problem}"))
        inputs = {key: news.get(key) for key in OBSERVER_INPUTS}
        inputs["images"] = entries
        inputs["strict"] = news.get("strict") is True
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        images = news.get("images")
        unknown = is_unknown(images) or any(_entry_unknown(e) for e in images or [])
        settings = changed(olds, news, tuple(k for k in OBSERVER_INPUTS if k != "images"))
        before = [_entry(e) for e in olds.get("images") or []]
        return DiffResult(changes=unknown or bool(settings) or before != images, replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        observed = self._observe(props, list(props.get("images") or []))
        return CreateResult(f"vm-operator-{uuid.uuid4().hex[:12]}", {**props, "observed": observed})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Waits again only for the images that changed (or all, for another cluster or setting)."""
        entries = list(news.get("images") or [])
        if changed(olds, news, tuple(k for k in OBSERVER_INPUTS if k != "images")):
            todo = entries
        else:
            before = {entry_key(e): _entry(e) for e in olds.get("images") or []}
            todo = [e for e in entries if before.get(entry_key(e)) != e]
        keys = {entry_key(e) for e in entries}
        kept = {key: value for key, value in (olds.get("observed") or {}).items() if key in keys}
        return UpdateResult({**news, "observed": {**kept, **self._observe(news, todo)}})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)  # `vmimage verify` compares again, whenever asked

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        return None  # VM Operator's objects are not vmimage's to delete

    def _observe(self, props: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
        """Predict each entry's object, wait (one deadline for all) until VM Operator's object of
        that name has every field it derives from the item as predicted, then compare: each
        difference is a warning, or the failure under ``strict``; an object VM Operator never
        published fails. Returns, per entry, "as predicted" or its differences."""
        if not entries:
            return {}
        wait = float(props.get("wait_seconds") or DEFAULT_WAIT)
        strict = bool(props.get("strict"))
        target = KubeTarget(props.get("kubeconfig") or None, props.get("context") or None)
        with connection.cluster(target) as cluster:
            predicted = {entry_key(e): (e, _predict(e, e["kind"] == CLUSTER_KIND, cluster)[0]) for e in entries}
            live = self._wait(cluster, predicted, wait)
        results: dict[str, Any] = {}
        missing, failing = [], []
        for key, (entry, prediction) in predicted.items():
            label = _label(prediction, entry.get("display_name"))
            found = live.get(key)
            if found is None:
                where = f"namespace {entry['namespace']}" if entry.get("namespace") else "cluster scope"
                missing.append(
                    f"{label}: VM Operator has not published it within {wait:.0f} s: is the item's library "
                    f"associated with the {'namespace' if entry.get('namespace') else 'Supervisor'} ({where}), "
                    f"and is VM Operator running? (kubectl get "
                    f"{'vmi -n ' + entry['namespace'] if entry.get('namespace') else 'cvmi'} "
                    f"{prediction['metadata']['name']})"
                )
                results[key] = "not published"
                continue
            lines = differences(prediction, found)
            late = behind(found, prediction)
            if late:
                lines = [f"(VM Operator had not caught up within {wait:.0f} s: {', '.join(late)})", *lines]
            results[key] = lines or "as predicted"
            if lines and strict:
                failing.append(
                    f"{label}: VM Operator's object differs from the prediction (strict):\n  " + "\n  ".join(lines)
                )
            elif lines:
                warn(f"{label}: VM Operator's object differs from the prediction:\n  " + "\n  ".join(lines))
        if missing or failing:
            raise ImageError(
                "supervisor mode", "\n".join(["VM Operator's objects are not as predicted:", *missing, *failing])
            )
        return results

    def _wait(
        self, cluster: ImageObjects, predicted: dict[str, tuple[dict[str, Any], dict[str, Any]]], wait: float
    ) -> dict[str, dict[str, Any]]:
        """VM Operator's objects of the predicted names, once all have caught up with their items
        or ``wait`` seconds have passed (then as they are; absent ones left out). One list per
        kind and namespace a round, every POLL_SECONDS, with a progress line every PROGRESS_SECONDS."""
        started = last_said = time.monotonic()
        found: dict[str, dict[str, Any]] = {}
        while True:
            pending = [key for key, (_, obj) in predicted.items() if behind(found.get(key), obj)]
            scopes = {(predicted[key][0]["kind"], predicted[key][0].get("namespace")) for key in pending}
            for kind, namespace in sorted(scopes, key=lambda s: (s[0], s[1] or "")):
                for obj in cluster.list(kind, namespace):
                    key = _key(kind, namespace, obj["metadata"]["name"])
                    if key in predicted:
                        found[key] = obj
            pending = [key for key, (_, obj) in predicted.items() if behind(found.get(key), obj)]
            now = time.monotonic()
            if not pending or now - started >= wait:
                return found
            if now - last_said >= PROGRESS_SECONDS:
                last_said = now
                shown = ", ".join(
                    f"{key} ({', '.join(behind(found.get(key), predicted[key][1]))})" for key in pending[:5]
                )
                more = f" and {len(pending) - 5} more" if len(pending) > 5 else ""
                say(
                    f"waiting for VM Operator ({now - started:.0f} s of {wait:.0f} s): {len(pending)} of "
                    f"{len(predicted)} images not as predicted yet: {shown}{more}"
                )
            time.sleep(POLL_SECONDS)


class ObservedImages(pulumi.dynamic.Resource, module="vmimage", name="ObservedImages"):
    """Supervisor mode: VM Operator's objects of a catalog's images, waited for once and held to
    their predictions. Type token: pulumi-python:dynamic/vmimage:ObservedImages."""

    observed: pulumi.Output[dict]

    def __init__(
        self,
        resource_name: str,
        *,
        images: pulumi.Input[list[dict[str, Any]]],
        wait_seconds: int,
        strict: bool,
        kubeconfig: str | None = None,
        context: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``images``: one entry per image resource (ENTRY: its kind, namespace and the inputs it
        predicts from). ``opts`` should make it depend on the image resources and the namespace
        associations, so that it waits after everything else it needs."""
        inputs = {
            "images": images,
            "wait_seconds": wait_seconds,
            "strict": strict,
            **{key: value for key, value in (("kubeconfig", kubeconfig), ("context", context)) if value},
            "observed": None,
        }
        super().__init__(ObservedImagesProvider(), resource_name, inputs, opts)
