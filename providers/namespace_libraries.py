"""NamespaceLibraries: the content libraries a stack associates with a Supervisor namespace.

In a Supervisor, VM Operator publishes the images of the libraries vCenter associates with a
namespace; vmimage does not write image objects there (supervisor mode). This resource adds
the stack's libraries to the namespace's VM Service and, on delete, removes only what it
added: a library associated by hand (or by another stack) before it came, and the
namespace's VM classes, stay as they are. `added` records what it added.

vCenter offers no conditional update of a namespace: two writers at the same moment can lose
each other's change (the next `pulumi up` or refresh notices and puts it back).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from providers import connection
from providers.common import VSphereProvider, is_unknown, require_text

INPUTS = ("namespace", "library_ids")


def _outputs(namespace: str, wanted: list[str], added: list[str], associated: list[str]) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "library_ids": [library for library in wanted if library in associated],  # what is there of it
        "added": [library for library in added if library in associated],
    }


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
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        namespace, wanted = props["namespace"], list(props["library_ids"])
        with connection.namespaces() as client:
            before = client.libraries(namespace)
            added = [library for library in wanted if library not in before]
            if added:
                client.set_libraries(namespace, [*before, *added])
            associated = client.libraries(namespace)
        pulumi.log.info(f"namespace {namespace}: associated {len(added)} content library(ies) with its VM Service")
        return CreateResult(namespace, _outputs(namespace, wanted, added, associated))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        namespace, wanted = news["namespace"], list(news["library_ids"])
        ours = list(olds.get("added") or [])
        with connection.namespaces() as client:
            current = client.libraries(namespace)
            dropped = [library for library in ours if library not in wanted]  # ours, no longer wanted
            new = [library for library in wanted if library not in current]
            if dropped or new:
                client.set_libraries(namespace, [*(x for x in current if x not in dropped), *new])
            associated = client.libraries(namespace)
        added = [library for library in ours if library in wanted] + new
        return UpdateResult(_outputs(namespace, wanted, added, associated))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        namespace = props.get("namespace") or id_
        with connection.namespaces() as client:
            info = client.get(namespace)
        if info is None:
            return ReadResult("", {})  # the namespace is gone, and the association with it
        associated = list((info.get("vm_service_spec") or {}).get("content_libraries") or [])
        wanted = list(props.get("library_ids") or [])
        outputs = _outputs(namespace, wanted, list(props.get("added") or []), associated)
        return ReadResult(id_, outputs, {"namespace": namespace, "library_ids": outputs["library_ids"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        namespace, ours = props.get("namespace") or id_, set(props.get("added") or [])
        with connection.namespaces() as client:
            info = client.get(namespace)
            if info is None or not ours:
                return  # the namespace went first, or this stack added nothing to it
            current = list((info.get("vm_service_spec") or {}).get("content_libraries") or [])
            if ours & set(current):
                client.set_libraries(namespace, [library for library in current if library not in ours])


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
