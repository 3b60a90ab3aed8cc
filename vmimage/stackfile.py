"""A stack file read outside Pulumi (`vmimage get --from-vcenter`, `vmimage verify`): the
catalog config and the vCenter settings it holds. A file that is not what Pulumi would read is
the user's to fix: every problem is an ImageError naming the file and the line."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from vmimage.config import KEYS, NAMESPACE, CatalogConfig, ConfigError, load_catalog_config
from vmimage.descriptor.source import read_bounded_text
from vmimage.errors import ImageError
from vmimage.vsphere.settings import ALLOW_UNVERIFIED_SSL, CA_FILE, PASSWORD, SERVER, USER, ConnectionSettings
from vmimage.vsphere.settings import resolve_settings as _resolve_settings

MAX_STACK_FILE_BYTES = 4 * 2**20
_ENVIRONMENT = dict((SERVER, USER, PASSWORD, ALLOW_UNVERIFIED_SSL, CA_FILE))
# a problem line of load_catalog_config: "vmimage:images[0].source: ..."
_LOCATION = re.compile(r"^([A-Za-z0-9_-]+:[A-Za-z0-9_]+)((?:\[\d+\]|\.[A-Za-z0-9_]+)*): ")
_STEP = re.compile(r"\[(\d+)\]|\.([A-Za-z0-9_]+)")


def _what(value: Any) -> str:
    """A YAML value's type, as a person writing the file would call it."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "empty"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"


def _child(node: yaml.Node | None, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(step, str):
        return next((value for key, value in node.value if key.value == step), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
        return node.value[step]
    return None


@dataclass(frozen=True)
class StackFile:
    path: str
    catalog: CatalogConfig
    values: dict[str, Any]  # every config value, by key
    config_node: yaml.Node | None  # the config mapping as parsed, for the line of a key

    @property
    def declares_nothing(self) -> bool:
        return not self.catalog.images and not self.catalog.sync

    def line(self, key: str, *steps: str | int) -> int | None:
        """The line (1-based) of a config key's value, or of the value ``steps`` below it."""
        node = _child(self.config_node, key)
        for step in steps:
            deeper = _child(node, step)
            if deeper is None:
                break
            node = deeper
        return node.start_mark.line + 1 if node is not None else None

    def where(self, line: int | None) -> str:
        return f"{self.path}:{line}" if line else self.path

    def connection_settings(self, env: Mapping[str, str]) -> ConnectionSettings:
        """vCenter's settings: the file's vsphere:* values, the environment for what it leaves
        out. An encrypted value (a Pulumi secret) is not read: the environment must have it."""
        plain = {k: v for k, v in self.values.items() if k.startswith("vsphere:") and not isinstance(v, dict)}
        try:
            return _resolve_settings(plain, env)
        except ImageError as exc:
            key = exc.source
            if isinstance(self.values.get(key), dict):
                raise ImageError(
                    self.where(self.line(key)),
                    f"{key} is encrypted (a Pulumi secret), which vmimage does not decrypt: "
                    f"set {_ENVIRONMENT.get(key, 'it in the environment')}",
                ) from None
            if key in self.values:
                raise ImageError(self.where(self.line(key)), f"{key}: {exc.reason}") from None
            raise


def _config_problem(stack: StackFile, problem: str) -> tuple[str, str]:
    """Where a line of load_catalog_config is in the file (``FILE:LINE``, from its key path), and the line."""
    match = _LOCATION.match(problem)
    if match is None:
        return stack.path, problem
    steps = [int(index) if index else name for index, name in _STEP.findall(match.group(2))]
    return stack.where(stack.line(match.group(1), *steps)), problem


def read_stack_file(path: str) -> StackFile:
    """The stack file at ``path``, checked as far as the commands reading it need."""
    hint = ": run from the project directory, or pick a stack with --stack"
    text = read_bounded_text(path, MAX_STACK_FILE_BYTES, " of a stack file", hint)
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        document = loader.construct_document(root) if root is not None else None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ImageError(f"{path}:{line}", f"not valid YAML: character {exc.character:#06x} is not allowed") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        context = ""  # what the parser was in, as PyYAML puts it before the problem
        if exc.context:
            started = exc.context_mark
            context = f"{exc.context}" + (f" (line {started.line + 1})" if started else "") + ", "
        raise ImageError(where, f"not valid YAML: {context}{exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ImageError(path, f"not valid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if document is None:
        document = {}  # an empty stack file: no config
    if not isinstance(document, dict):
        raise ImageError(f"{path}:1", f"a stack file is a mapping (config: ...), not {_what(document)}")
    config = document.get("config")
    config_node = _child(root, "config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        line = config_node.start_mark.line + 1 if config_node is not None else 1
        raise ImageError(f"{path}:{line}", f"config is {_what(config)}, not a mapping of keys to values")
    for key_node, _ in config_node.value if isinstance(config_node, yaml.MappingNode) else ():
        if key_node.tag != "tag:yaml.org,2002:str":
            raise ImageError(
                f"{path}:{key_node.start_mark.line + 1}", "a config key is a string, namespace:name (vmimage:images)"
            )
    values = {key: _object(value) for key, value in config.items()}
    stack = StackFile(path, CatalogConfig(), values, config_node)
    try:
        catalog = load_catalog_config(
            {key: values[f"{NAMESPACE}:{key}"] for key in KEYS if f"{NAMESPACE}:{key}" in values}, values
        )
    except ConfigError as exc:
        problems = [_config_problem(stack, line.strip()) for line in str(exc).splitlines()[1:] if line.strip()]
        if len(problems) == 1:
            raise ImageError(*problems[0]) from None
        lines = [f"{where}: {problem}" for where, problem in problems]
        raise ImageError(path, "invalid stack configuration:\n  " + "\n  ".join(lines)) from None
    return StackFile(path, catalog, values, config_node)


def _object(value: Any) -> Any:
    """A value as the program's ``Config.get_object`` reads it: a JSON string is its object."""
    if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
