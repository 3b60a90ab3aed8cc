#!/usr/bin/env python3
"""Benchmark: the admission webhook under a real load generator, against its own CPU time.

    venv/bin/python benchmarks/webhook_load.py [--connections 50] [--seconds 10]

Starts `vmimage webhook --images-from FILE` (three images) on loopback and drives /mutate
with wrk (Debian's `wrk`: keep-alive HTTPS connections, as an API server holds them), half
the reviews resolving and half denied. Prints wrk's throughput and latency, and the
server's own CPU seconds per 1,000 reviews from /proc (so a busy client does not hide the
server's cost). As a baseline in the same run, wrk fetches /healthz, which does no work:
the gap between the two is what a review costs. Asserts nothing; needs wrk
(`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import inspect_file  # noqa: E402
from tests.test_webhook import Webhook, admission, vm  # noqa: E402

LUA = """
local bodies = {{ {resolving}, {denied} }}
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/mutate", {{["Content-Type"] = "application/json"}}, bodies[n % 2 + 1])
end
"""


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url: str, connections: int, seconds: int, script: Path | None) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for percentile in ("50", "99"):
        value, unit = re.search(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)", out).groups()
        figures[f"p{percentile}_ms"] = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non_2xx"] = float(errors.group(1)) if errors else 0.0
    figures["requests"] = float(re.search(r"(\d+) requests in", out).group(1))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("webhook_load: wrk is needed (apt-get install wrk)")
    fixtures = ROOT / "tests" / "fixtures"
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        image = inspect_file(
            fixtures / "ovf-more" / "photon5-govmomi.ovf",
            name="Photon OS 5.0",
            item_id="e1968c25-dd84-4506-8dc7-9beacb6b688e",
            cluster=True,
        )
        images = work / "images.json"
        images.write_text(json.dumps([image]))
        script = work / "reviews.lua"
        resolving = json.dumps(json.dumps(admission(vm("web-1", "Photon OS 5.0"))))
        denied = json.dumps(json.dumps(admission(vm("web-2", "No Such Image"))))
        script.write_text(LUA.format(resolving=resolving, denied=denied))
        webhook = Webhook(work, str(images))
        try:
            for label, path, lua in (("/healthz (baseline)", "/healthz", None), ("/mutate", "/mutate", script)):
                before = server_cpu_seconds(webhook.process.pid)
                started = time.monotonic()
                figures = run_wrk(f"{webhook.url}{path}", args.connections, args.seconds, lua)
                elapsed = time.monotonic() - started
                cpu = server_cpu_seconds(webhook.process.pid) - before
                per_thousand = 1000 * cpu / figures["requests"] if figures["requests"] else float("nan")
                print(
                    f"{label}: {figures['rps']:,.0f} req/s, p50 {figures['p50_ms']:.1f} ms, "
                    f"p99 {figures['p99_ms']:.1f} ms, non-2xx {figures['non_2xx']:.0f}; "
                    f"server CPU {cpu:.1f} s in {elapsed:.1f} s ({100 * cpu / elapsed:.0f} % of a core), "
                    f"{per_thousand:.2f} CPU-s per 1,000 requests"
                )
        finally:
            webhook.stop()


if __name__ == "__main__":
    main()
