"""A small stand-in for `pulumi up`: run the program, apply each resource through the provider host.

The program runs under Pulumi's mocks, but the mocks do the engine's work for real: each
dynamic resource the program registers goes through Check, then Create or Diff/Update (or
Create/Delete for a replace) in the provider host, and the real outputs flow back into the
program, so dependent resources see true IDs. Resources of the previous run that the
program no longer declares are deleted, last created first. Component and Kubernetes
provider resources are only recorded.
"""

from __future__ import annotations

import runpy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc

from tests.engine import ProviderHost, Step

ROOT = Path(__file__).resolve().parent.parent
DYNAMIC = "pulumi-python:dynamic/"


@dataclass
class Deployment:
    """The state between runs: by resource name, the last outputs (with __id) and checked inputs."""

    host: ProviderHost
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    steps: dict[str, str] = field(default_factory=dict)  # the last run: name → create/update/same/replace/delete
    exports: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def up(self, config: dict[str, str], stack: str = "e2e") -> dict[str, str]:
        engine = self

        class EngineMocks(pulumi.runtime.Mocks):
            def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
                return engine._apply(args)

            def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
                return {}, None

        self.steps = {}
        seen: list[str] = []
        self._seen = seen
        exports: dict[str, Any] = {}

        def program() -> pulumi.Output:
            namespace = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
            catalog = namespace["catalog"]
            return pulumi.Output.all(catalog.images, catalog.table).apply(
                lambda values: exports.update(images=values[0], table=values[1])
            )

        pulumi.runtime.set_all_config(config)
        pulumi.runtime.set_mocks(EngineMocks(), project="vmimage", stack=stack, preview=False)
        pulumi.runtime.test(program)()  # runs the program and waits for every registration
        self.exports = exports
        for name in reversed(self.order):
            if name not in seen and name in self.state:
                if self.types[name].startswith(DYNAMIC):
                    state = dict(self.state[name])
                    self.host.delete(state.pop("__id"), state)
                self.steps[name] = "delete"
                del self.state[name]
                self.inputs.pop(name, None)
        self.order = [name for name in self.order if name in self.state]
        return self.steps

    def _apply(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        """One registration; the SDK may call this from several threads at once, as the engine works in parallel."""
        with self._lock:
            self._seen.append(args.name)
            self.types[args.name] = args.typ
            if args.name not in self.order:
                self.order.append(args.name)
            state, old_inputs = self.state.get(args.name), self.inputs.get(args.name)
        if not args.typ.startswith(DYNAMIC):
            with self._lock:
                self.state[args.name] = {"__id": f"{args.name}-id", **args.inputs}
                self.steps[args.name] = "record"
            return f"{args.name}-id", dict(args.inputs)
        step: Step = self.host.up(
            args.typ.removeprefix(DYNAMIC), None, _without_secrets(args.inputs), state=state, old_inputs=old_inputs
        )
        if step.op == "failed":
            raise RuntimeError(f"{args.name}: check failed: {step.checked.failures if step.checked else ''}")
        with self._lock:
            self.state[args.name] = step.state
            self.inputs[args.name] = step.inputs
            self.steps[args.name] = step.op
        return step.id, step.outputs

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: state for name, state in self.state.items() if self.types[name].endswith(":" + kind)}


def _without_secrets(value: Any) -> Any:
    """What the engine sends a provider that answered acceptSecrets=False: secret wrappers removed."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _without_secrets(value.get("value"))
        return {key: _without_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value
