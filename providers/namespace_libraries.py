"""NamespaceLibraries: the content libraries a stack associates with a Supervisor namespace.

In a Supervisor, VM Operator publishes the images of the libraries vCenter associates with a
namespace; vmimage does not write image objects there (supervisor mode). This resource adds
the stack's libraries to the namespace's VM Service and, when it no longer wants one, takes it
out only where no other declaration wants it and a declaration (not someone by hand) put it
there: a library associated by hand before it came, one another stack wants, and the
namespace's VM classes stay as they are. Who wants what is kept in vCenter as tags
(vmimage/vsphere/namespaces.py), so stacks in other backends see it too; the state keeps this
declaration's own (``owner``, ``owner_tag``, ``claimed``) and ``added``, what it associated.
A state of an earlier release (no ``owner``) gets one at the next `up`, in place.
"""

from __future__ import annotations

import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers import connection
from providers.common import VSphereProvider, is_unknown, require_text, say, warn
from vmimage.vsphere.namespaces import NamespacesClient

INPUTS = ("namespace", "library_ids")


def _outputs(
    namespace: str, wanted: list[str], added: list[str], associated: list[str], owner: dict[str, Any]
) -> dict[str, Any]:
    """``owner``: the declaration's owner, its tag and the libraries the tag is on."""
    return {
        "namespace": namespace,
        "library_ids": [library for library in wanted if library in associated],  # what is there of it
        "added": [library for library in added if library in associated],
        **{key: owner.get(key) for key in ("owner", "owner_tag", "claimed")},
    }


def _let_go(client: NamespacesClient, namespace: str, tag: str | None, libraries: list[str], legacy: list[str]) -> None:
    """This declaration (its ``tag``) no longer wants ``libraries`` in the namespace: each is taken
    out where no other declaration wants it and a declaration associated it (marked so, or in
    ``legacy``: what an earlier release's state says it added). Another declaration that claims
    one between the check and the write gets it back, with a warning."""
    owners = client.owners
    for library in libraries:
        owners.release(tag, library)
    removable = [
        library
        for library in libraries
        if not owners.wanted_by_others(namespace, library, tag)
        and (library in legacy or owners.added(namespace, library))
    ]
    if not removable:
        return
    removed = client.change(namespace, remove=removable).removed
    for library in removed:
        owners.unmark_added(namespace, library)
    back = [library for library in removed if owners.wanted_by_others(namespace, library, tag)]
    if back:
        owners.mark_added(namespace, client.change(namespace, add=back).added)
        warn(
            f"namespace {namespace}: another declaration claimed {', '.join(back)} while this one took it out; "
            "associated again"
        )


def _drop_stale_marks(client: NamespacesClient, namespace: str, tag: str | None, libraries: list[str]) -> None:
    """``libraries`` were in the namespace before this declaration wanted them: where one carries the
    mark of a declaration's association yet no other declaration claims it, the mark outlived what
    it said (its declaration let go while the namespace was gone; the namespace was made anew and
    the library associated by hand). It goes, so that the last to let go leaves the library."""
    for library in libraries:
        if client.owners.added(namespace, library) and not client.owners.wanted_by_others(namespace, library, tag):
            client.owners.unmark_added(namespace, library)


class NamespaceLibrariesProvider(VSphereProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        require_text(news, "namespace", failures, limit=63)
        libraries = news.get("library_ids")
        if not is_unknown(libraries) and not (
            isinstance(libraries, list) and all(is_unknown(x) or (isinstance(x, str) and x) for x in libraries)
        ):
            failures.append(CheckFailure("library_ids", "library_ids is a list of content library IDs"))
        inputs = {key: news.get(key) for key in INPUTS}
        if isinstance(libraries, list) and not any(is_unknown(x) for x in libraries):
            inputs["library_ids"] = sorted(set(libraries))
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["namespace"] if olds.get("namespace") != news.get("namespace") else []
        changed = is_unknown(news.get("library_ids")) or sorted(olds.get("library_ids") or []) != sorted(
            news.get("library_ids") or []
        )
        unowned = not olds.get("owner")  # an earlier release's state: its claim goes to vCenter, in place
        return DiffResult(changes=bool(replaces or changed or unowned), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        namespace, wanted = props["namespace"], list(props["library_ids"])
        with connection.namespaces() as client:
            client.require(namespace)  # a clear error before anything is recorded in vCenter
            owner = {"owner": uuid.uuid4().hex, "claimed": wanted}
            # claimed first: a run killed before the association leaves a claim, never a library nobody claims
            owner["owner_tag"] = client.owners.claim(namespace, owner["owner"], wanted)
            change = client.change(namespace, add=wanted)
            client.owners.mark_added(namespace, change.added)
            _drop_stale_marks(client, namespace, owner["owner_tag"], [x for x in wanted if x not in change.added])
        say(f"namespace {namespace}: associated {len(change.added)} content library(ies) with its VM Service")
        return CreateResult(namespace, _outputs(namespace, wanted, change.added, change.associated, owner))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        namespace, wanted = news["namespace"], list(news["library_ids"])
        legacy = [] if olds.get("owner") else list(olds.get("added") or [])
        before = list(olds.get("claimed") or olds.get("library_ids") or [])
        with connection.namespaces() as client:
            current = client.libraries(namespace)
            owner = {"owner": olds.get("owner") or uuid.uuid4().hex, "claimed": wanted}
            owner["owner_tag"] = client.owners.claim(namespace, owner["owner"], wanted, olds.get("owner_tag"))
            client.owners.mark_added(namespace, [library for library in legacy if library in current])
            change = client.change(namespace, add=wanted)
            client.owners.mark_added(namespace, change.added)
            found = [x for x in wanted if x not in before and x not in change.added and x not in legacy]
            _drop_stale_marks(client, namespace, owner["owner_tag"], found)
            _let_go(client, namespace, owner["owner_tag"], [x for x in before if x not in wanted], legacy)
            associated = client.libraries(namespace)
        ours = [library for library in list(olds.get("added") or []) if library in wanted]
        added = [*ours, *(library for library in change.added if library not in ours)]
        return UpdateResult(_outputs(namespace, wanted, added, associated, owner))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        namespace = props.get("namespace") or id_
        with connection.namespaces() as client:
            info = client.get(namespace)  # None only where vCenter says it has no such namespace
        if info is None:
            return ReadResult("", {})  # the namespace is gone, and the association with it
        associated = list((info.get("vm_service_spec") or {}).get("content_libraries") or [])
        wanted = list(props.get("library_ids") or [])
        outputs = _outputs(namespace, wanted, list(props.get("added") or []), associated, props)
        return ReadResult(id_, outputs, {"namespace": namespace, "library_ids": outputs["library_ids"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        namespace, tag = props.get("namespace") or id_, props.get("owner_tag")
        legacy = [] if props.get("owner") else list(props.get("added") or [])
        with connection.namespaces() as client:
            if client.get(namespace) is not None:  # else gone first (vCenter's own not-found), and its libraries
                claimed = list(props.get("claimed") or props.get("library_ids") or [])
                _let_go(client, namespace, tag, [*claimed, *(x for x in legacy if x not in claimed)], legacy)
            client.owners.forget(tag)


class NamespaceLibraries(pulumi.dynamic.Resource, module="vmimage", name="NamespaceLibraries"):
    """Libraries associated with a Supervisor namespace. Type token:
    pulumi-python:dynamic/vmimage:NamespaceLibraries."""

    namespace: pulumi.Output[str]
    library_ids: pulumi.Output[list]
    added: pulumi.Output[list]

    def __init__(
        self,
        resource_name: str,
        *,
        namespace: pulumi.Input[str],
        library_ids: pulumi.Input[list[pulumi.Input[str]]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        inputs = {"namespace": namespace, "library_ids": library_ids, "added": None}
        super().__init__(NamespaceLibrariesProvider(), resource_name, inputs, opts)
