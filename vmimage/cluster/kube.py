"""VirtualMachineImage objects in a Kubernetes cluster, with the official client.

Objects are written with server-side apply at the version VM Operator's CRDs serve, one field
manager per catalog declaration (``vmimage/<owner>``), and their status through the status
subresource, also by apply so fields the image no longer has go away. Errors name the cluster
and the call, never the credentials.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from vmimage.cluster.kubeconfig import kubeconfig_problem
from vmimage.contract.models import CLUSTER_KIND, GROUP, IMAGE_REGISTRY_GROUP, IMAGE_REGISTRY_VERSION, VERSION, VERSIONS
from vmimage.errors import ImageError

log = logging.getLogger("vmimage.kube")
FIELD_MANAGER = "vmimage"  # the CLI's and tests' writes; a catalog declaration writes as owner_manager(owner)
OWNER_MANAGER_PREFIX = "vmimage/"
APPLY = "application/apply-patch+yaml"
ITEM_PLURALS = {"ClusterContentLibraryItem": "clustercontentlibraryitems", "ContentLibraryItem": "contentlibraryitems"}
BEFORE_FIRST_APPLY = "before-first-apply"  # the API server's owner of an untracked object's fields
CONFLICT = object()  # what _call answers for 409 Conflict when the caller expects it
# Per cluster, the image version it serves: asked once per process (a provider host publishes many images).
_SERVED: dict[KubeTarget, str] = {}
PLURALS = {"VirtualMachineImage": "virtualmachineimages", "ClusterVirtualMachineImage": "clustervirtualmachineimages"}


def owner_manager(owner: str) -> str:
    """The field manager a catalog declaration writes its object with. Several declarations can
    publish one object (a replace creates the new declaration before it deletes the old one; a
    renamed synced item moves to a new resource): each is a manager of its own, and the object
    itself carries nothing VM Operator's would not."""
    return OWNER_MANAGER_PREFIX + owner


LEGACY_OWNER_ANNOTATION = "vmimage.io/owner"  # where releases before the VM Operator contract kept it


def _legacy_entries(obj: dict | None, subresource: str) -> list[dict]:
    """What the earlier releases' field manager (``vmimage``) applied to the object or its status."""
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [
        entry
        for entry in entries
        if entry.get("manager") == FIELD_MANAGER
        and entry.get("operation") == "Apply"
        and (entry.get("subresource") or "") == subresource
    ]


def _holds(entry: dict, *path: str) -> bool:
    """Whether a managedFields entry owns the field at ``path`` (field names, without ``f:``)."""
    node = entry.get("fieldsV1") or {}
    for name in path:
        node = node.get(f"f:{name}")
        if not isinstance(node, dict):
            return False
    return True


def written_by_an_earlier_release(obj: dict | None) -> bool:
    """A live object that a release before the VM Operator contract wrote, and none has rewritten
    since: its field manager (``vmimage``) applied the owner annotation, or a status whose disks
    have no names (VM Operator's CRD requires them). An object with the annotation and no
    managedFields at all counts too: the API server drops every object's field ownership when
    it cannot read the old status (someone's update after the CRDs changed, or the rewrite
    below cut off between its two writes). Anyone else's object is not detected, whatever its shape."""
    metadata = (obj or {}).get("metadata") or {}
    annotated = LEGACY_OWNER_ANNOTATION in (metadata.get("annotations") or {})
    if annotated and not metadata.get("managedFields"):
        return True
    if any(_holds(e, "metadata", "annotations", LEGACY_OWNER_ANNOTATION) for e in _legacy_entries(obj, "")):
        return True
    return _nameless_disks(obj) and any(_holds(e, "status", "disks") for e in _legacy_entries(obj, "status"))


def _nameless_disks(obj: dict | None) -> bool:
    """Whether the object's status has a disk without a name (the shape of the CRDs before VM Operator's)."""
    disks = ((obj or {}).get("status") or {}).get("disks") or []
    return any(not isinstance(disk, dict) or "name" not in disk for disk in disks)


def _without(fields: dict, *path: str) -> dict:
    """A fieldsV1 set without the field at ``path`` (and without the parents it leaves empty)."""
    if not path:
        return fields
    key = f"f:{path[0]}"
    if not isinstance(fields.get(key), dict):
        return fields
    rest = {k: v for k, v in fields.items() if k != key}
    inner = _without(fields[key], *path[1:]) if len(path) > 1 else {}
    return {**rest, key: inner} if inner else rest


def _merge_fields(one: dict, other: dict) -> dict:
    """The union of two fieldsV1 sets."""
    merged = dict(one)
    for key, value in other.items():
        merged[key] = _merge_fields(merged[key], value) if isinstance(merged.get(key), dict) else value
    return merged


def _merge_entries(kept: list[dict], live: list[dict]) -> list[dict]:
    """Field ownership to restore after the status rewrite dropped it: what was read before it
    (``kept``) and what writers since recorded (``live``): one entry per manager, operation and
    subresource (as the API server keys them), at the version of the latest write. Both versions
    of VM Operator's images have the same fields."""
    if kept:  # the server's stand-in for what was there before it tracked again: ``kept`` says it better
        live = [entry for entry in live if entry.get("manager") != BEFORE_FIRST_APPLY]
    merged: dict[tuple, dict] = {}
    for entry in [*kept, *live]:
        key = (entry.get("manager"), entry.get("operation"), entry.get("subresource") or "")
        if key in merged:
            fields = _merge_fields(merged[key].get("fieldsV1") or {}, entry.get("fieldsV1") or {})
            merged[key] = {**entry, "fieldsV1": fields}
        else:
            merged[key] = entry
    return list(merged.values())


def object_owners(obj: dict | None) -> set[str]:
    """The declarations that publish a live object: its ``vmimage/…`` field managers (or, for an
    object an earlier release wrote and none has rewritten yet, its owner annotation)."""
    metadata = (obj or {}).get("metadata") or {}
    owners = {  # what a declaration applies; its one-off rewrite of an older object (an Update) does not count
        str(entry["manager"])[len(OWNER_MANAGER_PREFIX) :]
        for entry in metadata.get("managedFields") or []
        if str(entry.get("manager", "")).startswith(OWNER_MANAGER_PREFIX) and entry.get("operation") == "Apply"
    }
    legacy = (metadata.get("annotations") or {}).get(LEGACY_OWNER_ANNOTATION)
    return owners or ({legacy} if legacy else set())


@dataclass(frozen=True)
class KubeTarget:
    """Which cluster: a kubeconfig file (default: $KUBECONFIG, ~/.kube/config) and a context in it."""

    kubeconfig: str | None = None
    context: str | None = None

    def __post_init__(self) -> None:
        for name, value in (("kubeconfig", self.kubeconfig), ("$KUBECONFIG", os.environ.get("KUBECONFIG"))):
            if value and (problem := kubeconfig_problem(value)):
                raise ImageError(name, problem)

    def describe(self) -> str:
        return f"cluster {self.context or '(current context)'} of {self.kubeconfig_name()}"

    def kubeconfig_name(self) -> str:
        """The kubeconfig this target reads, as a user would name it."""
        return self.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"


@dataclass(frozen=True)
class Refusal:
    """An HTTP status the caller of ImageObjects._call expects, and the server's reason."""

    status: int
    reason: str


class ImageObjects:
    """Read and write image objects in one cluster."""

    def __init__(self, target: KubeTarget, retries: int | None = None) -> None:
        """``retries``: urllib3's retries of a failed connection (its default, 3, when None)."""
        from kubernetes import client, config  # the client is heavy: import where used

        self.target = target
        configuration = client.Configuration()
        configuration.retries = retries
        # connections kept for reuse: a provider host shares one client among its parallel calls
        # (urllib3 drops, with a warning, every connection beyond the pool's size)
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize, 32)
        try:
            path = os.path.expanduser(target.kubeconfig) if target.kubeconfig else None
            if path is None and "KUBERNETES_SERVICE_HOST" in os.environ and not os.environ.get("KUBECONFIG"):
                config.load_incluster_config(client_configuration=configuration)  # a pod's service account
                self.api_client = client.ApiClient(configuration)
            else:
                self.api_client = config.new_client_from_config(
                    config_file=path, context=target.context, client_configuration=configuration
                )
        except (config.ConfigException, OSError, ValueError, TypeError) as exc:
            where = "in-cluster service account" if "KUBERNETES_SERVICE_HOST" in os.environ else "kubeconfig"
            raise ImageError(
                f"{where} {target.kubeconfig_name()}",
                f"cannot use it: {exc} (give --kubeconfig, set KUBECONFIG, or run in a pod)",
            ) from None
        self.api = client.CustomObjectsApi(self.api_client)
        self._version: str | None = None

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> ImageObjects:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(
        self,
        what: str,
        call,
        *args: Any,
        allow_missing: bool = False,
        allow_conflict: bool = False,
        refusals: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """The call's answer; None for 404 with allow_missing, CONFLICT for 409 with allow_conflict,
        a Refusal for an HTTP status in ``refusals``."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return call(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and allow_missing:
                return None
            if exc.status == 409 and allow_conflict:
                return CONFLICT
            if exc.status in refusals:
                return Refusal(exc.status, _reason(exc))
            raise ImageError(f"Kubernetes {self.target.describe()}", f"{what}: {_reason(exc)}") from None
        except HTTPError as exc:
            raise ImageError(f"Kubernetes {self.target.describe()}", f"{what}: connection failed ({exc})") from None

    def image_version(self) -> str:
        """The version to write images at: v1alpha6 where the cluster serves it, else v1alpha5.

        VM Operator's CRDs serve v1alpha1–v1alpha6 and store v1alpha6; the image schema is the same
        in both, so the newest served one is written. Read from API discovery, which every
        authenticated user may read; a cluster without the group answers VERSION."""
        if self._version is None:
            self._version = _SERVED.get(self.target) or self._discover()
        return self._version

    def _discover(self) -> str:
        from kubernetes import client

        groups = self._call(f"discover {GROUP}", client.ApisApi(self.api_client).get_api_versions)
        served = {
            version.version
            for group in (groups.groups or [] if groups else [])
            if group.name == GROUP
            for version in group.versions or []
        }
        found = next((v for v in reversed(VERSIONS) if v in served), None)
        if found is not None:  # remembered for the process; an absent group is asked again (CRDs may come)
            _SERVED[self.target] = found
        return found or VERSION

    def _scope(self, kind: str, namespace: str | None) -> tuple[str, dict[str, Any]]:
        where = {"group": GROUP, "version": self.image_version(), "plural": PLURALS[kind]}
        if kind == CLUSTER_KIND:
            return "cluster", where
        return "namespaced", {**where, "namespace": namespace}

    def _apply(
        self,
        obj: dict[str, Any],
        fields: dict[str, Any],
        manager: str,
        what: str,
        status: bool = False,
        **tolerate: bool,
    ) -> Any:
        """Server-side apply of ``fields`` (over the object's apiVersion, kind, name and namespace),
        to the object or its status subresource. ``tolerate``: _call's allow_missing, allow_conflict."""
        meta = obj["metadata"]
        scope, where = self._scope(obj["kind"], meta.get("namespace"))
        body = {
            "apiVersion": f"{GROUP}/{where['version']}",
            "kind": obj["kind"],
            "metadata": {k: meta[k] for k in ("name", "namespace") if meta.get(k)},
            **fields,
        }
        call = getattr(self.api, f"patch_{scope}_custom_object{'_status' if status else ''}")
        return self._call(
            f"{what} {obj['kind']} {meta['name']}",
            call,
            name=meta["name"],
            body=body,
            field_manager=manager,
            force=True,
            _content_type=APPLY,
            **tolerate,
            **where,
        )

    def apply(self, obj: dict[str, Any], manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Create or update the object (all but its status) by server-side apply."""
        fields = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
        return self._apply(obj, fields, manager, "apply")

    def apply_status(self, obj: dict[str, Any], manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Write the object's status through the status subresource."""
        return self._apply(obj, {"status": obj["status"]}, manager, "write the status of", status=True)

    def publish(self, obj: dict[str, Any], owner: str) -> None:
        """Apply the object and its status as ``owner``'s declaration, and give up what earlier
        writers (the legacy ``vmimage`` manager) set that this object no longer has."""
        manager = owner_manager(owner)
        previous = self.get(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if written_by_an_earlier_release(previous):
            self._rewrite(obj, manager)
        elif _nameless_disks(previous):  # server-side apply cannot read it, and it is not vmimage's to rewrite
            raise ImageError(
                f"{obj['kind']} {obj['metadata']['name']}",
                "its status has disks without names, which VM Operator's CRD does not allow, and it was not "
                "written by vmimage: left alone; correct its status or delete it, then run `up` again",
            )
        live = self.apply(obj, manager)
        self.apply_status(obj, manager)
        for entry in (live or {}).get("metadata", {}).get("managedFields") or []:
            if entry.get("manager") == FIELD_MANAGER:
                self.release(obj, subresource=entry.get("subresource") or "")  # the object exists: just applied

    def _rewrite(self, obj: dict[str, Any], manager: str) -> None:
        """Move an object an earlier release wrote to what VM Operator's CRD allows, touching only
        what that release wrote. Its status (disks without names, which server-side apply cannot
        even read) is replaced by a JSON patch; the API server then drops the object's field
        ownership, every manager's, because it could not read the old object. A second patch
        removes the release's owner annotation and puts back the ownership read before: others'
        as it was, the release's (``vmimage``) without the status and the annotation, so that
        the release of its fields after the apply that follows removes the labels it alone set.
        Every other label and annotation stays. Each patch holds on the resourceVersion it was
        computed from and is computed again from a new read when another writer got in between."""
        meta = obj["metadata"]
        scope, where = self._scope(obj["kind"], meta.get("namespace"))
        names = {"name": meta["name"], **where}
        what = f"rewrite {obj['kind']} {meta['name']} as VM Operator's"
        busy = ImageError(f"{obj['kind']} {meta['name']}", f"{what}: another writer kept changing it; run `up` again")
        json_patch = {"_content_type": "application/json-patch+json", "refusals": (409, 422), **names}
        status_call = getattr(self.api, f"patch_{scope}_custom_object_status")
        object_call = getattr(self.api, f"patch_{scope}_custom_object")
        live: Any = None
        for _ in range(5):  # the status, from the object as read
            live = self.get(obj["kind"], meta.get("namespace"), meta["name"])
            if not written_by_an_earlier_release(live):
                return  # gone, or rewritten already (by a parallel run), or never the release's
            kept = _ownership_to_keep(live)
            status = [_unchanged_since(live), {"op": "add", "path": "/status", "value": obj["status"]}]
            live = self._call(what, status_call, body=status, field_manager=manager, allow_missing=True, **json_patch)
            if not isinstance(live, Refusal):  # 422: the test failed, the version moved on; read again
                break
        else:
            raise busy
        for _ in range(5):  # the metadata, from the object as the status write left it (or as read since)
            if live is None or LEGACY_OWNER_ANNOTATION not in ((live.get("metadata") or {}).get("annotations") or {}):
                return  # gone, or another run finished the rewrite
            ownership = _merge_entries(kept, live["metadata"].get("managedFields") or [])
            patch = [
                _unchanged_since(live),
                {"op": "remove", "path": "/metadata/annotations/" + _pointer(LEGACY_OWNER_ANNOTATION)},
                *([{"op": "add", "path": "/metadata/managedFields", "value": ownership}] if ownership else []),
            ]
            answer = self._call(what, object_call, body=patch, field_manager=manager, allow_missing=True, **json_patch)
            if not isinstance(answer, Refusal):
                return
            live = self.get(obj["kind"], meta.get("namespace"), meta["name"])
        raise busy

    def release(
        self, obj: dict[str, Any], manager: str = FIELD_MANAGER, subresource: str = "", version: str | None = None
    ) -> None:
        """Apply nothing as ``manager`` (by default the legacy one): the fields only it held go away.
        ``version``: the resourceVersion read, so that an object deleted since is not made anew."""
        meta = obj["metadata"]
        named = {k: meta[k] for k in ("name", "namespace") if meta.get(k)}
        fields = {"metadata": {**named, "resourceVersion": version}} if version else {}
        status = subresource == "status"
        self._apply(obj, fields, manager, "release the fields of", status, allow_missing=True, allow_conflict=True)

    def item_uid(self, kind: str, namespace: str | None, name: str) -> str | None:
        """The uid of the image registry's item object, when the cluster has one (else None):
        VM Operator makes it the owner of the image."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        where = {"group": IMAGE_REGISTRY_GROUP, "version": IMAGE_REGISTRY_VERSION, "plural": ITEM_PLURALS[kind]}
        try:
            if namespace is None:
                found = self.api.get_cluster_custom_object(name=name, **where)
            else:
                found = self.api.get_namespaced_custom_object(name=name, namespace=namespace, **where)
        except (ApiException, HTTPError):  # no image registry, or no right to read it: no owner
            return None
        return (found.get("metadata") or {}).get("uid")

    def supervisor_libraries(self) -> tuple[set[str] | None, str]:
        """The vCenter libraries associated with the Supervisor itself, as its image registry has
        them: the ``spec.uuid`` of each ClusterContentLibrary (VM Operator publishes cluster
        images from exactly these). ``(None, why)`` where the cluster cannot say: it serves no
        ClusterContentLibrary (not a Supervisor, or one before vSphere 8.0 U2) or does not let
        this user list them. Any other error is raised, never read as "none"."""
        where = {"group": IMAGE_REGISTRY_GROUP, "version": IMAGE_REGISTRY_VERSION, "plural": "clustercontentlibraries"}
        found = self._call(
            "list ClusterContentLibrary", self.api.list_cluster_custom_object, refusals=(403, 404), **where
        )
        if isinstance(found, Refusal):
            what = "does not serve" if found.status == 404 else "does not let this user list"
            return None, f"{self.target.describe()} {what} ClusterContentLibrary objects ({found.reason})"
        uuids = {str((obj.get("spec") or {}).get("uuid") or "") for obj in (found or {}).get("items") or []}
        return uuids - {""}, ""

    def disown(
        self, kind: str, namespace: str | None, name: str, owner: str | None, subresource: str | None = None
    ) -> str:
        """Let go of an object without touching it: take ``owner``'s field manager (and the
        legacy one) out of its managedFields, so no field is vmimage's any more and none is
        removed (an empty apply would remove the fields only vmimage held). "released", "gone"
        (no such object), or "not ours". Conditional on the version read: tried again when another
        writer (VM Operator) got in between. ``subresource``: only the managers' entries of that
        one ("status"), the others' kept."""
        managers = {FIELD_MANAGER} | ({owner_manager(owner)} if owner else set())
        scope, where = self._scope(kind, namespace)
        call = getattr(self.api, f"patch_{scope}_custom_object")
        for _ in range(5):
            live = self.get(kind, namespace, name)
            if live is None:
                return "gone"
            entries = (live.get("metadata") or {}).get("managedFields") or []
            kept = [
                entry
                for entry in entries
                if entry.get("manager") not in managers
                or (subresource is not None and (entry.get("subresource") or "") != subresource)
            ]
            if len(kept) == len(entries):
                return "not ours"
            patch = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": live["metadata"]["resourceVersion"]},
                # an empty list leaves managedFields as they are; [{}] clears them (the API's rule)
                {"op": "replace", "path": "/metadata/managedFields", "value": kept or [{}]},
            ]
            answer = self._call(
                f"release {kind} {name}", call, name=name, body=patch, refusals=(409, 422),
                _content_type="application/json-patch+json", allow_missing=True, **where,
            )  # fmt: skip
            if not isinstance(answer, Refusal):  # 422: the test failed, the version moved on
                return "released" if answer is not None else "gone"
        raise ImageError(f"{kind} {name}", "could not release it: another writer kept changing it; run `up` again")

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        scope, where = self._scope(kind, namespace)
        call = getattr(self.api, f"get_{scope}_custom_object")
        return self._call(f"read {kind} {name}", call, name=name, allow_missing=True, **where)

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Delete; False when it was already gone."""
        scope, where = self._scope(kind, namespace)
        call = getattr(self.api, f"delete_{scope}_custom_object")
        return self._call(f"delete {kind} {name}", call, name=name, allow_missing=True, **where) is not None

    def delete_owned(self, kind: str, namespace: str | None, name: str, owner: str | None) -> str:
        """Delete the object only while ``owner`` alone publishes it: "deleted", "gone", or "kept"
        (another declaration publishes it too, or instead: ``owner`` lets go of its fields and the
        object stays as the other declares it). The delete is conditional on the version read, so
        another declaration's apply between the read and the delete keeps the object. Of the
        status, derived from the item by every owner alike, it gives up its ownership and leaves
        the values: the last to apply holds fields no other does (a condition's transition time),
        whose removal would leave the object invalid."""
        live = self.get(kind, namespace, name)
        if live is None:
            return "gone"
        owners = object_owners(live)
        if owner is None or owner not in owners:
            return "kept"
        if owners - {owner}:
            obj = {"apiVersion": live.get("apiVersion"), "kind": kind, "metadata": live["metadata"]}
            self.release(obj, manager=owner_manager(owner), version=live["metadata"].get("resourceVersion"))
            self.disown(kind, namespace, name, owner, subresource="status")
            return "kept"
        scope, where = self._scope(kind, namespace)
        call = getattr(self.api, f"delete_{scope}_custom_object")
        version = live["metadata"].get("resourceVersion")
        options = {"body": {"preconditions": {"resourceVersion": version}}} if version else {}
        result = self._call(
            f"delete {kind} {name}", call, name=name, allow_missing=True, allow_conflict=True, **where, **options
        )
        if result is CONFLICT:
            return "kept"
        return "deleted" if result is not None else "gone"

    def list(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        options = {"label_selector": label_selector} if label_selector else {}
        if kind == CLUSTER_KIND or namespace is None:
            _, where = self._scope(CLUSTER_KIND, None)
            where["plural"] = PLURALS[kind]
            result = self._call(f"list {kind}", self.api.list_cluster_custom_object, **where, **options)
        else:
            _, where = self._scope(kind, namespace)
            result = self._call(f"list {kind}", self.api.list_namespaced_custom_object, **where, **options)
        return list((result or {}).get("items") or [])


def _unchanged_since(live: dict[str, Any]) -> dict[str, Any]:
    """A JSON patch's precondition: the object is still at the version read."""
    return {"op": "test", "path": "/metadata/resourceVersion", "value": live["metadata"]["resourceVersion"]}


def _pointer(key: str) -> str:
    """A map key as a JSON pointer's segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _ownership_to_keep(live: dict[str, Any]) -> list[dict[str, Any]]:
    """The object's managedFields as the status rewrite should leave them: none of the status
    (replaced whole, it is the apply's that follows), and not the earlier release's owner annotation."""
    kept = []
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if (entry.get("subresource") or "") == "status":
            continue
        fields = _without(entry.get("fieldsV1") or {}, "metadata", "annotations", LEGACY_OWNER_ANNOTATION)
        fields = {k: v for k, v in fields.items() if k != "f:status"}
        if fields:
            kept.append({**entry, "fieldsV1": fields})
    return kept


def read_crds(target: KubeTarget, names: list[str]) -> dict[str, dict[str, Any] | None]:
    """The CustomResourceDefinitions of these names as the cluster has them (None: absent)."""
    from kubernetes import client

    found: dict[str, dict[str, Any] | None] = {}
    with ImageObjects(target) as objects:
        api = client.ApiextensionsV1Api(objects.api_client)
        for name in names:
            live = objects._call(
                f"read CustomResourceDefinition {name}", api.read_custom_resource_definition, name, allow_missing=True
            )
            found[name] = objects.api_client.sanitize_for_serialization(live) if live is not None else None
    return found


def _reason(exc: Any) -> str:
    """HTTP status and the API server's message, from its Status body (never request headers)."""
    import json

    message = ""
    try:
        body = json.loads(exc.body or "{}")
        message = body.get("message", "")
    except (ValueError, TypeError, AttributeError):
        message = str(exc.body or "")[:300]
    return f"HTTP {exc.status} {exc.reason}" + (f" ({message})" if message else "")


class ImageCache:
    """Every image of both kinds in one cluster, kept current by list + watch (what the webhook resolves
    against). Needs RBAC to get, list and watch virtualmachineimages and clustervirtualmachineimages.

    Ready once both kinds are listed, and only while the cache is fresh: a list or a watch has
    succeeded within ``stale_after`` seconds. Failures are retried with exponential backoff
    (``backoff`` doubling up to ``max_backoff``), counted, and logged at most once a minute."""

    LOG_EVERY = 60.0

    def __init__(
        self,
        target: KubeTarget,
        watch_seconds: int = 300,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        stale_after: float | None = None,
    ) -> None:
        self.target = target
        self.watch_seconds = watch_seconds
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stale_after = stale_after if stale_after is not None else watch_seconds + 60.0
        self._objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._listed = {kind: threading.Event() for kind in PLURALS}
        self._last_ok = {kind: 0.0 for kind in PLURALS}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.error_count = 0
        self.last_error: str | None = None
        self._logged_at = {kind: -self.LOG_EVERY for kind in PLURALS}
        self._unlogged = {kind: 0 for kind in PLURALS}

    @property
    def ready(self) -> bool:
        now = time.monotonic()
        return all(self._listed[kind].is_set() and now - self._last_ok[kind] < self.stale_after for kind in PLURALS)

    def wait_ready(self, timeout: float) -> bool:
        return all(event.wait(timeout) for event in self._listed.values())

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._objects.values())

    def start(self) -> ImageCache:
        """Check the kubeconfig here, in the caller's thread (a bad one is the caller's ImageError),
        then list and watch each kind in a thread of its own."""
        ImageObjects(self.target).close()
        for kind in PLURALS:
            thread = threading.Thread(target=self._run, args=(kind,), name=f"watch-{PLURALS[kind]}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()

    def _key(self, kind: str, obj: dict[str, Any]) -> tuple[str, str | None, str]:
        meta = obj.get("metadata") or {}
        return kind, meta.get("namespace"), meta.get("name", "")

    def _failed(self, kind: str, exc: BaseException) -> None:
        self.error_count += 1
        self.last_error = f"{kind}: {type(exc).__name__}: {str(exc)[:200]}"
        now = time.monotonic()
        if now - self._logged_at[kind] >= self.LOG_EVERY:
            more = f" ({self._unlogged[kind]} more failures since the last report)" if self._unlogged[kind] else ""
            log.warning(
                "%s: list/watch failed on %s: %s%s", PLURALS[kind], self.target.describe(), self.last_error, more
            )
            self._logged_at[kind], self._unlogged[kind] = now, 0
        else:
            self._unlogged[kind] += 1

    def _run(self, kind: str) -> None:
        from kubernetes import watch

        objects = ImageObjects(self.target, retries=0)  # this loop retries, with backoff
        where = {"group": GROUP, "version": VERSION, "plural": PLURALS[kind]}
        with contextlib.suppress(ImageError):  # discovery failed: read the version every VM Operator serves
            where["version"] = objects.image_version()
        delay = self.backoff
        while not self._stopping.is_set():
            try:
                listed = objects.api.list_cluster_custom_object(**where, _request_timeout=30)
                with self._lock:
                    for key in [k for k in self._objects if k[0] == kind]:
                        del self._objects[key]
                    for obj in listed.get("items") or []:
                        self._objects[self._key(kind, obj)] = {**obj, "kind": kind}
                self._listed[kind].set()
                self._last_ok[kind] = time.monotonic()
                delay = self.backoff
                version = (listed.get("metadata") or {}).get("resourceVersion")
                stream = watch.Watch().stream(
                    objects.api.list_cluster_custom_object,
                    resource_version=version,
                    timeout_seconds=self.watch_seconds,
                    _request_timeout=self.watch_seconds + 15,  # a half-open connection ends too
                    **where,
                )
                for event in stream:
                    if self._stopping.is_set():
                        break
                    obj = event.get("object") or {}
                    with self._lock:
                        if event.get("type") == "DELETED":
                            self._objects.pop(self._key(kind, obj), None)
                        elif event.get("type") in ("ADDED", "MODIFIED"):
                            self._objects[self._key(kind, obj)] = {**obj, "kind": kind}
                    self._last_ok[kind] = time.monotonic()
                self._last_ok[kind] = time.monotonic()  # the watch ran its course: then list again
            except Exception as exc:  # relist after a pause; 410 Gone, timeouts and refusals land here
                self._failed(kind, exc)
                self._stopping.wait(delay)
                delay = min(delay * 2, self.max_backoff)
