"""Drive Pulumi's dynamic provider host over gRPC exactly as the engine does.

`pulumi up` starts `python -u -m pulumi.dynamic <engine-address>` in the project
directory (env PULUMI_PROJECT, PULUMI_CONFIG), reads the port from its first stdout
line, calls Configure with the stack config, then Check/Diff/Create/Update/Read/Delete
with properties serialized like `pulumi.runtime.rpc.serialize_properties`. The host
answers acceptSecrets=False, so the engine strips secret wrappers; during preview,
unknown values travel as `rpc.UNKNOWN` and Create/Update are never called.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import proto, rpc
from pulumi.runtime.proto import engine_pb2_grpc, provider_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN = rpc.UNKNOWN
PROVIDER_KEY = "__provider"


class _Engine(engine_pb2_grpc.EngineServicer):
    """The engine's side of the host: it only needs to take log messages."""

    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request, context):
        self.logs.append(request.message)
        return empty_pb2.Empty()


_LOOP = asyncio.new_event_loop()
threading.Thread(target=_LOOP.run_forever, name="engine-serialize", daemon=True).start()


def _struct(props: dict[str, Any]):
    """Serialize as the engine does, on a loop of its own, so it never disturbs a running program's loop."""
    return asyncio.run_coroutine_threadsafe(rpc.serialize_properties(props, {}), _LOOP).result()


def _plain(struct, keep_unknowns: bool = False) -> dict[str, Any]:
    return rpc.deserialize_properties(struct, keep_unknowns)


@dataclass
class Check:
    inputs: dict[str, Any]
    failures: list[tuple[str, str]]


@dataclass
class Diff:
    changes: bool | None
    replaces: list[str]
    delete_before_replace: bool


@dataclass
class ProviderHost:
    """One `python -m pulumi.dynamic` process and the engine stub it talks to."""

    process: subprocess.Popen
    stub: provider_pb2_grpc.ResourceProviderStub
    engine: _Engine
    stderr: list[str] = field(default_factory=list)

    def wait_for_log(self, text: str, since: int = 0, timeout: float = 5.0) -> str:
        """The host's stderr from line ``since`` on, once it holds ``text``: the thread reading
        it may lag the gRPC reply. Returns what it has after ``timeout`` either way."""
        deadline = time.monotonic() + timeout
        while text not in (log := "".join(self.stderr[since:])) and time.monotonic() < deadline:
            time.sleep(0.02)
        return log

    def configure(self, config: dict[str, Any]) -> Any:
        return self.stub.Configure(
            proto.ConfigureRequest(args=_struct(config), acceptSecrets=True, acceptResources=True)
        )

    def check(self, type_: str, provider: Any, olds: dict[str, Any], news: dict[str, Any], urn: str = "") -> Check:
        """``provider`` is an object to pickle, or None when ``news`` carries it already, as from a program."""
        serialized = news[PROVIDER_KEY] if provider is None else serialize_provider(provider)
        response = self.stub.Check(
            proto.CheckRequest(
                urn=urn or f"urn:pulumi:test::vmimage::{type_}::r",
                olds=_struct({**olds, PROVIDER_KEY: serialized} if olds else {}),
                news=_struct({**news, PROVIDER_KEY: serialized}),
            )
        )
        return Check(_plain(response.inputs, True), [(f.property, f.reason) for f in response.failures])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> Diff:
        response = self.stub.Diff(proto.DiffRequest(id=id_, urn="urn:x", olds=_struct(olds), news=_struct(news)))
        changes = {
            proto.DiffResponse.DIFF_SOME: True,
            proto.DiffResponse.DIFF_NONE: False,
        }.get(response.changes)
        return Diff(changes, list(response.replaces), response.deleteBeforeReplace)

    def create(self, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Create(proto.CreateRequest(urn="urn:x", properties=_struct(inputs), timeout=600))
        return response.id, _plain(response.properties)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        response = self.stub.Update(proto.UpdateRequest(id=id_, urn="urn:x", olds=_struct(olds), news=_struct(news)))
        return _plain(response.properties)

    def read(
        self, id_: str, state: dict[str, Any], inputs: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, Any]]:
        response = self.stub.Read(
            proto.ReadRequest(id=id_, urn="urn:x", properties=_struct(state), inputs=_struct(inputs))
        )
        return response.id, _plain(response.properties), _plain(response.inputs)

    def delete(self, id_: str, state: dict[str, Any]) -> None:
        self.stub.Delete(proto.DeleteRequest(id=id_, urn="urn:x", properties=_struct(state)))

    # --- what `pulumi up` does for one resource -------------------------------------------

    def up(
        self,
        type_: str,
        provider: Any,
        program_inputs: dict[str, Any],
        state: dict[str, Any] | None = None,
        old_inputs: dict[str, Any] | None = None,
        after: Step | None = None,
    ) -> Step:
        """Check, then create (no state) or diff and update/replace, returning what happened.
        ``after``: the step of the previous `up`, whose state and inputs this one starts from."""
        if after is not None:
            state, old_inputs = after.state, after.inputs
        checked = self.check(type_, provider, old_inputs or {}, program_inputs)
        if checked.failures:
            return Step("failed", checked=checked)
        if state is None:
            id_, outputs = self.create(checked.inputs)
            return Step("create", id_, outputs, checked.inputs, checked)
        diff = self.diff(state["__id"], _without_id(state), checked.inputs)
        if not diff.changes:
            return Step("same", state["__id"], _without_id(state), checked.inputs, checked, diff)
        if diff.replaces:
            id_, outputs = self.create(checked.inputs)
            self.delete(state["__id"], _without_id(state))
            return Step("replace", id_, outputs, checked.inputs, checked, diff)
        outputs = self.update(state["__id"], _without_id(state), checked.inputs)
        return Step("update", state["__id"], outputs, checked.inputs, checked, diff)


def _without_id(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "__id"}


@dataclass
class Step:
    op: str
    id: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    checked: Check | None = None
    diff: Diff | None = None

    @property
    def state(self) -> dict[str, Any]:
        return {**self.outputs, "__id": self.id}


def stack_config_env(config: dict[str, Any]) -> str:
    return json.dumps({key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()})


@contextmanager
def provider_host(config: dict[str, Any], env: dict[str, str] | None = None) -> Iterator[ProviderHost]:
    """Start the host as the engine would and Configure it with ``config`` (secrets unwrapped)."""
    engine = _Engine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, server)
    engine_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.dynamic", f"127.0.0.1:{engine_port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PULUMI_PROJECT": "vmimage", "PULUMI_CONFIG": stack_config_env(config), **(env or {})},
        text=True,
    )
    stderr: list[str] = []
    assert process.stdout is not None and process.stderr is not None
    reader = threading.Thread(target=lambda: stderr.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    port = process.stdout.readline().strip()
    if not port.isdigit():
        process.kill()
        raise RuntimeError(f"the provider host did not start: {port!r} {''.join(stderr)}")
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    host = ProviderHost(process, provider_pb2_grpc.ResourceProviderStub(channel), engine, stderr)
    try:
        response = host.configure(config)
        assert response.acceptSecrets is False
        yield host
    finally:
        channel.close()
        process.kill()
        process.wait()
        server.stop(0)
