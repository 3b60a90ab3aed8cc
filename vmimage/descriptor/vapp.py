"""OVF properties as vSphere's vApp sees them: the type string and the parsed default.

govmomi folds an OVF property's type, ``ovf:password`` and ``ovf:qualifiers`` into one vApp type
(``password(8..)``, ``string["a", "b"]``, ``int(0..255)``, ``ip``, ``expression``), then parses the
default against that type: booleans become ``True``/``False``, and a default the type refuses
fails the descriptor. VM Operator publishes both, so this module reproduces both.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re

from vmimage.descriptor.envelope import Property, parse_integer

_BASE_TYPES = {
    "uint8": "int", "sint8": "int", "uint16": "int", "sint16": "int", "uint32": "int", "sint32": "int",
    "uint64": "int", "sint64": "int", "int": "int", "string": "string", "boolean": "boolean",
    "real32": "real", "real64": "real",
}  # fmt: skip

_MIN_LEN = re.compile(r"MinLen\(([0-9]+)\)")
_MAX_LEN = re.compile(r"MaxLen\(([0-9]+)\)")
_VALUE_MAP = re.compile(r"ValueMap\{(.*)\}")
_NUMBER = r"([-]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
_MIN_VALUE = re.compile(rf"MinValue\({_NUMBER}\)")
_MAX_VALUE = re.compile(rf"MaxValue\({_NUMBER}\)")
_IP_ARG = re.compile(r"""Ip\s*\(\s*["']?([^"')]*)["']?\s*\)""")
_IP_NO_ARG = re.compile(r"Ip\s*\(\s*\)")
_IP_BARE = re.compile(r"\bIp\b")
_EXPRESSIONS = "AutoIp|VimIp|Net|Netmask|Gateway|DomainName|HostPrefix|Dns|Subnet|SearchPath|HttpProxy"
_EXPRESSION = re.compile(rf"""({_EXPRESSIONS})\s*\(\s*["']?([^"')]*)["']?\s*\)""")
_EXPRESSION_BARE = re.compile(rf"\b({_EXPRESSIONS})\b")

_INT32 = (-(2**31), 2**31 - 1)
MAX_STRING = 65535


class PropertyValueError(ValueError):
    """A property's default that its vApp type refuses."""


def _go_atoi(digits: str) -> int:
    return parse_integer(digits, 0, 2**63 - 1) or 0  # Go's Atoi fails past int64: the qualifier is then 0


def _value_map(content: str) -> list[str]:
    """The values of ``ValueMap{…}``: quoted strings or bare tokens, comma-separated."""
    values: list[str] = []
    i, content = 0, content.strip()
    while i < len(content):
        while i < len(content) and content[i] in ", ":
            i += 1
        if i >= len(content):
            break
        if content[i] == '"':
            i += 1
            start = i
            while i < len(content):
                if content[i] == "\\" and i + 1 < len(content):
                    i += 2
                    continue
                if content[i] == '"':
                    values.append(content[start:i])
                    i += 1
                    break
                i += 1
            continue
        start = i
        while i < len(content) and content[i] != ",":
            i += 1
        values.append(content[start:i].strip())
    return values


def _int64(value: float) -> int:
    """Go's int64(float64): truncation, and the minimum int64 for what does not fit."""
    return int(value) if math.isfinite(value) and -(2**63) <= value < 2**63 else -(2**63)


def _go_float(value: float) -> str:
    """Go's ``%v`` of a float64: shortest digits, exponent form below 1e-4 or from 1e21."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}e{sign}{abs(int(exponent)):02d}"
    return text


def _int_range(values: list[str]) -> tuple[int, int] | None:
    numbers = [parse_integer(v.strip(), -(2**63), 2**63 - 1) for v in values]
    if not numbers or None in numbers:
        return None
    return min(numbers), max(numbers)


def property_type(prop: Property) -> str:
    """The vApp type of an OVF property (govmomi's toVAppPropertyType)."""
    base = _BASE_TYPES.get(prop.type.strip().lower(), prop.type)
    if prop.password and base == "string":
        base = "password"
    qualifiers = (prop.qualifiers or "").strip()
    if not qualifiers:
        return base
    if _EXPRESSION.search(qualifiers) or _EXPRESSION_BARE.search(qualifiers):
        return "expression"
    ip = _IP_ARG.search(qualifiers)
    is_ip = ip is not None or _IP_NO_ARG.search(qualifiers) or _IP_BARE.search(qualifiers)
    if is_ip and base in ("string", "password"):
        argument = ip.group(1).strip() if ip else ""
        return f"ip:{argument}" if argument else "ip"
    min_len = _go_atoi(m.group(1)) if (m := _MIN_LEN.search(qualifiers)) else 0
    max_len = _go_atoi(m.group(1)) if (m := _MAX_LEN.search(qualifiers)) else -1
    choices = _value_map(m.group(1)) if (m := _VALUE_MAP.search(qualifiers)) else []
    min_value = float(m.group(1)) if (m := _MIN_VALUE.search(qualifiers)) else None
    max_value = float(m.group(1)) if (m := _MAX_VALUE.search(qualifiers)) else None
    if base in ("string", "password"):
        if choices:
            quoted = ", ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in choices)
            return f"{base}[{quoted}]"
        if max_len >= 0:
            return f"{base}({min_len}..{max_len})"
        if min_len > 0:
            return f"{base}({min_len}..)"
    elif base == "int":
        bounds = _int_range(choices) if choices else None
        if bounds:
            return f"int({bounds[0]}..{bounds[1]})"
        if min_value is not None or max_value is not None:
            low = _int64(min_value) if min_value is not None else _INT32[0]
            high = _int64(max_value) if max_value is not None else _INT32[1]
            return f"int({low}..{high})"
    elif base == "real" and (min_value is not None or max_value is not None):
        low = min_value if min_value is not None else -1e308
        high = max_value if max_value is not None else 1e308
        return f"real({_go_float(low)}..{_go_float(high)})"
    return base


def expression_default(qualifiers: str | None) -> str:
    """``${vimIp:}`` or ``${net:Management}``: the default vSphere gives an expression property."""
    qualifiers = (qualifiers or "").strip()
    if match := _EXPRESSION.search(qualifiers):
        name, argument = match.group(1), match.group(2).strip()
    elif match := _EXPRESSION_BARE.search(qualifiers):
        name, argument = match.group(1), ""
    else:
        return ""
    return "${" + name[0].lower() + name[1:] + ":" + argument + "}"


# The length checks of govmomi's parser, including its swap: "(..N)" is checked as a minimum
# and "(N..)" as a maximum. VM Operator publishes what that parser accepts, so the swap stays.
_STR_DOTS_N = re.compile(r"^(?:string|password)\(\.\.([0-9]+)\)$")
_STR_N_DOTS = re.compile(r"^(?:string|password)\(([0-9]+)\.\.\)$")
_STR_RANGE = re.compile(r"^(?:string|password)\(([0-9]+)\.\.([0-9]+)\)$")
_INT_RANGE = re.compile(r"^int\(([+-]?[0-9]+)\.\.([+-]?[0-9]+)\)$")
_REAL = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_REAL_RANGE = re.compile(rf"^real\(({_REAL})\.\.({_REAL})\)$")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}


def _refuse(key: str, vapp_type: str, value: str, why: str = "") -> PropertyValueError:
    shown = "" if vapp_type.startswith("password") else f", value={value}"
    return PropertyValueError(f"failed to parse prop={json.dumps(key)}, type={vapp_type}{shown}{why}")


def _is_ip(value: str) -> bool:
    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_float(value: str) -> bool:
    if not value.isascii():  # Python's float() reads other scripts' digits; Go's ParseFloat does not
        return False
    try:
        float(value.replace("_", "x"))  # Go refuses underscores here; Python would accept them
    except ValueError:
        return False
    return True


def parse_default(key: str, vapp_type: str, value: str) -> str:
    """The default as vApp stores it for that type (govmomi's parseVAppConfigValue)."""
    value = value.strip()
    length = len(value.encode())
    if vapp_type in ("string", "password"):
        if length > MAX_STRING:
            raise _refuse(key, vapp_type, value, f" due to length: len={length}, min=0, max={MAX_STRING}")
        return value
    if vapp_type == "boolean":
        return "True" if value in _TRUE else "False"
    if vapp_type == "int":
        if parse_integer(value, *_INT32) is None:
            raise _refuse(key, vapp_type, value)
        return value
    if vapp_type == "real":
        if not _is_float(value):
            raise _refuse(key, vapp_type, value)
        return value
    if vapp_type == "ip":
        if not _is_ip(value):
            raise _refuse(key, vapp_type, value)
        return value
    if m := _STR_DOTS_N.match(vapp_type):
        if length < (parse_integer(m.group(1), 0, 2**63) or 0):
            raise _refuse(key, vapp_type, value, f" due to length: len={length}, min={m.group(1)}, max={MAX_STRING}")
    elif m := _STR_N_DOTS.match(vapp_type):
        if length > (parse_integer(m.group(1), 0, 2**63) or 0):
            raise _refuse(key, vapp_type, value, f" due to length: len={length}, min=0, max={m.group(1)}")
    elif m := _STR_RANGE.match(vapp_type):
        low, high = (parse_integer(g, 0, 2**63) or 0 for g in m.groups())
        if low > high or not low <= length <= high:
            raise _refuse(key, vapp_type, value, f" due to length: len={length}, min={low}, max={high}")
    elif m := _INT_RANGE.match(vapp_type):
        low, high = (parse_integer(g, -(2**63), 2**63 - 1) or 0 for g in m.groups())
        unsigned = low >= 0  # govmomi parses these with ParseUint: no sign
        number = None if unsigned and value[:1] in "+-" else parse_integer(value, low, high)
        if low > high or number is None:
            raise _refuse(key, vapp_type, value, " due to size")
    elif m := _REAL_RANGE.match(vapp_type):
        low, high = float(m.group(1)), float(m.group(2))
        if low > high or not _is_float(value) or not low <= float(value) <= high:
            raise _refuse(key, vapp_type, value, " due to size")
    return value
