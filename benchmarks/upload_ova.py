#!/usr/bin/env python3
"""Benchmark: uploading a 1 GiB OVA into the vCenter simulator, against curl -T in the same run.

    venv/bin/python benchmarks/upload_ova.py [--size-mib 1024] [--rounds 3]

vmimage's upload (`upload_source`: the OVA streamed member by member, every member
hashed and checked against the manifest) runs in a child process whose peak RSS is
reported. The baseline is `curl -T` of the same OVA to an upload endpoint of the same
simulator, with the same session header and TLS. Each run starts alike (empty library,
OVA in the page cache); the order alternates between rounds; medians are printed.
Targets: throughput >= 0.95 x curl's, peak client RSS <= 64 MiB. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.vcsim import start_simulator  # noqa: E402
from vmimage.samples import SAMPLES, write_ova  # noqa: E402
from vmimage.vsphere.content_library import ContentLibraryClient  # noqa: E402
from vmimage.vsphere.inventory import find_datastore_id  # noqa: E402
from vmimage.vsphere.rest import VapiSession  # noqa: E402
from vmimage.vsphere.settings import ConnectionSettings  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from vmimage.vsphere.content_library import ContentLibraryClient
from vmimage.vsphere.publish import upload_source
from vmimage.vsphere.rest import VapiSession
from vmimage.vsphere.settings import ConnectionSettings
settings = ConnectionSettings.model_validate_json(sys.argv[1])
library_id, name, source = sys.argv[2:5]
with VapiSession(settings) as session:
    client = ContentLibraryClient(session)
    item_id = client.create_item(library_id, name, "", "OVF")
    start = time.perf_counter()
    result = upload_source(client, item_id, source)
    elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "bytes": result.bytes_sent,
                   "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def vmimage_round(settings: ConnectionSettings, library_id: str, name: str, ova: Path) -> dict:
    payload = settings.model_dump_json()
    payload = payload.replace('"**********"', json.dumps(settings.password.get_secret_value()))
    output = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT)), payload, library_id, name, str(ova)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def curl_round(client: ContentLibraryClient, library_id: str, name: str, ova: Path, ca_file: Path) -> dict:
    item_id = client.create_item(library_id, name, "", "OVF")
    session_id = client.create_update_session(item_id)
    size = ova.stat().st_size
    uri = client.session.endpoint(client.add_file(session_id, f"{name}.bin", size))
    token = client.session.session_headers()["vmware-api-session-id"]
    start = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "-sS",
            "--fail",
            "--cacert",
            str(ca_file),
            "-H",
            f"vmware-api-session-id: {token}",
            "-T",
            str(ova),
            uri,
            "-o",
            "/dev/null",
        ],
        check=True,
    )
    elapsed = time.perf_counter() - start
    client.complete_update_session(session_id)
    return {"seconds": elapsed, "bytes": size}


def warm_up(path: Path) -> None:
    """Read the OVA once so both uploads start from the page cache: the first read of a
    sparse file's holes runs at ~500 MiB/s while the kernel fills the cache, later ones at GB/s."""
    with open(path, "rb", buffering=0) as stream:
        while stream.read(1 << 20):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    # The simulator's datastore on tmpfs when there is one: disk write-back stalls would
    # otherwise dominate both sides' figures with noise unrelated to either client.
    scratch = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=scratch) as directory:
        work = Path(directory)
        (work / "sim").mkdir()
        simulator = start_simulator(work / "sim")
        try:
            ova = write_ova(work / "bench.ova", SAMPLES[0], disk_bytes=args.size_mib * 2**20)
            ova_mib = ova.stat().st_size / 2**20
            settings = ConnectionSettings(
                server=simulator.server, user="u", password="p", ca_file=str(simulator.ca_file)
            )
            with VapiSession(settings) as session:
                client = ContentLibraryClient(session)
                library_id = client.create_library("bench", find_datastore_id(settings, "LocalDS_0"))
                ours, curls = [], []
                runs = {
                    "curl": lambda i: curls.append(curl_round(client, library_id, f"c{i}", ova, simulator.ca_file)),
                    "vmimage": lambda i: ours.append(vmimage_round(settings, library_id, f"v{i}", ova)),
                }
                for index in range(args.rounds):
                    order = ["curl", "vmimage"] if index % 2 == 0 else ["vmimage", "curl"]
                    for which in order:  # each run starts alike: empty library, OVA in the page cache
                        for item_id in client.list_items(library_id):
                            client.delete_item(item_id)
                        warm_up(ova)
                        time.sleep(1)  # let the simulator settle after the previous 1 GiB
                        runs[which](index)
        finally:
            simulator.stop()

    def rate(rounds: list[dict]) -> float:
        return statistics.median(r["bytes"] / r["seconds"] / 2**20 for r in rounds)

    print(f"OVA: {ova_mib:.0f} MiB, {args.rounds} rounds each, alternating")

    def times(rounds: list[dict]) -> str:
        return ", ".join(f"{r['seconds']:.2f}" for r in rounds)

    print(f"  curl -T        median {rate(curls):7.1f} MiB/s   ({times(curls)} s)")
    print(f"  vmimage upload median {rate(ours):7.1f} MiB/s   ({times(ours)} s)")
    print(f"  ratio vmimage/curl: {rate(ours) / rate(curls):.2f}")
    print(f"  peak client RSS (vmimage child process): {max(r['maxrss_kib'] for r in ours) / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
