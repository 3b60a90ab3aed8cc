#!/usr/bin/env python3
"""Benchmark: a 1,000-image catalog through the real engine — the first `up`, then a no-change preview.

    venv/bin/python benchmarks/catalog_1000.py [--items 1000]

A library of N small OVAs (filled directly, as a vendor would) is synced to cluster scope,
with a real API server (scripts/devcluster) as the cluster, by the real Pulumi CLI
(scripts/toolchain). Every vCenter request of the run goes through a counting HTTPS proxy
in front of the simulator, so the figures say who asked what: the program lists the
synced library when it runs; check and diff should ask nothing. Also prints the peak RSS
of the dynamic provider host (`python -m pulumi.dynamic`), sampled from /proc. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import http.server
import os
import re
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.devcluster import install_crds, start_cluster  # noqa: E402
from tests.pulumi_cli import Stack  # noqa: E402
from tests.vcsim import start_simulator  # noqa: E402
from vmimage.crds import crds  # noqa: E402
from vmimage.samples import SampleImage, write_ova  # noqa: E402
from vmimage.vsphere.content_library import ContentLibraryClient  # noqa: E402
from vmimage.vsphere.inventory import find_datastore_id  # noqa: E402
from vmimage.vsphere.publish import upload_source  # noqa: E402
from vmimage.vsphere.rest import VapiSession  # noqa: E402
from vmimage.vsphere.settings import ConnectionSettings  # noqa: E402

PASSWORD = "bench"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class CountingProxy:
    """An HTTPS reverse proxy on loopback that counts requests by method and path shape."""

    def __init__(self, upstream: str, cert: Path, key: Path) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        upstream_client = httpx.Client(base_url=upstream, verify=str(cert), timeout=120)
        counts = self.counts

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                shape = _UUID.sub("{id}", self.path.split("?", 1)[0])
                counts[f"{self.command} {shape}"] += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = upstream_client.request(self.command, self.path, content=body, headers=headers)
                self.send_response(answer.status_code)
                for name, value in answer.headers.multi_items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

            def log_message(self, *_args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def server_address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def take(self) -> collections.Counter[str]:
        taken = collections.Counter(self.counts)
        self.counts.clear()
        return taken


class PeakRss:
    """The largest VmHWM seen among `python -m pulumi.dynamic` processes, sampled every 0.1 s."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if b"pulumi.dynamic" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                except OSError:
                    continue

    def stop(self) -> float:
        self._stop.set()
        return self.peak_kib / 1024


def summary(counts: collections.Counter[str]) -> str:
    return f"{sum(counts.values())} requests" + (f" {dict(counts.most_common())}" if counts else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument(
        "--skip-checkpoints",
        action="store_true",
        help="PULUMI_SKIP_CHECKPOINTS=true: the engine writes the state once at the end, not after every step",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        for name in ("sim", "kube", "stack"):
            (work / name).mkdir()
        simulator = start_simulator(work / "sim")
        cluster = start_cluster(work / "kube")
        try:
            install_crds(cluster, crds())
            settings = ConnectionSettings(
                server=simulator.server, user="u", password=PASSWORD, ca_file=str(simulator.ca_file)
            )
            ova = write_ova(work / "vendor.ova", SampleImage(name="vendor"))
            start = time.perf_counter()
            with VapiSession(settings) as session:
                client = ContentLibraryClient(session)
                library = client.create_library("vendor-1000", find_datastore_id(settings, "LocalDS_0"))
                for index in range(args.items):
                    item_id = client.create_item(library, f"vendor-image-{index:04d}", "", "OVF")
                    upload_source(client, item_id, str(ova))
            print(f"filled a library with {args.items} items in {time.perf_counter() - start:.1f} s")

            proxy = CountingProxy(simulator.base_url, simulator.ca_file, simulator.ca_file.with_name("key.pem"))
            env = {"PULUMI_SKIP_CHECKPOINTS": "true"} if args.skip_checkpoints else {}
            stack = Stack(work / "stack", name="bench", env=env)
            stack.configure(
                {
                    "vsphere:vsphereServer": proxy.server_address,
                    "vsphere:user": "u",
                    "vsphere:caFile": str(simulator.ca_file),
                    "vmimage:libraries": [{"name": "vendor-1000", "existing": True}],
                    "vmimage:images": [],
                    "vmimage:sync": [{"library": "vendor-1000", "scope": "cluster"}],
                    "vmimage:kubernetes": {"kubeconfig": str(cluster.kubeconfig)},
                },
                secrets={"vsphere:password": PASSWORD},
            )
            rss = PeakRss()
            start = time.perf_counter()
            stack.up("--parallel", "16")
            first = time.perf_counter() - start
            peak = rss.stop()
            objects = cluster.kubectl("get", "cvmi", "-o", "name").stdout.count("\n")
            print(f"first up: {args.items} images created in {first:.1f} s; {objects} objects in the cluster")
            print(f"  vCenter: {summary(proxy.take())}")
            print(f"  provider host peak RSS (VmHWM): {peak:.1f} MiB")

            start = time.perf_counter()
            stack.preview("--expect-no-changes")
            second = time.perf_counter() - start
            print(f"no-change preview (--expect-no-changes passed) in {second:.1f} s")
            print(f"  vCenter: {summary(proxy.take())}")
        finally:
            cluster.stop()
            simulator.stop()


if __name__ == "__main__":
    main()
