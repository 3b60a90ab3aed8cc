"""ContentLibraryItem: a VM image file published as a content library item.

A changed source is uploaded into the same item through a new update session, so the
item UUID — and with it the VMI ID — stays the same while the content version moves on.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import UTC, datetime
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
from providers.common import (
    INSTANCE,
    SECRET_SOURCE,
    VSphereProvider,
    changed,
    conceal,
    concealing,
    contract_moved,
    is_unknown,
    present,
    require_text,
    say,
    source_forms,
    warn,
)
from vmimage.contract.ids import vmi_id
from vmimage.contract.image import file_image
from vmimage.contract.status import CONTRACT, item_status, with_compliance
from vmimage.declaration import marked, unmarked
from vmimage.descriptor.signing import load_trust_bundle, package_signature
from vmimage.descriptor.source import (
    EXTENSIONS,
    ImageFile,
    cached_file_sha256,
    content_type,
    declared_sha256_problem,
    file_sha256,
    pinned_file,
    read_image_file,
    source_digest,
)
from vmimage.errors import ImageError, redact, redact_url, url_has_credentials
from vmimage.review.facts import image_facts, predicted_not_compliant, signature_facts
from vmimage.review.facts import with_compliance as compliance_facts
from vmimage.review.guard import Declared
from vmimage.review.lint import cached_lint_errors
from vmimage.vsphere.content_library import ContentLibraryClient, ItemInfo
from vmimage.vsphere.descriptors import DescriptorCache
from vmimage.vsphere.descriptors import content_version as content_version_of
from vmimage.vsphere.progress import duration, finished_line, new_content_line, pull_line, transfer_line
from vmimage.vsphere.publish import UploadResult, check_declared_sha256, holds_source, is_url, upload_source
from vmimage.vsphere.rest import NotFoundError

INPUTS = ("library_id", "name", "source", "description", "sha256", "adopt_id", "fingerprint", "becomes")
# becomes: what the image will be (vmimage/review/facts.py), read from a local source's descriptor in check,
# so `pulumi preview --diff` shows it before any upload; never a reason for an update by itself
COMPUTED = ("fingerprint", "becomes")
SECRET_INPUT = "source_secret"  # present, and true, only for a source set as a secret
# the library's security policy (vCenter's name; present only for a library that has one): a change
# re-reads the item's compliance in place; and the stack's trusted certificates (PEM paths) the
# check verifies a local package's signature against, for ``becomes``
POLICY, TRUST = "security_policy", "trust"
IN_PLACE = ("name", "description", "fingerprint", POLICY)
REPLACING = ("library_id",)
# The description an item has from its creation until its content is in. With this declaration's
# token it tells a later create that the item is the remains of its own failed one, which it
# removes; without (another writer's, or a provider used on its own) the item is left alone.
UNFINISHED = "vmimage: publishing; unfinished until this description is replaced"
PROGRESS_INTERVAL = float(os.environ.get("VMIMAGE_PROGRESS_INTERVAL", "5"))
FIRST_PROGRESS_AFTER = min(1.0, PROGRESS_INTERVAL)  # an upload of more than a second says so
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
DESCRIPTORS = DescriptorCache()


def fingerprint(source: str, sha256: str | None, digest: str | None = None, secret: bool = False) -> str:
    """What identifies the content: the URL, or a local source's size and SHA-256 (read once per
    size and mtime, so a touched or freshly checked-out file is no change), plus sha256 when given."""
    # a URL's credentials (user:password@, a signed query) stay out: the fingerprint is in the state,
    # and a URL signed anew for each run is still the same source; of a secret URL (a token may be
    # in its path) only a digest shows
    if is_url(source) and secret:
        base = f"url-sha256:{hashlib.sha256(redact_url(source).encode()).hexdigest()}"
    elif is_url(source):
        base = f"url:{redact_url(source)}"
    else:
        base = f"file:{os.stat(source).st_size}:{digest or source_digest(source)}"
    return f"{base}:sha256:{sha256.lower()}" if sha256 else base


def _local_size(source: str) -> int | None:
    """A local .ova's or .iso's size; None for a URL or an .ovf (its disks are files beside it)."""
    return None if is_url(source) or source.lower().endswith(".ovf") else os.stat(source).st_size


def shown_source(props: dict[str, Any]) -> str:
    """The source as messages may show it."""
    return SECRET_SOURCE if props.get(SECRET_INPUT) else redact(str(props.get("source")))


def new_content(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """Whether an update uploads: the fingerprint moved, other than by a new form of the same URL
    and sha256 (a source that became secret, or a release that writes fingerprints anew)."""
    if olds.get("fingerprint") == news.get("fingerprint"):
        return False
    source = news.get("source")
    same_url = isinstance(source, str) and is_url(source) and olds.get("source") == source
    return not (same_url and olds.get("sha256") == news.get("sha256"))


class _ProgressLog:
    """Upload progress through pulumi.log, in a person's units (vmimage/vsphere/progress.py): a first line
    after a second, then one every PROGRESS_INTERVAL seconds. A pull says what vCenter reports."""

    def __init__(self, name: str, pulled: bool = False) -> None:
        self.name, self.pulled = name, pulled
        self.started = time.monotonic()
        self.last: float | None = None

    def __call__(self, sent: int, total: int) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        due = elapsed >= FIRST_PROGRESS_AFTER if self.last is None else now - self.last >= PROGRESS_INTERVAL
        if not due or (total and sent >= total):
            return
        self.last = now
        if self.pulled:
            say(pull_line(self.name, elapsed, sent, total))
        elif total:
            say(transfer_line(self.name, sent, total, elapsed))


def _upload(client: ContentLibraryClient, item_id: str, source: str, sha256: str | None, name: str) -> UploadResult:
    """upload_source with its progress in the log, and a last line with the time it took."""
    pulled = is_url(source)  # vCenter pulls a URL itself
    progress = _ProgressLog(name, pulled)
    upload = upload_source(client, item_id, source, expected_sha256=sha256, progress=progress)
    elapsed = time.monotonic() - progress.started
    say(
        f"{name}: pulled by vCenter in {duration(elapsed)}"
        if pulled
        else finished_line(name, upload.bytes_sent, elapsed)
    )
    return upload


def _image(
    descriptor: bytes | None, source_name: str, item: ItemInfo, content_version: str | None, policy: bool
) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    image = item_status(
        descriptor,
        source_name,
        iso=item.type.lower() == "iso",
        name=item.name,
        now=now,
        item_id=item.id,
        content_version=content_version,
    )
    return with_compliance(image, item.security_compliance, now, policy=policy).status.wire()


def _signature(source: str, trust: Any) -> dict[str, Any] | None:
    """The signature facts of a local package against the stack's trusted certificates (None: an ISO)."""
    report = package_signature(source, load_trust_bundle(list(trust or [])), datetime.now(UTC))
    return signature_facts(report) if report is not None else None


def _compliance_said(item: ItemInfo, inputs: dict[str, Any]) -> None:
    """vCenter's word on a new upload's compliance wins; where the local verification said
    otherwise (vCenter trusts other certificates, or checks otherwise), the difference is a warning."""
    signature = (inputs.get("becomes") or {}).get("signature") if isinstance(inputs.get("becomes"), dict) else None
    if item.security_compliance is None or not isinstance(signature, dict):
        return
    local = signature.get("status") == "verified"
    if item.security_compliance != local:
        warn(
            f"item {item.id} ({item.name!r}): vCenter holds it {'' if item.security_compliance else 'not '}security "
            f"compliant (certificate verification {item.certificate_status or 'not reported'}), where the signature "
            f"verified against the stack's trusted certificates is {signature.get('status')}: vCenter's word wins, "
            "and its image is published as vCenter says"
        )


def _outputs(
    client: ContentLibraryClient,
    item: ItemInfo,
    inputs: dict[str, Any],
    upload: UploadResult | None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    files = client.item_files(item.id)
    if upload is not None and upload.removed:
        say(f"item {item.id} ({item.name}): removed {', '.join(map(repr, upload.removed))}, not in the new source")
    content_version = content_version_of(
        client, item, known=(previous or {}).get("content_version"), uploaded=upload is not None, files=files
    )
    if upload is not None:
        _compliance_said(item, inputs)
    policy = bool(inputs.get(POLICY))
    if upload is not None and (upload.descriptor is not None or item.type.lower() == "iso"):
        image = _image(upload.descriptor, upload.descriptor_name or shown_source(inputs), item, content_version, policy)
    elif (
        previous
        and previous.get("image")
        and previous.get("content_version") == content_version
        and previous.get("contract") == CONTRACT  # an image of an earlier contract is computed anew
        and previous.get("security_compliance") == item.security_compliance  # a policy applied or removed
        and previous.get(POLICY) == inputs.get(POLICY)
    ):
        image = {**previous["image"], "name": item.name}  # same content: keep status and its transition time
    else:
        descriptor = DESCRIPTORS.fetch(client, item, content_version)
        name = descriptor.name if descriptor else None
        image = _image(descriptor.data if descriptor else None, f"item {item.id}:{name}", item, content_version, policy)
    return {
        **{key: inputs.get(key) for key in INPUTS},
        **present(inputs, SECRET_INPUT, POLICY, TRUST),
        **({"security_compliance": item.security_compliance} if item.security_compliance is not None else {}),
        **({"certificate_status": item.certificate_status} if item.certificate_status else {}),
        "contract": CONTRACT,
        "name": item.name,
        "description": unmarked(item.description)[0],
        "item_id": item.id,
        "vmi_id": vmi_id(item.id),
        "content_version": content_version,
        "size_bytes": item.size or sum(f.size for f in files),
        "files": [{"name": f.name, "size": f.size} for f in files],
        "source_sha256": (upload.source_sha256 if upload else None) or (previous or {}).get("source_sha256"),
        "image": image,
    }


def _sha256_failures(source: str, digest: str, sha256: str) -> list[CheckFailure]:
    """A declared sha256 the upload would refuse: the digest of what it pins (pinned_file), which
    for an .ova or .iso is the fingerprint's own digest and for a bare .ovf its manifest's, read
    through the same cache; no file is read again unless it changed."""
    pinned = pinned_file(source)
    if pinned is None:  # a bare .ovf without a manifest: declared_sha256_problem says so
        return []
    actual = digest if pinned == source else cached_file_sha256(pinned, follow=False)
    try:
        check_declared_sha256(source, actual, sha256)
    except ImageError as error:
        return [CheckFailure("sha256", str(error))]
    return []


def _fill(client: ContentLibraryClient, item_id: str, props: dict[str, Any]) -> tuple[UploadResult | None, str | None]:
    """An existing item with the declared source in it: uploaded unless the item holds it already
    (its declared sha256 checked either way). The upload, if any, and the source's SHA-256."""
    source = props["source"]
    if holds_source(client, item_id, source):
        pinned = pinned_file(source) if props.get("sha256") else None  # a local read, no upload
        source_sha256 = file_sha256(pinned, follow=pinned == source) if pinned else None
        check_declared_sha256(source, source_sha256, props.get("sha256"))
        say(f"item {item_id} already holds {shown_source(props)} (same files, descriptor and manifest)")
        return None, source_sha256
    upload = _upload(client, item_id, source, props.get("sha256"), props["name"])
    return upload, upload.source_sha256


class ContentLibraryItemProvider(VSphereProvider):
    """Publishes an .ova/.ovf/.iso (local or https) as a library item and keeps it in step."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        result = self._check(news)
        forms = source_forms(news["source"]) if news.get(SECRET_INPUT) and isinstance(news.get("source"), str) else []
        result.failures = [CheckFailure(f.property, redact(conceal(f.reason, forms))) for f in result.failures or []]
        return result

    def _check(self, news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        require_text(news, "name", failures)
        require_text(news, "library_id", failures, limit=255)
        inputs = {key: news.get(key) for key in INPUTS if key not in COMPUTED}
        inputs["description"] = inputs["description"] or ""
        secret = bool(news.get(SECRET_INPUT))
        inputs.update(present(news, SECRET_INPUT, INSTANCE, POLICY, TRUST))
        sha256 = news.get("sha256")
        if sha256 is not None and not is_unknown(sha256) and not (isinstance(sha256, str) and _SHA256.match(sha256)):
            failures.append(CheckFailure("sha256", "sha256 must be 64 hexadecimal digits"))
            sha256 = None
        adopt_id = news.get("adopt_id")
        if adopt_id and not is_unknown(adopt_id):
            try:
                vmi_id(adopt_id)
            except ImageError:
                failures.append(CheckFailure("adopt_id", f"adopt_id {adopt_id!r} is not a library item UUID"))
        source = news.get("source")
        if is_unknown(source) or is_unknown(sha256):
            inputs["fingerprint"] = source if is_unknown(source) else sha256
            return CheckResult(inputs, failures)
        problem, image_file = self._source_problem(source)
        if problem:
            failures.append(CheckFailure("source", problem))
        elif sha256 and not is_url(source) and (sha256_problem := declared_sha256_problem(source)):
            failures.append(CheckFailure("sha256", sha256_problem))
        else:
            try:
                digest = None if is_url(source) else source_digest(source)
                inputs["fingerprint"] = fingerprint(source, sha256, digest, secret)
                if digest is not None and sha256:  # the upload's sha256 check, from digests already cached
                    failures.extend(_sha256_failures(source, digest, sha256))
                if digest is not None:  # what the upload would refuse, said at preview time
                    for finding in cached_lint_errors(source, digest):
                        failures.append(CheckFailure("source", f"{source}: {finding.code}: {finding.message}"))
                if image_file is not None:
                    status = file_image(image_file, name=str(news.get("name") or "")).status.wire()
                    inputs["becomes"] = compliance_facts(
                        image_facts(status), _signature(source, news.get(TRUST)), bool(news.get(POLICY))
                    )
                    if said := predicted_not_compliant(inputs["becomes"]):
                        warn(
                            f"{news.get('name')!r}: {said}: its library has the "
                            f"security policy {news.get(POLICY)!r}; sign the package (`vmimage sign`) with a "
                            "certificate of vmimage:trustedCertificates"
                        )
            except (ImageError, OSError) as error:
                failures.append(CheckFailure("source", str(error)))
        return CheckResult(inputs, failures)

    @staticmethod
    def _source_problem(source: Any) -> tuple[str | None, ImageFile | None]:
        """Why the source cannot be published, read cheaply (a multi-GB OVA costs its first KBs);
        else the local file as read (None for a URL)."""
        if not isinstance(source, str) or not source:
            return "source must be a path to an .ova, .ovf or .iso file, or an https:// URL", None
        path = source.split("?", 1)[0]
        if not any(path.lower().endswith(extension) for extension in EXTENSIONS):
            return f"source {source!r} has an unknown extension; expected .ova, .ovf or .iso", None
        if is_url(source):
            return None, None
        if source.lower().startswith("http://"):
            return "source URLs must be https:// (vCenter pulls them itself)", None
        if not os.path.isfile(source):
            return f"source file {source!r} does not exist (relative paths start at the project directory)", None
        try:
            return None, read_image_file(source)
        except ImageError as error:
            return f"source is unreadable: {error}", None

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        updates = changed(olds, news, IN_PLACE) + contract_moved(olds)
        replaces = changed(olds, news, REPLACING)
        return DiffResult(changes=bool(updates or replaces), replaces=replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        with concealing(props.get("source"), props.get(SECRET_INPUT)):
            return self._create(props)

    def _create(self, props: dict[str, Any]) -> CreateResult:
        if props.get("adopt_id"):
            return self._adopt(props)
        source, name, description = props["source"], props["name"], props.get("description") or ""
        token = self.token(props, props["library_id"])  # a new library replaces the item
        with connection.content_library() as client:
            mine = self._clear_way(client, props["library_id"], name, token)
            if mine is not None:
                return self._take_back(client, mine, props, token)
            kind = content_type(source.split("?", 1)[0])
            # created marked unfinished (and with its declaration's token); the real description
            # is written once the content is in, as the last call
            item_id = client.create_item(props["library_id"], name, marked(UNFINISHED, token), kind)
            try:
                upload = _upload(client, item_id, source, props.get("sha256"), name)
                outputs = _outputs(client, client.get_item(item_id), props, upload)
                client.update_item(item_id, name, marked(description, token))
                outputs["description"] = description
            except BaseException:
                try:
                    client.delete_item(item_id)  # nothing half-made stays behind
                except Exception as cleanup:  # the upload's error is the one to report
                    then = (
                        "the next `pulumi up` removes it"
                        if token
                        else "delete it by hand: it carries no declaration's token, so no create removes it"
                    )
                    warn(f"could not remove the unfinished item {item_id} ({name!r}): {cleanup}; {then}")
                raise
        say(f"published {name!r} as item {item_id} ({outputs['vmi_id']})")
        return CreateResult(item_id, outputs)

    @staticmethod
    def _clear_way(client: ContentLibraryClient, library_id: str, name: str, token: str | None) -> str | None:
        """Refuse a name another item holds, naming it, unless the item provably is this
        declaration's own: its description carries ``token``, which only this stack instance makes
        (vmimage/declaration.py). What it left unfinished is removed. A finished one (made by a run
        Pulumi did not record: `pulumi up` killed after the item was made, a state restored from a
        backup or deleted from) is returned, to be taken back: VM specs may name its VMI ID.
        Another writer's unfinished item (an upload in progress, without this token) stays."""
        mine = None
        for existing in client.find_items(library_id, name):
            text, mark = unmarked(client.get_item(existing).description)
            ours = token is not None and mark == token
            if ours and text == UNFINISHED:
                warn(f"removing item {existing} ({name!r}), left unfinished by an earlier failed create")
                client.delete_item(existing)
                continue
            if ours and mine is None:
                mine = existing
                continue
            if text == UNFINISHED:
                raise ImageError(
                    f"item {name!r}",
                    f"library {library_id} has an item with this name ({existing}) that another writer is uploading "
                    "or failed to upload (marked unfinished, without this stack's token), which vmimage leaves "
                    "alone: once no upload runs, delete it (vSphere Client, or `govc library.rm`) and run "
                    "`pulumi up` again",
                )
            whose = (
                "another stack (or an earlier release of this one) published it, as its declaration token says"
                if mark
                else "two resources declare the same item, or it was made outside Pulumi"
            )
            raise ImageError(
                f"item {name!r}",
                f"library {library_id} already has an item with this name ({existing}): {whose}; vmimage "
                "neither deletes nor takes it: publish this image under another name or library, or delete the "
                "item if it is no one's. If it is this stack's own and its state was lost or made anew (a new "
                "state is a new stack instance), restore that state instead (`pulumi stack import --file "
                "<backup>`): deleting the item ends its VMI ID for good",
            )
        return mine

    def _take_back(self, client: ContentLibraryClient, item_id: str, props: dict[str, Any], token: str) -> CreateResult:
        """A finished item this declaration made, which no state records: kept (its UUID and VMI
        ID stay), with the declared source in it (uploaded unless it holds it already)."""
        warn(
            f"taking back item {item_id} ({props['name']!r}): an earlier run of this declaration made it, and Pulumi "
            "did not record it (the run was interrupted, or the stack's state restored or deleted from); its UUID "
            "and VMI ID stay"
        )
        upload, source_sha256 = _fill(client, item_id, props)
        client.update_item(item_id, props["name"], marked(props.get("description") or "", token))
        outputs = _outputs(client, client.get_item(item_id), props, upload)
        outputs["source_sha256"] = source_sha256
        return CreateResult(item_id, outputs)

    def _adopt(self, props: dict[str, Any]) -> CreateResult:
        """Take over an existing item — `pulumi import` for this resource, which the engine cannot
        do for dynamic providers (pulumi/pulumi#16175). The UUID, and so the VMI ID, stay; the
        declared source is uploaded into it unless the item already holds it."""
        item_id = props["adopt_id"].strip().lower()
        with connection.content_library() as client:
            try:
                item = client.get_item(item_id)
            except NotFoundError:
                raise ImageError(f"adopt_id {item_id}", "vCenter has no library item with this UUID") from None
            if item.library_id != props["library_id"]:
                raise ImageError(
                    f"adopt_id {item_id}", f"the item is in library {item.library_id}, not {props['library_id']}"
                )
            upload, source_sha256 = _fill(client, item_id, props)
            # renamed last, so a failed check or upload leaves the item as it was
            if (item.name, item.description) != (props["name"], props.get("description") or ""):
                client.update_item(item_id, props["name"], props.get("description") or "")
            outputs = _outputs(client, client.get_item(item_id), props, upload)
        outputs["source_sha256"] = source_sha256
        say(f"adopted item {item_id} as {props['name']!r} ({outputs['vmi_id']})")
        return CreateResult(item_id, outputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with concealing(news.get("source"), news.get(SECRET_INPUT)), connection.content_library() as client:
            if olds.get("name") != news["name"] or olds.get("description") != news.get("description"):
                kept = unmarked(client.get_item(id_).description)[1]  # the token stays with the item
                client.update_item(id_, news["name"], marked(news.get("description") or "", kept))
            upload = None
            if new_content(olds, news):
                say(new_content_line(news["name"], _local_size(news["source"])))
                upload = _upload(client, id_, news["source"], news.get("sha256"), news["name"])
            outputs = _outputs(client, client.get_item(id_), news, upload, previous=olds)
        return UpdateResult(outputs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with concealing(props.get("source"), props.get(SECRET_INPUT)), connection.content_library() as client:
            try:
                item = client.get_item(id_)
            except NotFoundError:
                return ReadResult("", {})  # deleted out of band: the next `up` creates it again
            inputs = {key: props.get(key) for key in INPUTS}
            inputs.update(present(props, SECRET_INPUT, POLICY, TRUST))
            inputs.update(library_id=item.library_id, name=item.name, description=unmarked(item.description)[0])
            outputs = _outputs(client, item, inputs, None, previous=props)
        return ReadResult(id_, outputs, inputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        # the guard's rule at the delete itself: it holds where the guard's record of the last run
        # is no guide (a failed run recorded it, a replacement, a guard taken out of the state)
        refused = connection.refused_delete(Declared(str(props.get("name")), f"library item {id_}"))
        if refused:
            raise ImageError(f"item {props.get('name')!r} ({id_})", f"not deleted: {refused}")
        with connection.content_library() as client:
            client.delete_item(id_)  # already gone counts as done


class ContentLibraryItem(pulumi.dynamic.Resource, module="vmimage", name="ContentLibraryItem"):
    """An image file as a content library item. Type token: pulumi-python:dynamic/vmimage:ContentLibraryItem."""

    item_id: pulumi.Output[str]
    vmi_id: pulumi.Output[str]
    content_version: pulumi.Output[str]
    fingerprint: pulumi.Output[str]
    size_bytes: pulumi.Output[int]
    files: pulumi.Output[list]
    image: pulumi.Output[dict]
    becomes: pulumi.Output[dict]

    def __init__(
        self,
        resource_name: str,
        *,
        library_id: pulumi.Input[str],
        name: pulumi.Input[str],
        source: pulumi.Input[str],
        description: pulumi.Input[str] | None = None,
        sha256: pulumi.Input[str] | None = None,
        adopt_id: pulumi.Input[str] | None = None,
        source_secret: bool = False,
        declaration: str | None = None,
        instance: pulumi.Input[str] | None = None,
        security_policy: str | None = None,
        trust: list[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``security_policy``: the library's (vCenter's name), ``trust``: the stack's trusted
        certificates (PEM paths): ``becomes`` says whether vCenter will hold the package compliant.
        ``adopt_id``: the UUID of an existing item to take over instead of creating one. A source
        URL that carries credentials (user:password@, a signed query) is kept as a secret.
        ``source_secret``: the source was set as a secret (`pulumi config set --secret`): it stays
        one, no message shows it, and the fingerprint keeps only a digest of a URL.
        ``declaration`` and ``instance`` (the stack instance's salt, providers/instance.py): what a
        create run again after an interrupted one recognises its item by."""
        if source_secret or (isinstance(source, str) and url_has_credentials(source)):
            source = pulumi.Output.secret(source)
        inputs = {
            "library_id": library_id,
            "name": name,
            "source": source,
            "description": description,
            "sha256": sha256,
            "adopt_id": adopt_id,
            **({SECRET_INPUT: True} if source_secret else {}),
            **({INSTANCE: instance} if instance is not None else {}),
            **({POLICY: security_policy} if security_policy else {}),
            **({TRUST: list(trust)} if trust else {}),
            **{
                key: None
                for key in (
                    "item_id",
                    "vmi_id",
                    "content_version",
                    "size_bytes",
                    "files",
                    "image",
                    "fingerprint",
                    "source_sha256",
                    "becomes",
                )
            },
        }
        super().__init__(ContentLibraryItemProvider(declaration), resource_name, inputs, opts)
