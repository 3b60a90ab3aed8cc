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
