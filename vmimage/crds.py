"""CustomResourceDefinitions for the two image kinds, derived from `vmimage.models`.

Pydantic's JSON schema is turned into a Kubernetes structural schema: references
inlined, titles dropped, ``Optional`` unwrapped, quantities left as int-or-string.
"""

from __future__ import annotations

import copy
from typing import Any

from vmimage.models import CLUSTER_KIND, GROUP, NAMESPACED_KIND, VERSION, ImageSpec, ImageStatus

SHORT_NAMES = {
    NAMESPACED_KIND: ["vmi", "vmimage"],
    CLUSTER_KIND: ["cvmi", "cvmimage", "clustervmi", "clustervmimage"],
}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Display Name", "type": "string", "jsonPath": ".status.name"},
    {"name": "Type", "type": "string", "jsonPath": ".status.type"},
    {"name": "Image Version", "type": "string", "jsonPath": ".status.productInfo.version"},
    {"name": "OS Name", "type": "string", "jsonPath": ".status.osInfo.type"},
    {"name": "OS Version", "type": "string", "jsonPath": ".status.osInfo.version"},
    {"name": "Hardware Version", "type": "string", "jsonPath": ".status.hardwareVersion"},
    {"name": "Capabilities", "type": "string", "jsonPath": ".status.capabilities", "priority": 1},
]

_DROPPED_KEYWORDS = {"title", "default", "$defs"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    variants = node.get("anyOf")
    if variants and any(v == {"type": "null"} for v in variants):
        rest = [v for v in variants if v != {"type": "null"}]
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        inner = rest[0] if len(rest) == 1 else {"anyOf": rest}
        return _structural({**inner, **outer}, defs)
    result = {key: _structural(value, defs) for key, value in node.items() if key not in _DROPPED_KEYWORDS}
    if "properties" in node:  # field names are data here, never keywords to drop
        result["properties"] = {name: _structural(field, defs) for name, field in node["properties"].items()}
    if "const" in result:  # const is not allowed in structural schemas
        result["enum"] = [result.pop("const")]
    if "additionalProperties" in result and result["additionalProperties"] is False:
        del result["additionalProperties"]  # the API server prunes unknown fields instead
    if "required" in result and not result["required"]:
        del result["required"]
    if result.get("format") == "date-time" and "type" not in result:
        result["type"] = "string"
    return result


def model_schema(model: type) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a pydantic model, with camelCase field names."""
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    schema = _structural(raw, raw.get("$defs", {}))
    if model.__doc__:
        schema["description"] = " ".join(model.__doc__.split())
    return schema


def _int32(schema: dict[str, Any]) -> dict[str, Any]:
    """Mark hardwareVersion as int32, as the upstream schema does."""
    schema["properties"]["hardwareVersion"]["format"] = "int32"
    return schema


def image_schema() -> dict[str, Any]:
    """openAPIV3Schema shared by both kinds."""
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": model_schema(ImageSpec),
            "status": _int32(model_schema(ImageStatus)),
        },
    }


def crd(kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of ``kind`` (VirtualMachineImage or ClusterVirtualMachineImage)."""
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list(SHORT_NAMES[kind]),
            },
            "scope": "Cluster" if kind == CLUSTER_KIND else "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": image_schema()},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": copy.deepcopy(PRINTER_COLUMNS),
                }
            ],
        },
    }


def crds() -> list[dict[str, Any]]:
    return [crd(NAMESPACED_KIND), crd(CLUSTER_KIND)]
