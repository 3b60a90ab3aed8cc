"""The content libraries vCenter associates with a Supervisor namespace (its VM Service), and
which declarations want each of them there.

VM Operator, inside a Supervisor, publishes a VirtualMachineImage for every item of every
library associated with the namespace; this client reads and sets that association through
`/api/vcenter/namespaces/instances/{namespace}` (`vm_service_spec.content_libraries`). A
change is a read-modify-write of the whole VM Service spec, so the VM classes and whatever
else it holds are written back as they were read.

vCenter offers no conditional update of a namespace. A change is computed from the read just
before the write (two reads in a row that agree), and a read after the write verifies that
the change is there and makes it again from that read when another writer overwrote it. What
another writer changes in the one request between the last read and the write is still lost.

Who wants a library in a namespace is kept in vCenter, where every stack sees it: a tag per
declaration (category CATEGORY, named ``<namespace>/<owner>``) attached to each library it
wants there, and the tag ``<namespace>/ADDED`` on each library a declaration associated (one
that was there before, by hand, has none and is never removed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vmimage.errors import ImageError
from vmimage.vsphere.rest import Call, NotFoundError, VapiSession, VSphereError

PATH = "/vcenter/namespaces/instances"
TAGGING = "/com/vmware/cis/tagging"  # under /rest; /api/cis/tagging is the same API
CATEGORY = "vmimage-namespace-libraries"
ADDED = "associated-by-vmimage"
LIBRARY = "com.vmware.content.Library"  # a content library's type in the tagging API
ATTEMPTS = 5


@dataclass(frozen=True)
class Change:
    """What a change of a namespace's libraries did: ``added`` and ``removed`` by its write (not
    by another writer), and the libraries associated after it."""

    added: list[str]
    removed: list[str]
    associated: list[str]


def not_found_of_vcenter(error: VSphereError) -> bool:
    """A 404 that is vCenter's own "not found" (vAPI error type ``not_found``, either flavour's
    spelling), not a 404 of a path vCenter does not serve (no Workload Management, a service
    restarting behind its reverse proxy)."""
    return error.status == 404 and (error.error_type or "").lower() == "not_found"


class NamespacesClient:
    def __init__(self, session: VapiSession) -> None:
        self.session = session
        self.owners = NamespaceOwners(session)

    def get(self, namespace: str) -> dict[str, Any] | None:
        """The namespace's instance info, or None where vCenter has no such namespace: its
        not-found for the instance, and a listing of the namespaces without it. Any other
        failure is raised, never read as "gone"."""
        where = f"{PATH}/{namespace}"
        try:
            found = self.session.call(Call("GET", where, where, api_only=True))
        except NotFoundError as exc:
            if not not_found_of_vcenter(exc):
                raise VSphereError(
                    self.session.settings.server,
                    f"{exc.reason}: not vCenter's answer for a missing namespace (is Workload Management enabled "
                    "and its service running?); nothing was changed, try again",
                    exc.status,
                ) from None
            if namespace in self.names():
                raise VSphereError(
                    self.session.settings.server,
                    f"GET /api{where} answered not found, yet vCenter lists namespace {namespace!r}; try again",
                    404,
                ) from None
            return None
        if not isinstance(found, dict):
            raise VSphereError(self.session.settings.server, f"GET /api{where}: the answer is not a namespace")
        return found

    def names(self) -> set[str]:
        """The names of every Supervisor namespace vCenter has."""
        listed = self.session.call(Call("GET", PATH, PATH, api_only=True))
        return {str(entry.get("namespace")) for entry in listed or [] if isinstance(entry, dict)}

    def require(self, namespace: str) -> dict[str, Any]:
        info = self.get(namespace)
        if info is None:
            raise ImageError(
                f"namespace {namespace!r}",
                f"vCenter {self.session.settings.server} has no Supervisor namespace of this name: create it "
                "(Workload Management, or `kubectl` on the Supervisor) or take it out of the image's scope",
            )
        return info

    def libraries(self, namespace: str) -> list[str]:
        """The libraries associated with the namespace, in vCenter's order."""
        return _associated(self.require(namespace))

    def set_libraries(self, namespace: str, libraries: list[str]) -> None:
        """Associate exactly ``libraries``, keeping the rest of the VM Service spec as it is (the
        Supervisor's admin's tool; a stack changes its own libraries with `change`)."""
        self._write(namespace, self.require(namespace), libraries)

    def change(self, namespace: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Change:
        """Associate ``add`` and take away ``remove``, leaving every other library as it is. The
        write is computed from the read just before it, and the read after it must show the change."""
        adding, removing = list(dict.fromkeys(add)), set(remove)
        info, done = self.require(namespace), Change([], [], [])
        for _ in range(ATTEMPTS):
            current = _associated(info)
            wanted = [x for x in current if x not in removing] + [x for x in adding if x not in current]
            if wanted == current:
                return Change(done.added, done.removed, current)
            again = self.require(namespace)  # still as read? else compute the change again from this read
            if again.get("vm_service_spec") != info.get("vm_service_spec"):
                info = again
                continue
            self._write(namespace, info, wanted)
            added = [*done.added, *(x for x in wanted if x not in current and x not in done.added)]
            removed = [*done.removed, *(x for x in current if x not in wanted and x not in done.removed)]
            done = Change(added, removed, wanted)
            info = self.require(namespace)  # another writer's change in between is in this read, and stays
        raise ImageError(
            f"namespace {namespace!r}", "its content libraries kept changing under another writer; run `up` again"
        )

    def _write(self, namespace: str, info: dict[str, Any], libraries: list[str]) -> None:
        spec = dict(info.get("vm_service_spec") or {})
        spec["content_libraries"] = list(dict.fromkeys(libraries))
        body = {"vm_service_spec": spec}
        self.session.call(Call("PATCH", f"{PATH}/{namespace}", f"{PATH}/{namespace}", body, body, api_only=True))


def _already_exists(error: VSphereError) -> bool:
    """vCenter's "already exists" in either flavour's spelling (/api: ALREADY_EXISTS)."""
    return (error.error_type or "").lower() == "already_exists"


def _associated(info: dict[str, Any]) -> list[str]:
    return list((info.get("vm_service_spec") or {}).get("content_libraries") or [])


class NamespaceOwners:
    """Which declarations want which library in which namespace, as vCenter tags: every stack,
    in any backend, sees them, so none removes a library another still wants."""

    def __init__(self, session: VapiSession) -> None:
        self.session = session
        self._category: str | None = None
        self._tags: dict[str, tuple[str, str]] = {}  # tag ID → (category ID, name)

    # --- the tagging API, both flavours ---------------------------------------------------

    def _tagging(
        self,
        method: str,
        path: str,
        ident: str | None = None,
        *,
        rest_body: Any = None,
        api_body: Any = None,
        action: str | None = None,
        idempotent: bool = True,
    ) -> Any:
        """One tagging call: ``path`` under the tagging API (``/tag``), ``ident`` the object's ID
        (``/id:X`` on /rest, ``/X`` on /api)."""
        rest = f"{TAGGING}{path}" + (f"/id:{ident}" if ident else "")
        api = f"/cis/tagging{path}" + (f"/{ident}" if ident else "")
        call = Call(method, rest, api, rest_body, api_body, rest_action=action, idempotent=idempotent)
        return self.session.call(call)

    def _create(self, path: str, spec: dict[str, Any]) -> str:
        return str(self._tagging("POST", path, rest_body={"create_spec": spec}, api_body=spec, idempotent=False))

    def category(self) -> str:
        """The ID of vmimage's tag category, made the first time it is needed."""
        if self._category is None:
            self._category = self._find_category()
        if self._category is None:
            spec = {
                "name": CATEGORY,
                "description": "Which vmimage declarations want a content library in a Supervisor namespace "
                "(<namespace>/<owner>); a library is taken out of a namespace only when none does",
                "cardinality": "MULTIPLE",
                "associable_types": [],  # any type
            }
            try:
                self._category = self._create("/category", spec)
            except VSphereError as exc:
                if not _already_exists(exc):
                    raise
                self._category = self._find_category()  # another stack made it meanwhile
        if self._category is None:
            raise VSphereError(self.session.settings.server, f"tag category {CATEGORY!r}: made, yet not listed")
        return self._category

    def _find_category(self) -> str | None:
        for category in self._tagging("GET", "/category") or []:
            info = self._tagging("GET", "/category", str(category))
            if isinstance(info, dict) and info.get("name") == CATEGORY:
                return str(category)
        return None

    def _tag(self, tag: str) -> tuple[str, str] | None:
        """(category ID, name) of a tag, or None where vCenter has no such tag."""
        if tag not in self._tags:
            try:
                info = self._tagging("GET", "/tag", tag)
            except NotFoundError:
                return None
            self._tags[tag] = (str((info or {}).get("category_id")), str((info or {}).get("name")))
        return self._tags[tag]

    def _attached(self, library: str) -> list[str]:
        """The IDs of the tags attached to the library."""
        body = {"object_id": {"type": LIBRARY, "id": library}}
        found = self._tagging("POST", "/tag-association", rest_body=body, api_body=body, action="list-attached-tags")
        return [str(tag) for tag in found or []]

    def _set(self, tag: str, library: str, attached: bool) -> None:
        body = {"object_id": {"type": LIBRARY, "id": library}}
        action = "attach" if attached else "detach"
        self._tagging("POST", "/tag-association", tag, rest_body=body, api_body=body, action=action)

    def _named(self, name: str) -> str | None:
        """The ID of the tag of this name in vmimage's category, or None."""
        category = self.category()
        for tag in self._tags_of(category):
            if self._tag(tag) == (category, name):
                return tag
        return None

    def _tags_of(self, category: str) -> list[str]:
        call = Call(
            "POST", f"{TAGGING}/tag/id:{category}", "/cis/tagging/tag", api_body={"category_id": category},
            rest_action="list-tags-for-category",
        )  # fmt: skip
        return [str(tag) for tag in self.session.call(call) or []]

    def _make(self, name: str, description: str) -> str:
        """A tag of this name in vmimage's category (the one there is, or a new one)."""
        spec = {"name": name, "description": description, "category_id": self.category()}
        try:
            tag = self._create("/tag", spec)
        except VSphereError as exc:
            if not _already_exists(exc) or (found := self._named(name)) is None:
                raise
            return found
        self._tags[tag] = (self.category(), name)
        return tag

    # --- what the provider asks -------------------------------------------------------------

    def claim(self, namespace: str, owner: str, libraries: list[str], tag: str | None = None) -> str:
        """Record that ``owner`` wants ``libraries`` in the namespace; its tag's ID (``tag``: the
        one it has, when it has one vCenter still knows)."""
        if tag is None or self._tag(tag) is None:
            description = f"The content libraries one vmimage declaration wants in namespace {namespace}"
            tag = self._make(f"{namespace}/{owner}", description)
        for library in libraries:
            if tag not in self._attached(library):
                self._set(tag, library, True)
        return tag

    def release(self, tag: str | None, library: str) -> None:
        """``owner`` no longer wants the library (nothing to do where its tag is gone)."""
        if tag is not None and self._tag(tag) is not None and tag in self._attached(library):
            self._set(tag, library, False)

    def forget(self, tag: str | None) -> None:
        """Delete the declaration's tag (and so what it attached)."""
        if tag is not None and self._tag(tag) is not None:
            with contextlib.suppress(NotFoundError):  # deleted meanwhile
                self._tagging("DELETE", "/tag", tag)
            self._tags.pop(tag, None)

    def _on(self, namespace: str, library: str) -> dict[str, str]:
        """vmimage's tags for the namespace attached to the library: ID → what follows ``<namespace>/``."""
        prefix, category, found = f"{namespace}/", self.category(), {}
        for tag in self._attached(library):
            known = self._tag(tag)
            if known is not None and known[0] == category and known[1].startswith(prefix):
                found[tag] = known[1][len(prefix) :]
        return found

    def wanted_by_others(self, namespace: str, library: str, tag: str | None) -> list[str]:
        """The owners other than the one with ``tag`` that want the library in the namespace."""
        return sorted(owner for found, owner in self._on(namespace, library).items() if found != tag and owner != ADDED)

    def added(self, namespace: str, library: str) -> bool:
        """Whether a declaration associated the library with the namespace (not someone by hand)."""
        return ADDED in self._on(namespace, library).values()

    def mark_added(self, namespace: str, libraries: list[str]) -> None:
        """Mark libraries as associated with the namespace by a declaration."""
        if libraries:
            name, description = f"{namespace}/{ADDED}", f"Content libraries vmimage associated with {namespace}"
            tag = self._named(name) or self._make(name, description)
            for library in libraries:
                if tag not in self._attached(library):
                    self._set(tag, library, True)

    def unmark_added(self, namespace: str, library: str) -> None:
        """The library is no longer associated by a declaration (it was taken out)."""
        for tag, owner in self._on(namespace, library).items():
            if owner == ADDED:
                self._set(tag, library, False)
