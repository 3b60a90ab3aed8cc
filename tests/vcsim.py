"""Runs govmomi's vCenter simulator (scripts/vcsim) for the tests, over verified TLS."""

from __future__ import annotations

import collections
import os
import re
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.tls import write_self_signed

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "vcsim"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class RequestLog:
    """What the simulator was asked, from its own log (scripts/vcsim --requests: one
    "METHOD /path" line per request served). The simulator writes it, so counting adds nothing
    to what is measured: no proxy in the way, no CPU taken from the run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def take(self) -> collections.Counter[str]:
        """The requests logged since the last take, by method and path shape (UUIDs as {id})."""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        return collections.Counter(_UUID.sub("{id}", line) for line in complete.decode().splitlines())


@dataclass
class Simulator:
    process: subprocess.Popen
    host: str
    port: int
    user: str
    password: str
    ca_file: Path
    tmpdir: Path
    requests: RequestLog

    @property
    def server(self) -> str:
        """host:port, as `vsphere:vsphereServer` takes it."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.server}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_simulator(workdir: Path, timeout: float = 180.0) -> Simulator:
    """Build the simulator if needed, start it on a free loopback port and wait until it answers.
    It logs every request it serves to ``workdir/requests.log`` (``Simulator.requests``)."""
    cert, key = write_self_signed(workdir)
    tmpdir = workdir / "tmp"
    tmpdir.mkdir()
    process = subprocess.Popen(
        [
            str(SCRIPT),
            *("--listen", "127.0.0.1:0", "--cert", str(cert), "--key", str(key)),
            *("--requests", str(workdir / "requests.log")),
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmpdir)},
        text=True,
    )
    deadline = time.monotonic() + timeout  # the first run includes a ~30 s Go build
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("https://"):
        process.kill()
        raise RuntimeError(f"the simulator did not start (exit status {process.wait()}, printed {line!r})")
    url = urlsplit(line)
    simulator = Simulator(
        process=process,
        host=url.hostname or "127.0.0.1",
        port=url.port or 443,
        user=url.username or "user",
        password=url.password or "pass",
        ca_file=cert,
        tmpdir=tmpdir,
        requests=RequestLog(workdir / "requests.log"),
    )
    with httpx.Client(verify=simulator.ssl_context(), timeout=5) as client:
        while True:
            try:
                if client.get(f"{simulator.base_url}/about").status_code == 200:
                    return simulator
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                simulator.stop()
                raise RuntimeError("the simulator did not answer on /about in time")
            time.sleep(0.2)
