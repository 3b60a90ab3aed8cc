"""A real PostgreSQL server for the state tests, through scripts/postgres (Debian's package).

One server a test session; each stack gets a table of its own (the backend URL's ``table``
parameter), so tests share the server and not their state. The folder is made under the
system's temporary directory because, run as root, the server runs as the ``postgres`` user,
which cannot reach pytest's per-user folders; as root it is root's, and ``postgres`` may enter it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.devcluster import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "postgres"


def psql(url: str, password: str, query: str = "SELECT 1") -> subprocess.CompletedProcess:
    """``query`` through psql on ``url`` with ``password``: unaligned, tab-separated rows, stopping at
    the first error. The result is returned whatever it is (tests of refusals read its stderr)."""
    return subprocess.run(
        ["psql", "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", query],
        env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Postgres:
    process: subprocess.Popen
    url: str  # the backend URL scripts/postgres printed: no password in it
    directory: Path

    @property
    def password(self) -> str:
        return (self.directory / "password").read_text().strip()

    def backend(self) -> tuple[str, dict[str, str]]:
        """A backend URL with a table of its own, and the environment that opens it."""
        table = f"state_{uuid.uuid4().hex[:12]}"
        return f"{self.url}&table={table}", {"PGPASSWORD": self.password}

    def sql(self, url: str, query: str) -> list[list[str]]:
        """Rows of ``query``, run by psql on ``url``'s database (the ``table`` parameter dropped)."""
        done = psql(url.split("&table=", 1)[0], self.password, query)
        assert done.returncode == 0, done.stderr
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def rows(self, url: str) -> dict[str, bytes]:
        """The state table's rows, key → the blob as the CLI wrote it (base64 in a JSON column, decoded)."""
        table = url.rsplit("&table=", 1)[1]
        found = {}
        for key, data in self.sql(url, f"SELECT key, data FROM {table}"):
            found[key] = base64.b64decode(json.loads(data)["data"])
        return found

    def stop(self, keep: bool = False) -> None:
        """Stop the server; its folder goes too unless ``keep``."""
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not keep:
            shutil.rmtree(self.directory, ignore_errors=True)


def postgres_folder() -> Path:
    """A new folder for scripts/postgres: as root, one that the ``postgres`` user may enter."""
    directory = Path(tempfile.mkdtemp(prefix="vmimage-postgres-"))
    if os.geteuid() == 0:
        directory.chmod(0o711)
    return directory


def start_postgres(directory: Path | None = None) -> Postgres:
    """A server in ``directory`` (a new folder when None; an earlier server's folder starts it again)."""
    directory = directory or postgres_folder()
    process = subprocess.Popen(
        [str(SCRIPT), "--dir", str(directory), "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # the URL, once the server takes connections (the script gives up after 60 s on its own)
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("postgres://"):
        process.kill()
        error = process.stderr.read() if process.stderr else ""
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(f"scripts/postgres did not start: {error}")
    return Postgres(process, line.strip(), directory)
