"""The review comment for a catalog change: `pulumi preview --json` in, Markdown in image terms out.

A reviewer reads what changes for the teams that deploy VMs: images added, removed, changed
or replaced, with their display name, scope, VMI ID and what the image is (OS, version,
hardware version, firmware), and which VMs' name resolution moves. Pure: the engine's JSON
and, optionally, the stack's current outputs (`pulumi stack output --json`) are the inputs.
Secrets never appear: the engine masks secret values as ``[secret]``, and every URL is
redacted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from vmimage.errors import ImageError, redact
from vmimage.ids import vmi_id
from vmimage.models import CLUSTER_KIND

_IMAGE_TYPES = ("dynamic/vmimage:VirtualMachineImage", "dynamic/vmimage:ClusterVirtualMachineImage")
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # how the engine spells an unknown value in JSON
_ORDER = {"added": 0, "replaced": 1, "changed": 2, "removed": 3}
_MARK = {"added": "➕ added", "removed": "➖ removed", "changed": "✏️ changed", "replaced": "♻️ replaced"}


@dataclass
class ImageChange:
    kind: str  # added, removed, changed, replaced
    display_name: str
    scope: str  # a namespace, or "cluster"
    vmi_id: str | None
    status: dict[str, Any] = field(default_factory=dict)
    what: list[str] = field(default_factory=list)


def _known(value: Any) -> Any:
    return None if value == _UNKNOWN or value == "[secret]" else value


def _state(step: dict[str, Any], which: str) -> dict[str, Any]:
    state = step.get(which) or {}
    return {**(state.get("inputs") or {}), **(state.get("outputs") or {})}


def _vmi(props: dict[str, Any]) -> str | None:
    if _known(props.get("vmi_id")):
        return props["vmi_id"]
    item_id = _known(props.get("item_id"))
    try:
        return vmi_id(item_id) if isinstance(item_id, str) else None
    except Exception:
        return None


def _scope(props: dict[str, Any], type_: str) -> str:
    return "cluster" if type_.endswith(CLUSTER_KIND) else str(props.get("namespace") or "?")


def image_changes(preview: dict[str, Any]) -> list[ImageChange]:
    """What the preview does to image objects, in image terms."""
    changes = []
    for step in preview.get("steps") or []:
        type_ = (step.get("newState") or step.get("oldState") or {}).get("type", "")
        if not type_.endswith(_IMAGE_TYPES) or step.get("op") not in ("create", "delete", "update", "replace"):
            continue
        old, new = _state(step, "oldState"), _state(step, "newState")
        props = new or old
        name = str(props.get("display_name") or old.get("display_name") or "?")
        op = step["op"]
        if op == "create":
            change = ImageChange("added", name, _scope(new, type_), _vmi(new))
            capabilities = _known(new.get("capabilities")) or []
            if capabilities:
                change.what.append(f"capabilities: {', '.join(capabilities)}")
        elif op == "delete":
            change = ImageChange("removed", name, _scope(old, type_), _vmi(old), old.get("status") or {})
            change.what.append(f"VMs that name {_vmi(old) or 'it'} or {name!r} in this scope no longer resolve")
        elif op == "replace":
            before, after = _vmi(old), _vmi(new)
            change = ImageChange("replaced", name, _scope(new, type_), after, old.get("status") or {})
            moved = f"{before} → {after or 'a new ID'}" if before != after else str(before)
            reasons = ", ".join(step.get("replaceReasons") or []) or "a replacing input"
            change.what.append(
                f"replaced ({reasons}): the VMI ID changes ({moved}); VMs that name {before} break"
                if before != after
                else f"replaced ({reasons}), same VMI ID"
            )
        else:
            change = ImageChange("changed", name, _scope(new, type_), _vmi(old) or _vmi(new), old.get("status") or {})
            change.what.extend(_what_changed(old, new))
        changes.append(change)
    _note_scope_moves(changes)
    known = {c.vmi_id: c.status for c in changes if c.vmi_id and c.status}
    for change in changes:  # a new scope of an existing item: the image is what it was elsewhere
        if not change.status and change.vmi_id in known:
            change.status = known[change.vmi_id]
    return sorted(changes, key=lambda c: (_ORDER[c.kind], c.display_name, c.scope))


def _what_changed(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    what = []
    if old.get("content_fingerprint") != new.get("content_fingerprint") or _known(new.get("content_version")) is None:
        what.append("new content (a new content version of the same item; the VMI ID stays)")
    before, after = set(old.get("capabilities") or []), set(_known(new.get("capabilities")) or [])
    if after - before:
        what.append(f"capabilities added: {', '.join(sorted(after - before))}")
    if before - after:
        what.append(f"capabilities removed: {', '.join(sorted(before - after))}")
    if old.get("display_name") != new.get("display_name") and new.get("display_name"):
        what.append(f"display name {old.get('display_name')!r} → {new.get('display_name')!r}")
    if old.get("extra_labels") != new.get("extra_labels") and new.get("extra_labels") is not None:
        what.append("labels changed")
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
    current = (outputs or {}).get("images") or {}
    moves = []
    for change in changes:
        placements = current.get(change.display_name) or []
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
            namespaces = sorted(p.get("namespace") for p in placements if p.get("namespace"))
            where = f" (namespaces {', '.join(namespaces)} keep their own)" if namespaces else ""
            moves.append(
                f"VMs in namespaces without an image of their own named {change.display_name!r} "
                f"stop resolving it{where}"
            )
    return moves


def _image_facts(status: dict[str, Any]) -> tuple[str, str, str, str]:
    if status.get("type") == "ISO":
        return "ISO", "—", "—", "—"
    os_info = status.get("osInfo") or {}
    os_text = " ".join(str(v) for v in (os_info.get("type"), os_info.get("version")) if v)
    version = (status.get("productInfo") or {}).get("version") or ""
    hardware = f"vmx-{status['hardwareVersion']}" if status.get("hardwareVersion") else ""
    return os_text or "—", str(version) or "—", hardware or "—", str(status.get("firmware") or "—")


def _cell(text: str) -> str:
    return redact(text).replace("|", "\\|").replace("\n", " ")


def parse_preview(text: str, source: str) -> dict[str, Any]:
    """`pulumi preview --json` as one document (steps), or as the engine's event stream
    (`PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true`: steps from its resourcePreEvents, and the
    policy violations from its policyEvents), as one document with ``policies``."""

    stripped = text.lstrip()
    try:
        if not stripped.startswith("{") or "\n{" not in stripped.strip():
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ValueError("not an object")
            return document
        events = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    except ValueError as error:
        raise ImageError(source, f"not JSON ({error}); give the output of `pulumi preview --json`") from None
    document: dict[str, Any] = {"steps": [], "changeSummary": {}, "policies": []}
    for event in events:
        if not isinstance(event, dict):
            continue
        if "resourcePreEvent" in event:
            meta = event["resourcePreEvent"].get("metadata") or {}
            document["steps"].append(
                {"op": meta.get("op"), "urn": meta.get("urn"), "oldState": meta.get("old"), "newState": meta.get("new")}
            )
        elif "policyEvent" in event:
            document["policies"].append(event["policyEvent"])
        elif "summaryEvent" in event:
            document["changeSummary"] = event["summaryEvent"].get("resourceChanges") or {}
    return document


def _violations(preview: dict[str, Any]) -> list[str]:
    lines = []
    for event in preview.get("policies") or []:
        message = [part for part in str(event.get("message") or "").splitlines() if part.strip()]
        detail = message[-1] if message else ""
        resource = str(event.get("resourceUrn") or "").rsplit("::", 1)[-1] or "the stack"
        lines.append(f"[{event.get('enforcementLevel', '?')}] {event.get('policyName', '?')} ({resource}): {detail}")
    return lines


def summary_markdown(preview: dict[str, Any], stack: str, outputs: dict[str, Any] | None = None) -> str:
    """The review comment for one stack's preview."""
    changes = image_changes(preview)
    violations = _violations(preview)
    counts = {kind: sum(1 for c in changes if c.kind == kind) for kind in _ORDER}
    steps = preview.get("changeSummary") or {}
    lines = [f"### vmimage catalog · `{stack}`", ""]
    policy_lines = ["", "**Policy violations**", ""] + [f"- {_cell(v)}" for v in violations] if violations else []
    if not changes:
        lines.append("No image changes." + (" (Other resources change: see the diff.)" if _others(steps) else ""))
        return "\n".join(lines + policy_lines) + "\n"
    head = " · ".join(f"**{counts[k]} {k}**" for k in _ORDER if counts[k])
    engine = ", ".join(f"{n} {op}" for op, n in sorted(steps.items()) if op != "same" and n)
    lines += [f"{head} ({engine} in all)", ""]
    lines += [
        "| | image | scope | VMI ID | OS | version | hardware | firmware | what changes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for change in changes:
        facts = _image_facts(change.status)
        cells = [_MARK[change.kind], change.display_name, change.scope, change.vmi_id or "(new)", *facts]
        cells.append("; ".join(change.what) or "—")
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    moves = resolution_moves(changes, outputs)
    if moves:
        lines += ["", "**Name resolution that changes for VMs**", ""] + [f"- {_cell(m)}" for m in moves]
    return "\n".join(lines + policy_lines) + "\n"


def _others(steps: dict[str, int]) -> bool:
    return any(n for op, n in steps.items() if op != "same")
