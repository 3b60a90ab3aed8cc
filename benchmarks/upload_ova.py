#!/usr/bin/env python3
"""Benchmark: uploading a 1 GiB OVA into the vCenter simulator, against curl -T in the same run.

    venv/bin/python benchmarks/upload_ova.py [--size-mib 1024] [--rounds 5]

vmimage's upload (`upload_source`: the OVA streamed member by member, every member
hashed and checked against the manifest) runs in a child process whose peak RSS is
reported. The baseline is `curl -T` of the same OVA to an upload endpoint of the same
simulator, with the same session header and TLS. A control runs vmimage's transport
alone (`ContentLibraryClient.upload` of the same bytes, nothing hashed), so the cost of
the digests shows apart from the cost of sending. Every client's CPU time (user + system)
is reported per GiB. Each run starts alike (empty library, OVA in the page cache); the
order rotates between rounds; medians are printed.
Targets: throughput >= 0.95 x curl's, peak client RSS <= 64 MiB. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.vcsim import start_simulator  # noqa: E402
from vmimage.descriptor.samples import SAMPLES, write_ova  # noqa: E402
from vmimage.vsphere.content_library import ContentLibraryClient  # noqa: E402
from vmimage.vsphere.inventory import find_datastore_id  # noqa: E402
from vmimage.vsphere.rest import VapiSession  # noqa: E402
from vmimage.vsphere.settings import ConnectionSettings  # noqa: E402

CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
from vmimage.vsphere.content_library import ContentLibraryClient, read_chunks
from vmimage.vsphere.publish import upload_source
from vmimage.vsphere.rest import VapiSession
from vmimage.vsphere.settings import ConnectionSettings
settings = ConnectionSettings.model_validate_json(sys.argv[1])
library_id, name, source, mode = sys.argv[2:6]

def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def peak_rss_kib():
    # VmHWM, not ru_maxrss: Linux carries the parent's peak into ru_maxrss across vfork + exec
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

with VapiSession(settings) as session:
    client = ContentLibraryClient(session)
    item_id = client.create_item(library_id, name, "", "OVF")
    cpu, start = cpu_seconds(), time.perf_counter()
    if mode == "upload":
        sent = upload_source(client, item_id, source).bytes_sent
    else:  # the transport alone: the same bytes in one PUT, nothing hashed
        session_id = client.create_update_session(item_id)
        sent = os.path.getsize(source)
        with open(source, "rb", buffering=0) as stream:
            client.upload(client.add_file(session_id, name + ".bin", sent), read_chunks(stream, sent), sent)
        client.complete_update_session(session_id)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
print(json.dumps({{"seconds": elapsed, "bytes": sent, "cpu": cpu,
                   "maxrss_kib": peak_rss_kib()}}))
"""


def vmimage_round(settings: ConnectionSettings, library_id: str, name: str, ova: Path, mode: str) -> dict:
    payload = settings.model_dump_json()
    payload = payload.replace('"**********"', json.dumps(settings.password.get_secret_value()))
    output = subprocess.run(
        [sys.executable, "-c", CHILD.format(root=str(ROOT)), payload, library_id, name, str(ova), mode],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def curl_round(client: ContentLibraryClient, library_id: str, name: str, ova: Path, ca_file: Path) -> dict:
    item_id = client.create_item(library_id, name, "", "OVF")
    session_id = client.create_update_session(item_id)
    size = ova.stat().st_size
    uri = client.session.endpoint(client.add_file(session_id, f"{name}.bin", size))
    token = client.session.session_headers()["vmware-api-session-id"]
    cpu, start = children_cpu_seconds(), time.perf_counter()
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
    elapsed, cpu = time.perf_counter() - start, children_cpu_seconds() - cpu
    client.complete_update_session(session_id)
    return {"seconds": elapsed, "bytes": size, "cpu": cpu}


def warm_up(path: Path) -> None:
    """Read the OVA once so both uploads start from the page cache: the first read of a
    sparse file's holes runs at ~500 MiB/s while the kernel fills the cache, later ones at GB/s."""
    with open(path, "rb", buffering=0) as stream:
        while stream.read(1 << 20):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
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
                runs = {
                    "curl -T": lambda i: curl_round(client, library_id, f"c{i}", ova, simulator.ca_file),
                    "vmimage upload": lambda i: vmimage_round(settings, library_id, f"v{i}", ova, "upload"),
                    "transport only": lambda i: vmimage_round(settings, library_id, f"t{i}", ova, "transport"),
                }
                results: dict[str, list[dict]] = {which: [] for which in runs}
                order = list(runs)
                for index in range(args.rounds):
                    for which in order[index % 3 :] + order[: index % 3]:
                        # each run starts alike: empty library, OVA in the page cache
                        for item_id in client.list_items(library_id):
                            client.delete_item(item_id)
                        warm_up(ova)
                        time.sleep(1)  # let the simulator settle after the previous 1 GiB
                        results[which].append(runs[which](index))
        finally:
            simulator.stop()

    def rate(rounds: list[dict]) -> float:
        return statistics.median(r["bytes"] / r["seconds"] / 2**20 for r in rounds)

    print(f"OVA: {ova_mib:.0f} MiB, {args.rounds} rounds each, order rotating")
    for which, rounds in results.items():
        times = ", ".join(f"{r['seconds']:.2f}" for r in rounds)
        cpu = statistics.median(r["cpu"] / (r["bytes"] / 2**30) for r in rounds)
        print(f"  {which:15s} median {rate(rounds):7.1f} MiB/s, client CPU {cpu:.2f} s/GiB   ({times} s)")
    curl = rate(results["curl -T"])
    print(f"  ratio vmimage upload / curl: {rate(results['vmimage upload']) / curl:.2f}")
    print(f"  ratio transport only / curl: {rate(results['transport only']) / curl:.2f}")
    peak = max(r["maxrss_kib"] for r in results["vmimage upload"]) / 1024
    print(f"  peak client RSS (vmimage upload child process): {peak:.1f} MiB")


if __name__ == "__main__":
    main()
