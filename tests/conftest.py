from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vcsim import Simulator, start_simulator

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FIXTURES = Path(os.environ.get("VMIMAGE_FIXTURES", SHARED / "fixtures"))


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not (FIXTURES / "ovf").is_dir():
        pytest.fail(f"test fixtures not found at {FIXTURES}: check out ../shared beside the repository")
    return FIXTURES


@pytest.fixture(scope="session")
def vcsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One simulator for the whole run, on a free port, stopped at the end."""
    simulator = start_simulator(tmp_path_factory.mktemp("vcsim"))
    try:
        yield simulator
    finally:
        simulator.stop()


# Descriptor downloads are cached on disk; tests (and the provider hosts they start) use their own.
os.environ.setdefault("VMIMAGE_CACHE_DIR", __import__("tempfile").mkdtemp(prefix="vmimage-cache-"))


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory):
    """A Kubernetes API emulator serving our CRDs, for the whole run."""
    from tests.kube_emulator import start_emulator
    from vmimage.crds import crds

    running = start_emulator(tmp_path_factory.mktemp("kube"), crds(), {"default", "dev", "team-a", "team-b"})
    try:
        yield running
    finally:
        running.stop()
