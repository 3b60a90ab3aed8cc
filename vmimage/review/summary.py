"""The review comment for a catalog change: `pulumi preview --json` in, Markdown in image terms out.

A reviewer reads what changes for the teams that deploy VMs: images added, removed, changed
or replaced, with their display name, scope, VMI ID and what the image is (OS, version,
hardware version, firmware, who signed it and whether the stack trusts the signer), and which
VMs' name resolution moves. Pure: the engine's JSON
and, optionally, the stack's current outputs (`pulumi stack output --json`) are the inputs.
Secrets never appear: the engine masks secret values as ``[secret]``, and every URL is
redacted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from vmimage.contract.ids import vmi_id
from vmimage.contract.models import CLUSTER_KIND, REASON_SECURITY_NOT_COMPLIANT
from vmimage.errors import ImageError, redact
from vmimage.review.facts import image_facts, moves
from vmimage.review.governance import printable, signature_cause
from vmimage.review.preview_checks import unchecked_in

_IMAGE_TYPES = ("dynamic/vmimage:VirtualMachineImage", "dynamic/vmimage:ClusterVirtualMachineImage")
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # how the engine spells an unknown value in JSON
_SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"  # the key of the engine's secret envelope
MAX_DEPTH = 64  # a real preview nests a dozen levels; deeper is not one
_ORDER = {"added": 0, "replaced": 1, "changed": 2, "removed": 3}
_MARK = {"added": "➕ added", "removed": "➖ removed", "changed": "✏️ changed", "replaced": "♻️ replaced"}


@dataclass
class ImageChange:
    kind: str  # added, removed, changed, replaced
    display_name: str
    scope: str  # a namespace, or "cluster"
    vmi_id: str | None
    facts: dict[str, Any] = field(default_factory=dict)  # what the image is (after), vmimage/review/facts.py
    what: list[str] = field(default_factory=list)
    before: dict[str, Any] | None = None  # what it was, where a change moves it


def _known(value: Any) -> Any:
    return None if value == _UNKNOWN or value == "[secret]" else value


def _dict(value: Any) -> dict[str, Any]:
    """A mapping where one is expected, else empty: a preview of another shape summarises as nothing."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [str(v) for v in _list(_known(value)) if _known(v) is not None]


def masked(document: Any, source: str) -> Any:
    """The document with every secret envelope (``{"4dabf…": …, "ciphertext": …}``, as the event stream
    carries secrets) replaced by ``[secret]``, walked without recursion; deeper than MAX_DEPTH is refused."""
    root: list[Any] = [document]
    pending = [(root, 0, 0)]
    while pending:
        container, key, depth = pending.pop()
        value = container[key]
        if isinstance(value, dict) and _SECRET_SIGNATURE in value:
            container[key] = "[secret]"
            continue
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise ImageError(source, f"nested deeper than {MAX_DEPTH} levels: not the output of `pulumi preview`")
            keys = value.keys() if isinstance(value, dict) else range(len(value))
            pending.extend((value, k, depth + 1) for k in keys)
    return root[0]


def _state(step: dict[str, Any], which: str) -> dict[str, Any]:
    state = _dict(step.get(which))
    return {**_dict(state.get("inputs")), **_dict(state.get("outputs"))}


def _vmi(props: dict[str, Any]) -> str | None:
    if isinstance(_known(props.get("vmi_id")), str):
        return props["vmi_id"]
    item_id = _known(props.get("item_id"))
    try:
        return vmi_id(item_id) if isinstance(item_id, str) else None
    except Exception:
        return None


def _facts_after(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What the image is after the step: the status an applied step published (a deploy's event
    stream), else what the preview says it becomes (``becomes``, read from the local descriptor),
    else the status it keeps. The signature is the package's, read before the upload (``becomes``)."""
    status, becomes = _dict(new.get("status")), _dict(_known(new.get("becomes")))
    if status and status != _dict(old.get("status")):
        signature = _dict(becomes.get("signature"))
        return {**image_facts(status), **({"signature": signature} if signature else {})}
    if becomes:
        return {key: value for key, value in becomes.items() if _known(value) is not None}
    return image_facts(status) if status else {}


def _scope(props: dict[str, Any], type_: str) -> str:
    return "cluster" if type_.endswith(CLUSTER_KIND) else str(props.get("namespace") or "?")


def image_changes(preview: dict[str, Any]) -> list[ImageChange]:
    """What the preview does to image objects, in image terms."""
    changes = []
    for step in _list(preview.get("steps")):
        step = _dict(step)
        type_ = str(_dict(step.get("newState") or step.get("oldState")).get("type") or "")
        if not type_.endswith(_IMAGE_TYPES) or step.get("op") not in ("create", "delete", "update", "replace"):
            continue
        old, new = _state(step, "oldState"), _state(step, "newState")
        props = new or old
        name = str(props.get("display_name") or old.get("display_name") or "?")
        op = step["op"]
        after, before = _facts_after(old, new), image_facts(_dict(old.get("status")))
        if op == "create":
            change = ImageChange("added", name, _scope(new, type_), _vmi(new), after)
            capabilities = _strings(new.get("capabilities"))
            if capabilities:
                change.what.append(f"capabilities: {', '.join(capabilities)}")
        elif op == "delete":
            change = ImageChange("removed", name, _scope(old, type_), _vmi(old), before)
            change.what.append(f"VMs that name {_vmi(old) or 'it'} or {name!r} in this scope no longer resolve")
        elif op == "replace":
            before_id, after_id = _vmi(old), _vmi(new)
            change = ImageChange("replaced", name, _scope(new, type_), after_id, after or before, before=before)
            moved = f"{before_id} → {after_id or 'a new ID'}" if before_id != after_id else str(before_id)
            reasons = ", ".join(_strings(step.get("replaceReasons"))) or "a replacing input"
            change.what.append(
                f"replaced ({reasons}): the VMI ID changes ({moved}); VMs that name {before_id} break"
                if before_id != after_id
                else f"replaced ({reasons}), same VMI ID"
            )
        else:
            change = ImageChange(
                "changed", name, _scope(new, type_), _vmi(old) or _vmi(new), after or before, before=before
            )
            change.what.extend(_what_changed(old, new))
        if op != "delete":
            change.what.extend(_becomes_notes(change, bool(_known(new.get("becomes")) or after)))
        changes.append(change)
    _note_scope_moves(changes)
    known = {c.vmi_id: c.facts for c in changes if c.vmi_id and c.facts}
    for change in changes:  # a new scope of an existing item: the image is what it was elsewhere
        if not change.facts and change.vmi_id in known:
            change.facts = known[change.vmi_id]
    return sorted(changes, key=lambda c: (_ORDER[c.kind], c.display_name, c.scope))


def _becomes_notes(change: ImageChange, known: bool) -> list[str]:
    """What a reviewer must know of the image an added or changed row becomes, beyond its columns:
    the facts the table has no column for that move, and whether VM Operator would publish it Ready."""
    if not known:
        return ["what it becomes is known after the upload (a URL source)"] if change.kind == "added" else []
    notes = []
    security = _security_note(change.facts)
    if change.before is not None:
        moved = moves(change.before, change.facts)
        notes += [line for line in moved if line.split(":")[0] in _NOTED and not (security and line[:6] == "ready:")]
    elif change.facts.get("ready") not in (None, "True") and not security:
        notes.append(f"not Ready: VM Operator would publish it {change.facts['ready']}")
    if security:
        was_ready = change.before is not None and change.before.get("ready") == "True"
        notes.append(security + ("; it was Ready" if was_ready else ""))
    return notes


def _security_note(facts: dict[str, Any]) -> str | None:
    """ "NotReady: not security compliant (unsigned)" for an image VM Operator publishes NotReady for
    its item's security compliance (a library with an OVF security policy); None otherwise."""
    ready = facts.get("ready")
    cause = signature_cause(facts.get("signature"))
    if not (
        (isinstance(ready, str) and REASON_SECURITY_NOT_COMPLIANT in ready)
        or (ready in (False, "False") and cause not in (None, "not checked"))
    ):
        return None
    if cause is None:
        return "NotReady: not security compliant (vCenter's verdict; the package's own signature verified)"
    return "NotReady: not security compliant" + ("" if cause == "not checked" else f" ({cause})")


def _signature_cell(facts: dict[str, Any]) -> str:
    """Who signed the package and whether the stack trusts the signer: ``CN=… (trusted)``,
    ``unsigned``, ``CN=… (untrusted)``, ``CN=… (tampered)``; — where nothing was read (an ISO,
    a URL source, a state from before signatures)."""
    signature = facts.get("signature")
    if facts.get("type") == "ISO" or not isinstance(signature, dict) or signature_cause(signature) == "not checked":
        return "—"
    cause = signature_cause(signature)
    signer = printable(signature["signer"]) if _known(signature.get("signer")) else None
    if cause == "unsigned":
        return "unsigned"
    word = "trusted" if cause is None else cause
    return f"{signer} ({word})" if signer else word


_COLUMNS = ("os", "version", "hardware", "firmware")
_NOTED = ("type", "disks", "ready")  # the facts without a column of their own


def _what_changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    what = []
    if old.get("content_fingerprint") != new.get("content_fingerprint") or _known(new.get("content_version")) is None:
        what.append("new content (a new content version of the same item; the VMI ID stays)")
    before, after = set(_strings(old.get("capabilities"))), set(_strings(new.get("capabilities")))
    if after - before:
        what.append(f"capabilities added: {', '.join(sorted(after - before))}")
    if before - after:
        what.append(f"capabilities removed: {', '.join(sorted(before - after))}")
    if old.get("display_name") != new.get("display_name") and new.get("display_name"):
        what.append(f"display name {old.get('display_name')!r} → {new.get('display_name')!r}")
    if old.get("extra_labels") != new.get("extra_labels") and new.get("extra_labels") is not None:
        what.append("labels changed")
    before_mode, after_mode = old.get("mode") or "publish", _known(new.get("mode")) or "publish"
    if before_mode != after_mode:
        who = "VM Operator publishes it; vmimage lets go of it" if after_mode == "supervisor" else "vmimage writes it"
        what.append(f"mode {before_mode} → {after_mode}: {who}")
    return what or ["refreshed (no change a VM sees)"]


def _note_scope_moves(changes: list[ImageChange]) -> None:
    """An image added in one scope while it stays in others is a scope added; removed, likewise."""
    scopes: dict[str, dict[str, set[str]]] = {}
    for change in changes:
        scopes.setdefault(change.display_name, {}).setdefault(change.kind, set()).add(change.scope)
    for change in changes:
        kinds = scopes[change.display_name]
        others = (kinds.get("changed", set()) | kinds.get("replaced", set())) - {change.scope}
        if change.kind == "added" and (others or kinds.get("removed")):
            change.what.insert(0, f"scope added: {change.scope}")
        if change.kind == "removed" and (others or kinds.get("added")):
            change.what.insert(0, f"scope removed: {change.scope}")


def resolution_moves(changes: list[ImageChange], outputs: dict[str, Any] | None) -> list[str]:
    """VMs whose name resolution changes: a namespace image that now shadows a cluster image of the
    same display name (or stops shadowing it), known from the stack's current outputs."""
    current = _dict(_dict(outputs).get("images"))
    moves = []
    for change in changes:
        placements = [_dict(p) for p in _list(current.get(change.display_name))]
        in_cluster = [p for p in placements if p.get("kind") == CLUSTER_KIND]
        if (
            change.kind == "added"
            and change.scope != "cluster"
            and in_cluster
            and in_cluster[0].get("vmi_id") != change.vmi_id
        ):
            moves.append(
                f"VMs in {change.scope} naming {change.display_name!r} now get this namespace's image "
                f"instead of the cluster's {in_cluster[0].get('vmi_id')}"
            )
        if change.kind == "removed" and change.scope != "cluster" and in_cluster:
            moves.append(
                f"VMs in {change.scope} naming {change.display_name!r} now get the cluster's "
                f"{in_cluster[0].get('vmi_id')} instead"
            )
        if change.kind == "removed" and change.scope == "cluster":
            namespaces = sorted(str(p.get("namespace")) for p in placements if p.get("namespace"))
            where = f" (namespaces {', '.join(namespaces)} keep their own)" if namespaces else ""
            moves.append(
                f"VMs in namespaces without an image of their own named {change.display_name!r} "
                f"stop resolving it{where}"
            )
    return moves


def _cells(facts: dict[str, Any]) -> list[str]:
    if facts.get("type") == "ISO":
        return ["ISO", "—", "—", "—"]
    return [str(facts.get(key) or "—") for key in _COLUMNS]


def _fact_cells(change: ImageChange) -> list[str]:
    """The OS, version, hardware and firmware cells; a change that moves one shows ``old → new``."""
    after = _cells(change.facts)
    if change.before is None or change.kind == "removed":
        return after
    return [new if old == new else f"{old} → {new}" for old, new in zip(_cells(change.before), after, strict=True)]


def _cell(text: str) -> str:
    return redact(text).replace("|", "\\|").replace("\n", " ")


def parse_preview(text: str, source: str) -> dict[str, Any]:
    """`pulumi preview --json` as one document (steps), or as the engine's event stream
    (`PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true`, or `pulumi up --skip-preview --json`: steps
    from its resourcePreEvents, each applied step's new state from its resOutputsEvent, and
    the policy violations from its policyEvents, the warnings from its diagnosticEvents), as one
    document with ``policies`` and ``diagnostics``."""

    stripped = text.lstrip()
    try:
        if not stripped.startswith("{") or "\n{" not in stripped.strip():
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ValueError("not an object")
            return masked(document, source)
        events = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    except ValueError as error:
        raise ImageError(source, f"not JSON ({error}); give the output of `pulumi preview --json`") from None
    except RecursionError:
        raise ImageError(source, "nested too deep to be the output of `pulumi preview --json`") from None
    events = masked(events, source)
    document: dict[str, Any] = {"steps": [], "changeSummary": {}, "policies": [], "diagnostics": []}
    steps: dict[Any, dict[str, Any]] = {}  # by URN: an update's resOutputsEvent completes its step
    for event in events:
        if not isinstance(event, dict):
            continue
        if "resourcePreEvent" in event:
            meta = _dict(_dict(event["resourcePreEvent"]).get("metadata"))
            step = {
                "op": meta.get("op"),
                "urn": meta.get("urn"),
                "oldState": meta.get("old"),
                "newState": meta.get("new"),
            }
            document["steps"].append(step)
            steps[str(meta.get("urn"))] = step
        elif "resOutputsEvent" in event:
            meta = _dict(_dict(event["resOutputsEvent"]).get("metadata"))
            step = steps.get(str(meta.get("urn")))
            if step is not None and step["op"] != "delete" and _dict(meta.get("new")):
                step["newState"] = meta["new"]  # what was applied, outputs and all
        elif "policyEvent" in event:
            document["policies"].append(_dict(event["policyEvent"]))
        elif "diagnosticEvent" in event:
            document["diagnostics"].append(_dict(event["diagnosticEvent"]))
        elif "summaryEvent" in event:
            document["changeSummary"] = _dict(_dict(event["summaryEvent"]).get("resourceChanges"))
    return document


def _violations(preview: dict[str, Any]) -> list[str]:
    lines = []
    for event in map(_dict, _list(preview.get("policies"))):
        message = [part for part in str(event.get("message") or "").splitlines() if part.strip()]
        detail = message[-1] if message else ""
        resource = str(event.get("resourceUrn") or "").rsplit("::", 1)[-1] or "the stack"
        lines.append(f"[{event.get('enforcementLevel', '?')}] {event.get('policyName', '?')} ({resource}): {detail}")
    return lines


def _unchecked(preview: dict[str, Any]) -> list[str]:
    """What an offline preview did not check, from its warning (vmimage.review.preview_checks)."""
    found = (unchecked_in(str(_dict(d).get("message") or "")) for d in _list(preview.get("diagnostics")))
    return sorted({text for text in found if text})


def stack_of(preview: dict[str, Any]) -> str:
    """The stack's name, from the first step's URN (``urn:pulumi:<stack>::…``)."""
    urns = [str(_dict(step).get("urn") or "") for step in _list(preview.get("steps"))]
    return next((urn.split("::")[0].removeprefix("urn:pulumi:") for urn in urns if urn), "stack")


def summary_markdown(preview: dict[str, Any], stack: str, outputs: dict[str, Any] | None = None) -> str:
    """The review comment for one stack's preview."""
    changes = image_changes(preview)
    violations = _violations(preview)
    counts = {kind: sum(1 for c in changes if c.kind == kind) for kind in _ORDER}
    steps = _dict(preview.get("changeSummary"))
    lines = [f"### vmimage catalog · `{stack}`", ""]
    for text in _unchecked(preview):
        lines += [f"⚠️ **Offline preview**, not checked against vCenter: {_cell(text)}", ""]
    policy_lines = ["", "**Policy violations**", ""] + [f"- {_cell(v)}" for v in violations] if violations else []
    if not changes:
        lines.append("No image changes." + (" (Other resources change: see the diff.)" if _others(steps) else ""))
        return "\n".join(lines + policy_lines) + "\n"
    head = " · ".join(f"**{counts[k]} {k}**" for k in _ORDER if counts[k])
    engine = ", ".join(f"{n} {op}" for op, n in sorted(steps.items()) if op != "same" and isinstance(n, int) and n)
    lines += [f"{head} ({engine} in all)", ""]
    lines += [
        "| | image | scope | VMI ID | OS | version | hardware | firmware | signature | what changes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for change in changes:
        cells = [_MARK[change.kind], change.display_name, change.scope, change.vmi_id or "(new)", *_fact_cells(change)]
        cells.append(_signature_cell(change.facts))
        cells.append("; ".join(change.what) or "—")
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    moves = resolution_moves(changes, outputs)
    if moves:
        lines += ["", "**Name resolution that changes for VMs**", ""] + [f"- {_cell(m)}" for m in moves]
    return "\n".join(lines + policy_lines) + "\n"


def _others(steps: dict[str, Any]) -> bool:
    return any(isinstance(n, int) and n for op, n in steps.items() if op != "same")
