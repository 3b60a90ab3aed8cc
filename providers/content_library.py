"""ContentLibrary: a local (or subscribed) vSphere content library on a datastore."""

from __future__ import annotations

import os
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    UpdateResult,
)

from providers import connection
from providers.common import VSphereProvider, changed, is_unknown, present, require_text, say, warn
from vmimage.errors import ImageError, url_has_credentials
from vmimage.review.guard import LIBRARY, Declared
from vmimage.review.preview_checks import offline
from vmimage.vsphere.content_library import ContentLibraryClient, LibraryInfo
from vmimage.vsphere.inventory import find_datastore_id
from vmimage.vsphere.rest import NotFoundError

INPUTS = ("name", "datastore", "description", "subscription_url")
FORCE = "force_destroy"  # present, and true, only where the stack config allows deleting others' items
# the security policy by name (vmimage:libraries[].securityPolicy), and the ID vCenter lists it under,
# resolved by check (vCenter is asked only when the state has no ID for that name); present only when set
POLICY, POLICY_ID = "security_policy", "security_policy_id"
IN_PLACE = ("name", "description", FORCE, POLICY)
REPLACING = ("datastore", "subscription_url")


def _outputs(library: LibraryInfo, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": library.name,
        "datastore": inputs.get("datastore"),
        "description": library.description,
        "subscription_url": library.subscription_url,
        "library_id": library.id,
        "type": library.type,
        "datastore_id": library.datastore_ids[0] if library.datastore_ids else None,
        **present(inputs, FORCE, POLICY),
        **({POLICY_ID: library.security_policy_id} if library.security_policy_id else {}),
    }


def _holder(client: ContentLibraryClient, name: str) -> str | None:
    """Why a library of this name cannot be created, when vCenter already has one."""
    found = client.find_libraries(name)
    if not found:
        return None
    return (
        f"vCenter {client.session.settings.server} already has a library with this name ({found[0]}), which this "
        "stack does not manage: to publish into it, declare it in vmimage:libraries with `existing: true` "
        "(docs/reference.md); to create one, choose another name"
    )


def _name_taken(name: str) -> list[CheckFailure]:
    """The check `create` makes, made in the preview (one lookup per library to create), unless
    the preview is offline (VMIMAGE_OFFLINE=1: the program warns that it went unchecked)."""
    try:
        if offline(os.environ):
            return []
        with connection.content_library() as client:
            taken = _holder(client, name)
    except ImageError as error:  # an answer, never read as "no such library"
        return [CheckFailure("name", f"library {name!r}: cannot ask vCenter whether the name is free: {error}")]
    return [CheckFailure("name", f"library {name!r}: {taken}")] if taken else []


def resolve_policy(client: ContentLibraryClient, name: str) -> str:
    """The ID of the security policy vCenter lists under ``name`` (or with that ID); an unknown name
    is an error that names the policies vCenter has."""
    policies = client.security_policies()
    for policy in policies:
        if name in (policy.name, policy.id):
            return policy.id
    known = ", ".join(repr(p.name) for p in policies) or "none"
    raise ImageError(
        f"securityPolicy {name!r}",
        f"vCenter {client.session.settings.server} has no security policy of this name (it has: {known}); "
        "`ovf-strict` names its OVF default policy",
    )


def _policy_id(olds: dict[str, Any], name: str) -> tuple[str | None, list[CheckFailure]]:
    """The policy's ID: the state's, for the name it recorded; else vCenter's answer (none offline:
    create and update resolve it again)."""
    if olds.get(POLICY) == name and olds.get(POLICY_ID):
        return str(olds[POLICY_ID]), []
    try:
        if offline(os.environ):
            return None, []
        with connection.content_library() as client:
            return resolve_policy(client, name), []
    except ImageError as error:  # an answer, never read as "no such policy"
        return None, [CheckFailure(POLICY, str(error))]


def _policy_change(name: str, before: str | None, after: str | None) -> str:
    """What applying, changing or removing a library's security policy does to the items in it."""
    if after:
        return (
            f"library {name!r}: security policy {before or 'none'!r} -> {after!r}: vCenter verifies every OVF item "
            "already in the library; each one not signed by a certificate vCenter trusts becomes not security "
            "compliant, and VM Operator publishes its image NotReady (the stack's items show it in their becomes)"
        )
    return (
        f"library {name!r}: security policy {before!r} removed: its items are no longer verified, and VM Operator "
        "publishes the images of those that were not compliant Ready again"
    )


def _policy_lost(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """The config keeps a library's policy, but the state's outputs (as a refresh read vCenter)
    record the library without it: taken off by hand, the library verifies nothing."""
    policy = news.get(POLICY)
    return (
        bool(olds)
        and bool(policy)
        and not is_unknown(policy)
        and olds.get(POLICY) == policy
        and not olds.get(POLICY_ID)
    )


def _apply_policy(client: ContentLibraryClient, library: LibraryInfo, policy_id: str | None, name: str | None) -> None:
    """Set (or remove) the library's security policy and check that vCenter holds it: a server
    that keeps a library's policy as it was (govmomi's simulator ignores the update) is refused."""
    if library.security_policy_id != policy_id:
        client.set_security_policy(library, policy_id)
        library = client.get_library(library.id)
    if library.security_policy_id != policy_id:
        wanted = f"the security policy {name!r} ({policy_id})" if policy_id else "no security policy"
        raise ImageError(
            f"library {library.name!r} ({library.id})",
            f"vCenter {client.session.settings.server} did not apply {wanted}: the library still has "
            f"{library.security_policy_id or 'none'}. Set it in the vSphere Client (the library, Edit Settings, "
            "Security Policy) and run `pulumi up` again, or put securityPolicy back as it was",
        )


class ContentLibraryProvider(VSphereProvider):
    """Creates, updates (name, description) and deletes a content library; a new datastore replaces it."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        require_text(news, "name", failures)
        require_text(news, "datastore", failures, limit=255)
        url = news.get("subscription_url")
        if url and not is_unknown(url) and not str(url).startswith("https://"):
            failures.append(CheckFailure("subscription_url", "subscription_url must be an https:// URL"))
        inputs = {key: news.get(key) for key in INPUTS}
        inputs["description"] = inputs["description"] or ""
        inputs.update(present(news, FORCE, POLICY))
        if not olds and not failures and not is_unknown(news["name"]):  # a library to create, not the state's
            failures.extend(_name_taken(news["name"]))
        policy = news.get(POLICY)
        if policy and not is_unknown(policy) and not failures:
            policy_id, problems = _policy_id(olds, str(policy))
            failures.extend(problems)
            if policy_id:
                inputs[POLICY_ID] = policy_id
        if olds and olds.get(POLICY) != news.get(POLICY) and not is_unknown(news.get(POLICY)):
            warn(_policy_change(str(news.get("name")), olds.get(POLICY), news.get(POLICY)))
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        updates = changed(olds, news, IN_PLACE)
        replaces = changed(olds, news, REPLACING)
        lost = _policy_lost(olds, news)
        if lost:
            warn(
                f"library {news.get('name')!r}: vCenter holds it without its security policy {news.get(POLICY)!r} "
                "(taken off outside the stack, as `refresh` read): `up` applies it again. "
                + _policy_change(str(news.get("name")), None, str(news.get(POLICY)))
            )
        # Library names are unique in vCenter: the old library must go before its replacement comes.
        return DiffResult(
            changes=bool(updates or replaces or lost),
            replaces=replaces,
            delete_before_replace=bool(replaces),
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        settings = connection.settings()
        datastore_id = find_datastore_id(settings, props["datastore"])
        with connection.content_library() as client:
            taken = _holder(client, props["name"])
            if taken:
                raise ImageError(f"library {props['name']!r}", taken)
            policy_id = props.get(POLICY_ID) or (resolve_policy(client, props[POLICY]) if props.get(POLICY) else None)
            library_id = client.create_library(
                props["name"], datastore_id, props.get("description") or "", props.get("subscription_url"), policy_id
            )
            library = client.get_library(library_id)
            if policy_id:
                _apply_policy(client, library, policy_id, props.get(POLICY))
        say(f"created content library {library.name!r} ({library.id})")
        return CreateResult(library_id, _outputs(library, props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with connection.content_library() as client:
            try:
                library = client.get_library(id_)
            except NotFoundError:
                return ReadResult("", {})  # deleted out of band: the next `up` creates it again
        outputs = _outputs(library, props)
        return ReadResult(id_, outputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with connection.content_library() as client:
            library = client.get_library(id_)
            if (olds.get("name"), olds.get("description")) != (news["name"], news.get("description")):
                client.update_library(library, news["name"], news.get("description") or "")
            if olds.get(POLICY) != news.get(POLICY) or _policy_lost(olds, news):
                policy = news.get(POLICY)
                policy_id = (news.get(POLICY_ID) or resolve_policy(client, policy)) if policy else None
                _apply_policy(client, library, policy_id, policy)
            library = client.get_library(id_)
        return UpdateResult(_outputs(library, news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Deletes the library only when it is empty: the stack's own items are deleted before it,
        so what is left is someone else's (a person's upload, another stack's item, a
        subscription's), and nothing of theirs goes with it unless the config says forceDestroy."""
        with connection.content_library() as client:
            try:
                library = client.get_library(id_)
            except NotFoundError:
                return  # already gone
            # a subscribed library's items are copies of its publisher's: deleting loses nothing
            others = [] if library.type.upper() == "SUBSCRIBED" else client.list_items(id_)
            if others and not props.get(FORCE):
                names = sorted(client.get_item(item).name for item in others[:5])
                more = f" and {len(others) - 5} more" if len(others) > 5 else ""
                warn(
                    f"left content library {library.name!r} ({id_}) in vCenter: it holds {len(others)} item(s) "
                    f"this stack does not manage ({', '.join(map(repr, names))}{more}). It is no longer part of "
                    "the stack; delete it by hand, or set forceDestroy: true on the library to let Pulumi "
                    "delete it with them."
                )
                return
            what = LIBRARY + (f", with the {len(others)} item(s) in it (forceDestroy)" if others else "")
            refused = connection.refused_delete(Declared(library.name, what))
            if refused:
                raise ImageError(f"library {library.name!r} ({id_})", f"not deleted: {refused}")
            client.delete_library(library)


class ContentLibrary(pulumi.dynamic.Resource, module="vmimage", name="ContentLibrary"):
    """A vSphere content library. Type token: pulumi-python:dynamic/vmimage:ContentLibrary."""

    library_id: pulumi.Output[str]
    name: pulumi.Output[str]
    datastore_id: pulumi.Output[str]
    type: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        name: pulumi.Input[str],
        datastore: pulumi.Input[str],
        description: pulumi.Input[str] | None = None,
        subscription_url: pulumi.Input[str] | None = None,
        force_destroy: bool = False,
        subscription_secret: bool = False,
        security_policy: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``force_destroy``: deleting the library may delete items this stack does not manage
        (without it, a library that holds any is left in vCenter, with a warning).
        ``subscription_secret``: the URL was set as a secret; one with credentials is kept as a
        secret anyway, as an item's source is."""
        if subscription_url is not None and (
            subscription_secret or (isinstance(subscription_url, str) and url_has_credentials(subscription_url))
        ):
            subscription_url = pulumi.Output.secret(subscription_url)
        inputs = {
            "name": name,
            "datastore": datastore,
            "description": description,
            "subscription_url": subscription_url,
            **({FORCE: True} if force_destroy else {}),
            **({POLICY: security_policy} if security_policy else {}),
            "library_id": None,
            "type": None,
            "datastore_id": None,
        }
        super().__init__(ContentLibraryProvider(), resource_name, inputs, opts)
