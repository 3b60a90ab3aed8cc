"""The vCenter simulator the later tests stand on: SOAP and REST over verified TLS."""

import ssl

import httpx
import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.vcsim import start_simulator

pytestmark = pytest.mark.vcsim


def test_pyvmomi_login_over_verified_tls(vcsim):
    service = SmartConnect(
        host=vcsim.host, port=vcsim.port, user=vcsim.user, pwd=vcsim.password, sslContext=vcsim.ssl_context()
    )
    try:
        content = service.RetrieveContent()
        assert content.about.apiType == "VirtualCenter"
        assert content.sessionManager.currentSession.userName == vcsim.user
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
        assert "LocalDS_0" in [datastore.name for datastore in view.view]
    finally:
        Disconnect(service)


def test_unverified_certificate_is_refused(vcsim):
    with pytest.raises(ssl.SSLCertVerificationError):
        SmartConnect(
            host=vcsim.host,
            port=vcsim.port,
            user=vcsim.user,
            pwd=vcsim.password,
            sslContext=ssl.create_default_context(),
        )


def test_content_library_rest_session_and_library_list(vcsim):
    with httpx.Client(base_url=vcsim.base_url, verify=vcsim.ssl_context(), timeout=10) as client:
        login = client.post("/rest/com/vmware/cis/session", auth=(vcsim.user, vcsim.password))
        assert login.status_code == 200
        session = login.json()["value"]
        libraries = client.get("/rest/com/vmware/content/library", headers={"vmware-api-session-id": session})
        assert libraries.status_code == 200
        listed = libraries.json()["value"] or []  # vcsim answers an empty list as null
        assert all(isinstance(library_id, str) for library_id in listed)
        assert client.post("/rest/com/vmware/cis/session", auth=(vcsim.user, "")).status_code == 401


def test_stopping_removes_the_simulators_datastore_folders(tmp_path):
    simulator = start_simulator(tmp_path)
    folders = list(simulator.tmpdir.rglob("govcsim-*"))
    assert folders, "the simulator keeps its datastores under TMPDIR"
    simulator.stop()
    assert simulator.process.returncode == 0
    assert list(simulator.tmpdir.rglob("govcsim-*")) == []


def test_the_request_log_has_one_line_per_request_served(tmp_path):
    """`scripts/vcsim --requests FILE`: what benchmarks/catalog_1000.py counts per phase."""
    simulator = start_simulator(tmp_path)
    log = simulator.requests.path
    try:
        with httpx.Client(base_url=simulator.base_url, verify=simulator.ssl_context(), timeout=10) as client:
            before = log.read_text().splitlines()  # start_simulator waits on /about
            assert before and set(before) == {"GET /about"}
            client.post("/rest/com/vmware/cis/session", auth=(simulator.user, simulator.password))
            client.get("/rest/com/vmware/content/library?x=1")
        assert log.read_text().splitlines()[len(before) :] == [
            "POST /rest/com/vmware/cis/session",
            "GET /rest/com/vmware/content/library",
        ]
        assert simulator.requests.take() == {
            "GET /about": len(before),
            "POST /rest/com/vmware/cis/session": 1,
            "GET /rest/com/vmware/content/library": 1,
        }
        assert simulator.requests.take() == {}  # taken once
    finally:
        simulator.stop()
