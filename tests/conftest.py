from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import Postgres, start_postgres
from tests.vcsim import Simulator, start_simulator

FIXTURES = Path(os.environ.get("VMIMAGE_FIXTURES", Path(__file__).resolve().parent / "fixtures"))


@pytest.fixture(scope="session")
def fixtures() -> Path:
    if not (FIXTURES / "ovf").is_dir():
        pytest.fail(f"test fixtures not found at {FIXTURES} (tests/fixtures, or $VMIMAGE_FIXTURES)")
    return FIXTURES


def _running_simulator(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Simulator]:
    """A simulator on a free port, stopped when the fixture ends."""
    simulator = start_simulator(tmp_path_factory.mktemp(name))
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="session")
def vcsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """One simulator for the whole run."""
    yield from _running_simulator(tmp_path_factory, "vcsim")


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    """A simulator of the test module's own, for tests that need vCenter to start empty."""
    yield from _running_simulator(tmp_path_factory, "module-vcsim")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev stack's sample images, a folder of the test module's own (tests may change them)."""
    from vmimage.descriptor.samples import write_samples

    folder = tmp_path_factory.mktemp("samples")
    write_samples(folder)
    return folder


# Descriptor downloads are cached on disk; tests (and the provider hosts they start) use their own.
os.environ.setdefault("VMIMAGE_CACHE_DIR", __import__("tempfile").mkdtemp(prefix="vmimage-cache-"))


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory):
    """A real API server (etcd + kube-apiserver) with our CRDs installed, for the whole run, and the
    Supervisor's ClusterContentLibrary (tests/vm_operator_playback.py): a cluster image's library
    is checked against it in supervisor mode."""
    from tests.devcluster import install_crds, start_cluster
    from tests.vm_operator_playback import CLUSTER_CONTENT_LIBRARY_CRD
    from vmimage.contract.crds import crds

    running = start_cluster(tmp_path_factory.mktemp("kube"), ("dev", "team-a", "team-b"))
    try:
        install_crds(running, [*crds(), CLUSTER_CONTENT_LIBRARY_CRD])
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server of the project's own (scripts/postgres), one per module that asks."""
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


# --- the provider tests' shared pieces: a module names its own with PROVIDER_ENV and LIBRARY_NAME ---


@pytest.fixture(scope="module")
def host(vcsim, request):
    """A provider host (tests/engine.py) configured for the session's simulator, with the module's
    PROVIDER_ENV (backoffs, progress intervals) in its environment."""
    from tests.engine import provider_host
    from tests.test_providers import vsphere_config

    with provider_host(vsphere_config(vcsim), env=getattr(request.module, "PROVIDER_ENV", None)) as started:
        yield started


@pytest.fixture(scope="module")
def library(host, request):
    """A content library of the module's own (LIBRARY_NAME), created through the provider."""
    from providers.content_library import ContentLibraryProvider
    from tests.test_providers import LIBRARY

    step = host.up(LIBRARY, ContentLibraryProvider(), {"name": request.module.LIBRARY_NAME, "datastore": "LocalDS_0"})
    assert step.op == "create", step
    return step


@pytest.fixture(scope="module")
def client(vcsim):
    """A content library client of the test's own: what a person does in the vSphere Client."""
    from tests.test_providers import direct_client

    with direct_client(vcsim) as opened:
        yield opened
