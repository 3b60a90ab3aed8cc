"""The mutation the webhook applies to a VirtualMachine: display name in, VMI ID out. Pure.

A CREATE of a VirtualMachine whose ``spec.imageName`` is set and ``spec.image`` is not gets a
JSONPatch that sets ``spec.imageName`` to the VMI ID and ``spec.image`` to ``{kind, name}``;
one that already has ``spec.image`` passes unchanged; a name that resolves to nothing or to
several images is denied with the resolver's message. Either kind of VM is checked against
its ``vmimage.io/required-capabilities`` annotation, and refused when the image it gets is
NotReady for security compliance (VM Operator would deploy nothing from it). ``mutating_webhook``
is the registration that sends the API server's VMs here: exactly those this module has
something to do for.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from vmimage.admission.resolve import (
    REQUIRED_CAPABILITIES_ANNOTATION,
    ResolutionError,
    UnknownImage,
    check_capabilities,
    check_security,
    image_reference,
    parse_capabilities,
    resolve,
)
from vmimage.contract.models import GROUP

API_VERSION = "admission.k8s.io/v1"


# CEL over the VM being created: the webhook is called only for a VM with a display name to
# resolve, or with capabilities to check (whatever names its image).
MATCH_CONDITIONS = [
    {
        "name": "names-an-image-or-requires-capabilities",
        "expression": (
            "(has(object.spec.imageName) && !has(object.spec.image)) || "
            f"(has(object.metadata.annotations) && '{REQUIRED_CAPABILITIES_ANNOTATION}' in object.metadata.annotations)"
        ),
    }
]


def mutating_webhook(client_config: Any, failure_policy: str = "Fail", timeout_seconds: int = 5) -> dict[str, Any]:
    """The MutatingWebhookConfiguration's webhook that sends VM creates to ``review``.
    ``client_config``: the API server's way to the webhook (a service, or a URL)."""
    return {
        "name": "image-names.vmimage.vmoperator.vmware.com",
        "clientConfig": client_config,
        "rules": [
            {
                "apiGroups": [GROUP],
                "apiVersions": ["*"],
                "operations": ["CREATE"],
                "resources": ["virtualmachines"],
                "scope": "Namespaced",
            }
        ],
        "matchConditions": MATCH_CONDITIONS,
        "failurePolicy": failure_policy,
        "timeoutSeconds": timeout_seconds,
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "matchPolicy": "Equivalent",
    }


class MalformedReview(ValueError):
    """The request is not an AdmissionReview we can answer: the server answers HTTP 400."""


class ImagesNotReady(Exception):
    """The name resolves to nothing, but the images at hand may be incomplete (the cache has
    not synced, or has gone stale): not a reason to deny. The server answers HTTP 503, so the
    API server applies its failurePolicy (or the caller retries) instead of a wrong denial."""


# A review wraps one VirtualMachine: a few hundred values, nested a dozen deep. The bounds keep
# what one body can make the webhook build small, whatever its size in bytes.
MAX_DEPTH = 64
MAX_ELEMENTS = 100_000
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')


def parse_body(raw: bytes) -> Any:
    """A review's JSON, refused (MalformedReview) before it is built when it has more than
    MAX_ELEMENTS values, and after when it nests deeper than MAX_DEPTH."""
    if len(raw) > MAX_ELEMENTS:  # a shorter body cannot hold more values than it has bytes
        skeleton = _STRING.sub(b'""', raw)  # no string's content counts
        elements = skeleton.count(b",") + skeleton.count(b"[") + skeleton.count(b"{") + 1
        if elements > MAX_ELEMENTS:
            raise MalformedReview(f"the body has more than {MAX_ELEMENTS} JSON values")
    try:
        body = json.loads(raw)
    except RecursionError:
        raise MalformedReview(f"the body is JSON nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise MalformedReview("the body is not JSON") from None
    level: list[Any] = [body]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for value in level
            if isinstance(value, (dict, list))
            for child in (value.values() if isinstance(value, dict) else value)
            if isinstance(child, (dict, list))
        ]
        if not level:
            return body
    raise MalformedReview(f"the body is JSON nested deeper than {MAX_DEPTH} levels")


def _field(mapping: Any, key: str, what: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise MalformedReview(f"{what} has no {key!r}")
    return mapping[key]


def review(
    body: Any, images: Iterable[Mapping[str, Any]], strict: bool = False, complete: bool = True
) -> dict[str, Any]:
    """The AdmissionReview response for an AdmissionReview request. ``complete``: whether
    ``images`` is every image there is (an unknown name is then denied, else ImagesNotReady)."""
    if not isinstance(body, dict) or body.get("kind") != "AdmissionReview":
        raise MalformedReview("the body is not an AdmissionReview")
    if body.get("apiVersion") != API_VERSION:
        raise MalformedReview(f"only {API_VERSION} AdmissionReviews are served, not {body.get('apiVersion')!r}")
    request = _field(body, "request", "the AdmissionReview")
    if not isinstance(request, dict):
        raise MalformedReview("request is not an object")
    uid = _field(request, "uid", "the request")
    if not isinstance(uid, str):
        raise MalformedReview("request.uid is not a string")
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    kind = (request.get("kind") or {}).get("kind") if isinstance(request.get("kind"), dict) else None
    if request.get("operation") == "CREATE" and kind == "VirtualMachine":
        vm = _field(request, "object", "the request")
        spec = vm.get("spec") if isinstance(vm, dict) else None
        if not isinstance(spec, dict):
            raise MalformedReview("the VirtualMachine has no spec")
        metadata = vm.get("metadata") if vm.get("metadata") is not None else {}
        if not isinstance(metadata, dict):
            raise MalformedReview("the VirtualMachine's metadata is not an object")
        namespace = request.get("namespace") or metadata.get("namespace") or "default"
        if not isinstance(namespace, str):
            raise MalformedReview("the namespace is not a string")
        annotations = metadata.get("annotations") or {}
        required = annotations.get(REQUIRED_CAPABILITIES_ANNOTATION, "") if isinstance(annotations, dict) else None
        if not isinstance(required, str):
            raise MalformedReview(f"annotation {REQUIRED_CAPABILITIES_ANNOTATION} is not a string")
        vm_name = f"{namespace}/{metadata.get('name') or metadata.get('generateName') or '(unnamed)'}"
        image_name = spec.get("imageName")
        named = spec.get("image")
        kind = None
        if isinstance(image_name, str) and image_name and not named:
            wanted, patching = image_name, True  # resolve the display name, patch the VMI ID in
        elif required and isinstance(named, dict) and isinstance(named.get("name"), str):
            wanted, patching = named["name"], False  # named already: only the capability check
            kind = named.get("kind")  # of that kind: a namespaced and a cluster image may share a name
        else:
            wanted = None
        if wanted is not None:
            try:
                resolved = resolve(wanted, namespace, images, strict=strict, kind=kind)
                check_security(resolved, vm_name)
                check_capabilities(resolved, parse_capabilities(required), vm_name)
            except UnknownImage as error:
                if not complete:
                    raise ImagesNotReady(f"image cache not ready: cannot tell whether {wanted!r} exists") from None
                response.update(allowed=False, status={"code": 403, "reason": "Forbidden", "message": str(error)})
            except ResolutionError as error:
                response.update(allowed=False, status={"code": 403, "reason": "Forbidden", "message": str(error)})
            else:
                if patching:
                    patch = [
                        {"op": "replace", "path": "/spec/imageName", "value": resolved.name},
                        {"op": "add", "path": "/spec/image", "value": image_reference(resolved)},
                    ]
                    response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
