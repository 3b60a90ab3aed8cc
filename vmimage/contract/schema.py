"""Validating image objects against VM Operator's CRD schema, as an API server would (and stricter).

The API server prunes fields its schema does not know; `strict=True` reports them
instead, so a misspelt field fails a test rather than vanishing silently.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft7Validator, FormatChecker

from vmimage.contract.crds import image_schema
from vmimage.contract.models import VERSION
from vmimage.errors import ImageError


def _forbid_unknown(schema: dict[str, Any]) -> dict[str, Any]:
    if "properties" in schema:
        for name, field in schema["properties"].items():
            if name != "metadata":
                _forbid_unknown(field)
        schema["additionalProperties"] = False
    if isinstance(schema.get("items"), dict):
        _forbid_unknown(schema["items"])
    return schema


def _validator(strict: bool, version: str) -> Draft7Validator:
    schema = image_schema(version)
    return Draft7Validator(_forbid_unknown(schema) if strict else schema, format_checker=FormatChecker())


def schema_errors(obj: dict[str, Any], *, strict: bool = True, version: str = VERSION) -> list[str]:
    """Every way ``obj`` breaks the schema of ``version``, as ``path: message`` lines (empty when valid)."""
    errors = sorted(_validator(strict, version).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def validate_image(obj: dict[str, Any], *, source: str = "image", strict: bool = True) -> None:
    """Raise an ImageError listing every schema violation of ``obj``."""
    errors = schema_errors(obj, strict=strict)
    if errors:
        raise ImageError(source, "does not match the VirtualMachineImage schema: " + "; ".join(errors))
