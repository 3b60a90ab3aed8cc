#!/usr/bin/env python3
"""Benchmark: the admission webhook under an idle-connection flood, capped and uncapped.

    venv/bin/python benchmarks/webhook_flood.py [--flood 1500] [--reviews 50]

Starts `vmimage webhook --images-from FILE` twice on loopback: with its default connection
cap (200), and, as the baseline in the same run, with a cap too high to matter (what every
release before the cap did). Each time it measures the server's RSS at rest, opens --flood
TLS connections that complete the handshake and then send nothing (as a slow or hostile
client does), measures RSS again, and sends --reviews real reviews, each on a new connection
(as an API server does after a restart), timing each, while the flood goes on. Prints RSS before and under the flood,
the cost per idle connection, the reviews answered and their latency. Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import inspect_file  # noqa: E402
from tests.test_webhook import Webhook, admission, vm  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def flood(webhook: Webhook, count: int) -> list[socket.socket]:
    context = ssl.create_default_context(cafile=str(webhook.cert))
    held = []
    for _ in range(count):
        with contextlib.suppress(OSError):  # ssl.SSLError and resets: evicted, or refused
            raw = socket.create_connection(("127.0.0.1", webhook.port), timeout=5)
            held.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))
    return held


def reviews(webhook: Webhook, count: int) -> tuple[int, list[float]]:
    """Reviews on fresh connections: how many were answered, and each one's seconds."""
    body = admission(vm("web-1", "Photon OS 5.0"))
    context = ssl.create_default_context(cafile=str(webhook.cert))
    answered, seconds = 0, []
    for _ in range(count):
        started = time.perf_counter()
        try:
            with httpx.Client(verify=context, timeout=10) as client:
                if client.post(f"{webhook.url}/mutate", json=body).status_code == 200:
                    answered += 1
        except httpx.TransportError:
            pass
        seconds.append(time.perf_counter() - started)
    return answered, seconds


def run(work: Path, images: Path, label: str, cap: int, flood_size: int, review_count: int) -> None:
    webhook = Webhook(work, str(images), ["--max-connections", str(cap), "--header-timeout", "60"])
    held: list[socket.socket] = []
    try:
        reviews(webhook, 20)  # warm
        at_rest = rss_mib(webhook.process.pid)
        _, before = reviews(webhook, review_count)
        started = time.monotonic()
        held = flood(webhook, flood_size)
        opened = time.monotonic() - started
        under = rss_mib(webhook.process.pid)
        more: list[socket.socket] = []  # the flood goes on while the reviews are sent
        flooding = threading.Thread(target=lambda: more.extend(flood(webhook, flood_size)))
        flooding.start()
        answered, during = reviews(webhook, review_count)
        peak = max(under, rss_mib(webhook.process.pid))
        flooding.join()
        held += more
        kept = min(cap, flood_size)
        print(
            f"{label}: RSS {at_rest:.0f} MiB at rest, {peak:.0f} MiB under {flood_size} idle TLS connections "
            f"(opened in {opened:.1f} s; {1024 * (peak - at_rest) / kept:.0f} KiB per connection held); "
            f"reviews on new connections answered {answered}/{review_count}, "
            f"median {1000 * statistics.median(during):.1f} ms under the flood "
            f"vs {1000 * statistics.median(before):.1f} ms before it"
        )
    finally:
        for connection in held:
            connection.close()
        webhook.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flood", type=int, default=1500)
    parser.add_argument("--reviews", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        image = inspect_file(
            ROOT / "tests" / "fixtures" / "ovf-more" / "photon5-govmomi.ovf",
            name="Photon OS 5.0",
            item_id="e1968c25-dd84-4506-8dc7-9beacb6b688e",
            cluster=True,
        )
        images = work / "images.json"
        images.write_text(json.dumps([image]))
        (work / "capped").mkdir()
        (work / "uncapped").mkdir()
        run(work / "capped", images, "cap 200 (default)", 200, args.flood, args.reviews)
        run(work / "uncapped", images, "no cap (baseline)", 100_000, args.flood, args.reviews)


if __name__ == "__main__":
    main()
