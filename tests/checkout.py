"""A checkout of this repository in a temporary folder, as a user has it after ./scripts/setup, for
tests that run the dev scripts for real (dev-up, the README's tour) without touching the
repository's own .build/ (a developer's running dev-up, its state, its ports).

The code, stacks, scripts and pins are copied; the virtualenv and the built toolchain (with the
Pulumi home its plugins are registered in) are the repository's, linked: nothing is built again.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.pulumi_cli import DEV_STACK_VARIABLES, ROOT

COPIED = ("Pulumi.yaml", "__main__.py", "README.md", "pyproject.toml", "components", "providers", "vmimage")
COPIED += ("policies", "stacks", "scripts", "tools")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
# what a new shell of the user's has: no toolchain on PATH yet, none of the dev stacks' variables
CLEARED = (*DEV_STACK_VARIABLES, "PULUMI_HOME", "PULUMI_PYTHON_CMD", "VMIMAGE_FREE_PORTS", "PYTHONPATH")
CLEARED += ("VMIMAGE_VCSIM_PORT", "VMIMAGE_KUBE_PORT", "VMIMAGE_ETCD_PORT", "VMIMAGE_POSTGRES_PORT")


def make_checkout(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=IGNORED)
        else:
            shutil.copy2(source, folder / name)
    (folder / "venv").symlink_to(ROOT / "venv")
    (folder / ".build").mkdir()
    for name in ("toolchain", "pulumi-home"):
        (folder / ".build" / name).symlink_to(ROOT / ".build" / name)
    return folder


def new_shell_env(checkout: Path, **extra: str) -> dict[str, str]:
    """The environment of a new shell in ``checkout``: the user's, without what scripts/env sets
    (so a test shows that sourcing it is enough); the checkout's code first on the path."""
    env = {key: value for key, value in os.environ.items() if key not in CLEARED}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(str(ROOT)))
    # the venv's editable install names the repository; the checkout's copy of the code comes first
    env["PYTHONPATH"] = str(checkout)
    env["VMIMAGE_CACHE_DIR"] = str(checkout / ".build" / "cache")
    return {**env, **extra}


def run_bash(checkout: Path, script: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """``script`` under ``bash -e`` in a new shell in ``checkout``: stdout and stderr together."""
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def stop_dev_up(checkout: Path, env: dict[str, str]) -> None:
    subprocess.run([str(checkout / "scripts" / "dev-up"), "--stop"], cwd=checkout, env=env, capture_output=True)


@contextmanager
def held_port(port: int) -> Iterator[bool]:
    """``port`` on 127.0.0.1 taken for the block: bound and listening here, or already taken by
    someone else (then yields False: taken all the same)."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", port))
        holder.listen()
    except OSError:
        holder.close()
        yield False
        return
    try:
        yield True
    finally:
        holder.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dev_checkout(prefix: str) -> Iterator[Path]:
    """A checkout of the repository under /tmp whose dev-up is stopped at the end, whatever happened
    (run as root, scripts/postgres's server runs as `postgres`, which must reach .build/)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    make_checkout(folder)
    try:
        yield folder
    finally:
        stop_dev_up(folder, new_shell_env(folder))
        shutil.rmtree(folder, ignore_errors=True)
