#!/usr/bin/env python3
"""Benchmark: a 1,000-image catalog on the simulator — the first `up`, then a pass with nothing changed.

    venv/bin/python benchmarks/catalog_1000.py [--items 1000] [--concurrency 8]

A library of N small OVAs (filled directly, as a vendor would) is synced to cluster scope
with a Kubernetes emulator as the cluster; the dev stack's own images come along. Both
passes go through the engine-protocol harness (tests/deploy.py). For the second pass the
provider host is pointed at a closed port instead of vCenter: it can only succeed if
check and diff make no vCenter request and download no descriptor. Prints request counts
and per-resource provider time; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.deploy import Deployment  # noqa: E402
from tests.engine import provider_host  # noqa: E402
from tests.kube_emulator import start_emulator  # noqa: E402
from tests.vcsim import start_simulator  # noqa: E402
from vmimage.crds import crds  # noqa: E402
from vmimage.samples import SampleImage, write_ova  # noqa: E402
from vmimage.vsphere import listing as listing_module  # noqa: E402
from vmimage.vsphere.content_library import ContentLibraryClient  # noqa: E402
from vmimage.vsphere.inventory import find_datastore_id  # noqa: E402
from vmimage.vsphere.publish import upload_source  # noqa: E402
from vmimage.vsphere.rest import VapiSession  # noqa: E402
from vmimage.vsphere.settings import ConnectionSettings  # noqa: E402

PASSWORD = "bench"


def timed(host, log: list[float]) -> None:
    """Wrap the host's provider calls to collect their time, per call."""
    for name in ("check", "diff", "create", "update"):
        original: Callable = getattr(host, name)

        def wrapper(*args, _original=original, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                log.append(time.perf_counter() - start)

        setattr(host, name, wrapper)


def counting_listing(counter: dict[str, int]):
    """VCenterListing whose HTTP requests are counted, to show what listing a library costs."""

    class Counting(listing_module.VCenterListing):
        def __init__(self, settings, concurrency: int = 8) -> None:
            super().__init__(settings, concurrency=int(os.environ.get("BENCH_CONCURRENCY", concurrency)))

            def count(request: httpx.Request) -> None:
                path = request.url.path
                key = f"{request.method} {path.rsplit('/id:', 1)[0] + '/id:{id}' if '/id:' in path else path}"
                counter[key] = counter.get(key, 0) + 1

            self.session.http.event_hooks["request"].append(count)

    return Counting


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    os.environ["BENCH_CONCURRENCY"] = str(args.concurrency)

    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        os.environ["VMIMAGE_CACHE_DIR"] = str(work / "cache")
        os.environ["VSPHERE_PASSWORD"] = PASSWORD
        (work / "sim").mkdir()
        (work / "kube").mkdir()
        simulator = start_simulator(work / "sim")
        kube = start_emulator(work / "kube", crds(), {"default", "dev"})
        try:
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

            from tests.test_program import stack_config  # the dev stack file, as the engine reads it

            config = stack_config(ROOT / "stacks" / "Pulumi.dev.yaml")
            config.update(
                {
                    "vsphere:vsphereServer": simulator.server,
                    "vsphere:caFile": str(simulator.ca_file),
                    "vmimage:images": "[]",
                    "vmimage:libraries": json.dumps([{"name": "vendor-1000", "existing": True}]),
                    "vmimage:sync": json.dumps([{"library": "vendor-1000", "scope": "cluster"}]),
                    "vmimage:kubernetes": json.dumps({"kubeconfig": str(kube.kubeconfig)}),
                }
            )
            counter: dict[str, int] = {}
            listing_module.VCenterListing = counting_listing(counter)  # the program imports it from here

            host_config = {
                "vsphere:vsphereServer": simulator.server,
                "vsphere:user": "u",
                "vsphere:password": PASSWORD,
                "vsphere:caFile": str(simulator.ca_file),
            }
            first_times: list[float] = []
            with provider_host(host_config) as host:
                timed(host, first_times)
                deployment = Deployment(host)
                start = time.perf_counter()
                steps = deployment.up(config)
                first = time.perf_counter() - start
            creates = sum(1 for op in steps.values() if op == "create")
            print(
                f"first up: {creates} resources created in {first:.1f} s; "
                f"{len(kube.emulator.objects)} objects in the cluster"
            )
            print(
                f"  program-time listing: {sum(counter.values())} vCenter requests "
                f"(concurrency {args.concurrency}): {dict(sorted(counter.items()))}"
            )

            counter.clear()
            second_times: list[float] = []
            offline = {**host_config, "vsphere:vsphereServer": "127.0.0.1:9"}  # nothing listens there
            with provider_host(offline) as host:
                timed(host, second_times)
                deployment.host = host
                start = time.perf_counter()
                steps = deployment.up(config)
                second = time.perf_counter() - start
            ops = {op: sum(1 for o in steps.values() if o == op) for op in set(steps.values())}
            print(f"no-change up: {ops} in {second:.1f} s, with the provider host unable to reach vCenter")
            print(f"  program-time listing: {sum(counter.values())} vCenter requests")
            per_call = [t * 1e3 for t in second_times]
            print(
                f"  check/diff round trips during the pass (parallel, as the engine runs them): "
                f"median {statistics.median(per_call):.1f} ms, p95 {percentile(per_call, 0.95):.1f} ms"
            )
            # the provider side alone: check + diff for one resource at a time, nothing else running
            sequential: list[float] = []
            with provider_host(offline) as host:
                for name in sorted(deployment.state)[:200]:
                    if not deployment.types[name].endswith("VirtualMachineImage"):
                        continue
                    state = dict(deployment.state[name])
                    inputs = deployment.inputs[name]
                    start = time.perf_counter()
                    checked = host.check(deployment.types[name].rsplit("/", 1)[1], None, inputs, inputs)
                    host.diff(state.pop("__id"), state, checked.inputs)
                    sequential.append((time.perf_counter() - start) * 1e3)
            print(
                f"  check + diff per resource, one at a time ({len(sequential)} resources): "
                f"median {statistics.median(sequential):.2f} ms, p95 {percentile(sequential, 0.95):.2f} ms"
            )
        finally:
            kube.stop()
            simulator.stop()


if __name__ == "__main__":
    main()
