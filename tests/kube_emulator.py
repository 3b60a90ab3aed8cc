"""A Kubernetes API server emulator for the image kinds, over real HTTPS, validating every write.

No API server can be installed on our machines. kmock's KubernetesEmulator (PyPI) was
judged and set aside: its pytest plugin needs pytest-asyncio at start-up, its patches are
plain merges, a server-side apply of a missing object answers 404 instead of creating it,
and it has no status subresource or schema validation; bending it means overriding its
private request handler. This emulator does the few things vmimage relies on, the way the
API server does them, on aiohttp:

- the CRDs' resources, namespaced or cluster-scoped; namespaces must exist;
- server-side apply (``application/apply-patch+yaml``, ``fieldManager`` required): creates a
  missing object, and replaces what the same manager applied before (labels, spec);
- the status subresource: writes to the object ignore ``status``, writes to ``/status``
  change nothing else;
- JSON merge patch, GET, LIST (label selectors of the ``key``/``key=value``/``!key`` kinds),
  WATCH from a resourceVersion, DELETE, resourceVersion, generation, uid;
- bearer-token authentication, as `kubectl vsphere login` configures it;
- every object written is validated against our CRD schema with `vmimage.schema`, strictly
  (unknown fields are errors): a schema mistake fails with 422 instead of being pruned away.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.tls import write_self_signed
from vmimage.schema import schema_errors

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }
    return web.json_response(body, status=code)


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if term.startswith("!"):
            if term[1:] in labels:
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class KubeEmulator:
    crds: list[dict[str, Any]]
    token: str = "emulator-token"
    namespaces: set[str] = field(default_factory=lambda: {"default"})
    objects: dict[tuple[str, str | None, str], dict[str, Any]] = field(default_factory=dict)
    writes: list[dict[str, Any]] = field(default_factory=list)  # every accepted body, for assertions
    requests: list[str] = field(default_factory=list)
    _versions: itertools.count = field(default_factory=lambda: itertools.count(1))
    events: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)  # (rv, plural, type, object)
    stopping: bool = False  # ends open watches, so the server can shut down
    _applied: dict[tuple[str, str | None, str, str], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.resources: dict[tuple[str, str, str], Resource] = {}
        for crd in self.crds:
            spec = crd["spec"]
            for version in spec["versions"]:
                resource = Resource(
                    spec["group"],
                    version["name"],
                    spec["names"]["plural"],
                    spec["names"]["kind"],
                    spec["scope"] == "Namespaced",
                )
                self.resources[(resource.group, resource.version, resource.plural)] = resource

    # --- HTTP ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/version", self._version)
        base = "/apis/{group}/{version}"
        for prefix in (base + "/namespaces/{namespace}/{plural}", base + "/{plural}"):
            app.router.add_get(prefix, self._list)
            app.router.add_route("*", prefix + "/{name}", self._object)
            app.router.add_route("*", prefix + "/{name}/status", self._object)
        return app

    async def _version(self, _: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "31", "gitVersion": "v1.31.0-vmimage-emulator"})

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        self.requests.append(f"{request.method} {request.path_qs}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        return await handler(request)

    def _resource(self, request: web.Request) -> Resource | web.Response:
        info = request.match_info
        resource = self.resources.get((info["group"], info["version"], info["plural"]))
        if resource is None:
            return _status(404, "NotFound", f"the server could not find the requested resource ({info['plural']})")
        namespace = info.get("namespace")
        if resource.namespaced != (namespace is not None) and not (
            resource.namespaced and request.method == "GET" and "name" not in info
        ):
            return _status(404, "NotFound", "the server could not find the requested resource")
        if namespace is not None and namespace not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{namespace}" not found')
        return resource

    def _event(self, resource: Resource, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((int(obj["metadata"]["resourceVersion"]), resource.plural, kind, copy.deepcopy(obj)))

    async def _watch(self, request: web.Request, resource: Resource, namespace: str | None) -> web.StreamResponse:
        """A watch from resourceVersion: every later event of the resource, one JSON line each."""
        since = int(request.query.get("resourceVersion") or 0)
        deadline = asyncio.get_running_loop().time() + float(request.query.get("timeoutSeconds") or 30)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        while True:
            for version, plural, kind, obj in list(self.events):
                if (
                    version > since
                    and plural == resource.plural
                    and (namespace is None or obj["metadata"].get("namespace") == namespace)
                ):
                    await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                    since = version
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or self.stopping:
                break
            await asyncio.sleep(min(remaining, 0.05))  # new events are polled for: simple, and fast enough
        await response.write_eof()
        return response

    async def _list(self, request: web.Request) -> web.StreamResponse:
        resource = self._resource(request)
        if isinstance(resource, web.Response):
            return resource
        namespace = request.match_info.get("namespace")
        if request.query.get("watch") in ("true", "1", "True"):
            return await self._watch(request, resource, namespace)
        selector = request.query.get("labelSelector", "")
        items = [
            obj
            for (plural, ns, _), obj in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
            if plural == resource.plural
            and (namespace is None or ns == namespace)
            and _matches(obj["metadata"].get("labels") or {}, selector)
        ]
        return web.json_response(
            {
                "apiVersion": f"{resource.group}/{resource.version}",
                "kind": f"{resource.kind}List",
                "metadata": {"resourceVersion": str(next(self._versions))},
                "items": items,
            }
        )

    async def _object(self, request: web.Request) -> web.Response:
        resource = self._resource(request)
        if isinstance(resource, web.Response):
            return resource
        info = request.match_info
        key = (resource.plural, info.get("namespace"), info["name"])
        status_subresource = request.path.endswith("/status")
        current = self.objects.get(key)
        if request.method == "GET":
            return web.json_response(current) if current else self._not_found(resource, info["name"])
        if request.method == "DELETE":
            if current is None:
                return self._not_found(resource, info["name"])
            del self.objects[key]
            current["metadata"]["resourceVersion"] = str(next(self._versions))
            self._event(resource, "DELETED", current)
            return web.json_response({"apiVersion": "v1", "kind": "Status", "status": "Success"})
        if request.method != "PATCH":
            return _status(405, "MethodNotAllowed", f"{request.method} is not supported by this emulator")
        content_type = request.headers.get("Content-Type", "").split(";")[0]
        try:
            body = yaml.safe_load(await request.text()) if content_type == APPLY else await request.json()
        except (ValueError, yaml.YAMLError) as exc:
            return _status(400, "BadRequest", f"cannot parse the body: {exc}")
        if content_type == APPLY:
            manager = request.query.get("fieldManager")
            if not manager:
                return _status(422, "Invalid", "fieldManager is required for apply requests")
            updated = self._apply(key, resource, current, body, manager, status_subresource)
        elif content_type == MERGE:
            if current is None:
                return self._not_found(resource, info["name"])
            part = (
                {"status": body.get("status")}
                if status_subresource
                else {k: v for k, v in body.items() if k != "status"}
            )
            updated = _merge(current, part)
        else:
            return _status(415, "UnsupportedMediaType", f"{content_type} is not supported by this emulator")
        if isinstance(updated, web.Response):
            return updated
        errors = schema_errors(updated, strict=True)
        if errors:
            return _status(
                422, "Invalid", f'{resource.kind}.{resource.group} "{info["name"]}" is invalid: ' + "; ".join(errors)
            )
        self._stamp(updated, current)
        self.objects[key] = updated
        self._event(resource, "ADDED" if current is None else "MODIFIED", updated)
        self.writes.append(copy.deepcopy(body))
        return web.json_response(updated, status=201 if current is None else 200)

    def _apply(self, key, resource: Resource, current, body: dict[str, Any], manager: str, status: bool):
        if current is None and status:
            return self._not_found(resource, key[2])
        meta = body.get("metadata") or {}
        if meta.get("name") != key[2] or (resource.namespaced and meta.get("namespace") not in (None, key[1])):
            return _status(400, "BadRequest", "the name/namespace in the body does not match the URL")
        if body.get("kind") != resource.kind or body.get("apiVersion") != f"{resource.group}/{resource.version}":
            return _status(
                400, "BadRequest", f"apply of {body.get('kind')} {body.get('apiVersion')} to {resource.kind}"
            )
        applied_key = (*key, manager + ("/status" if status else ""))
        base = (
            copy.deepcopy(current)
            if current
            else {"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": {"name": key[2]}}
        )
        if key[1] is not None:
            base["metadata"]["namespace"] = key[1]
        # what this manager applied last time and no longer applies is removed, as with managed fields
        previous = self._applied.get(applied_key, {})
        for label in previous.get("metadata", {}).get("labels") or {}:
            if label not in (meta.get("labels") or {}):
                base["metadata"].get("labels", {}).pop(label, None)
        if status:
            base["status"] = copy.deepcopy(body.get("status") or {})
        else:
            if "labels" in meta:
                base["metadata"]["labels"] = {**(base["metadata"].get("labels") or {}), **meta["labels"]}
            if not base["metadata"].get("labels"):
                base["metadata"].pop("labels", None)
            base["spec"] = copy.deepcopy(body.get("spec") or {})
        self._applied[applied_key] = copy.deepcopy(body)
        return base

    def _stamp(self, obj: dict[str, Any], current: dict[str, Any] | None) -> None:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(next(self._versions))
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        changed_spec = current is None or current.get("spec") != obj.get("spec")
        meta["generation"] = (current or {}).get("metadata", {}).get("generation", 0) + (1 if changed_spec else 0)

    @staticmethod
    def _not_found(resource: Resource, name: str) -> web.Response:
        return _status(404, "NotFound", f'{resource.plural}.{resource.group} "{name}" not found')


@dataclass
class RunningEmulator:
    emulator: KubeEmulator
    url: str
    ca_file: Path
    kubeconfig: Path
    _loop: asyncio.AbstractEventLoop
    _runner: web.AppRunner
    _thread: threading.Thread

    def stop(self) -> None:
        self.emulator.stopping = True
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def write_kubeconfig(
    path: Path, url: str, ca_file: Path, token: str, context: str = "emulator", namespace: str = "default"
) -> Path:
    """A kubeconfig of the shape `kubectl vsphere login` writes: a token user, a context per namespace."""
    import base64

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [
            {
                "name": "supervisor",
                "cluster": {
                    "server": url,
                    "certificate-authority-data": base64.b64encode(ca_file.read_bytes()).decode(),
                },
            }
        ],
        "users": [{"name": "wcp:127.0.0.1:devops@vsphere.local", "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {
                    "cluster": "supervisor",
                    "namespace": namespace,
                    "user": "wcp:127.0.0.1:devops@vsphere.local",
                },
            }
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def start_emulator(workdir: Path, crds: list[dict[str, Any]], namespaces: set[str] | None = None) -> RunningEmulator:
    emulator = KubeEmulator(crds=crds, namespaces=namespaces or {"default"})
    cert, key = write_self_signed(workdir, "kube-emulator")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(emulator.app(), access_log=None)
    started = threading.Event()
    holder: dict[str, Any] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
        loop.run_until_complete(site.start())
        holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True, name="kube-emulator")
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the Kubernetes emulator did not start")
    url = f"https://127.0.0.1:{holder['port']}"
    kubeconfig = write_kubeconfig(workdir / "kubeconfig", url, cert, emulator.token)
    return RunningEmulator(emulator, url, cert, kubeconfig, loop, runner, thread)


if __name__ == "__main__":  # a manual smoke run: python -m tests.kube_emulator
    import tempfile

    from vmimage.crds import crds

    running = start_emulator(Path(tempfile.mkdtemp()), crds())
    print(json.dumps({"url": running.url, "kubeconfig": str(running.kubeconfig)}))
    threading.Event().wait()
