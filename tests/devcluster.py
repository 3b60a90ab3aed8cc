"""A real Kubernetes API server for the tests: etcd + kube-apiserver through scripts/devcluster.

The server stores and validates objects exactly as a cluster does (CRD schemas, the status
subresource, server-side apply, admission webhooks, RBAC); it has no nodes or controllers,
which no vmimage test needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "devcluster"
KUBECTL = ROOT / ".build" / "toolchain" / "bin" / "kubectl"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    process: subprocess.Popen
    kubeconfig: Path
    directory: Path
    etcd_port: int = 0

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def apply(self, *documents: dict[str, Any]) -> None:
        self.kubectl("apply", "--server-side", "-f", "-", input="\n---\n".join(json.dumps(d) for d in documents))

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        where = ["-n", namespace] if namespace else []
        done = self.kubectl("get", resource, name, *where, "-o", "json", check=False)
        if done.returncode != 0:
            if "NotFound" in done.stderr:
                return None
            raise AssertionError(done.stderr)
        return json.loads(done.stdout)

    def wait_established(self, crd: str, timeout: float = 60) -> None:
        """Until the CRD serves its kind (`kubectl wait` fails while it has no conditions yet)."""
        deadline = time.monotonic() + timeout
        while True:
            conditions = ((self.get("crd", crd) or {}).get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {crd} was not established in {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM to the script's whole process group (etcd and the API server too), then SIGKILL."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def start_cluster(directory: Path, namespaces: tuple[str, ...] = ()) -> Cluster:
    """Start etcd and kube-apiserver on free loopback ports; wait until /readyz answers."""
    ports: list[str] = []
    while len(ports) < 3:  # three different free ports: the API server's, etcd's client and peer ports
        port = str(free_port())
        ports += [] if port in ports else [port]
    process = subprocess.Popen(
        [
            str(SCRIPT),
            "--dir",
            str(directory),
            "--port",
            ports[0],
            "--etcd-port",
            ports[1],
            "--etcd-peer-port",
            ports[2],
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.endswith("kubeconfig"):
        process.kill()
        raise RuntimeError(f"the API server did not start (exit status {process.wait()}); see {directory}")
    cluster = Cluster(process, Path(line), directory, int(ports[1]))
    for namespace in namespaces:
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    return cluster


def install_crds(cluster: Cluster, crds: list[dict[str, Any]]) -> None:
    cluster.apply(*crds)
    for crd in crds:
        cluster.wait_established(crd["metadata"]["name"])


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
