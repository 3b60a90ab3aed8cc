"""`vmimage verify` and `vmimage get --from-vcenter` cannot pass vacuously: every failure to ask
vCenter or the cluster is exit 2 naming it, a declared library or image vCenter does not hold is
a problem (verify: exit 1), and "nothing to verify" means the stack declares nothing. Against the
simulator (through a fault proxy where it must fail) and the real API server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import yaml

from tests.proxy import fault_proxy
from tests.test_cli_get import vmimage
from tests.test_providers import PASSWORD, direct_client, vsphere_config
from vmimage.vsphere.inventory import find_datastore_id
from vmimage.vsphere.settings import resolve_settings

STACK = "t"
STACK_FILE = f"stacks/Pulumi.{STACK}.yaml"
ENV = {"VSPHERE_PASSWORD": PASSWORD, "VMIMAGE_HTTP_ATTEMPTS": "2", "VMIMAGE_HTTP_BACKOFF": "0.05"}
INJECTED = "fault injected by the test proxy"


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return listener.getsockname()[1]


def write_stack(project: Path, config: dict | str) -> Path:
    (project / "stacks").mkdir(parents=True, exist_ok=True)
    text = config if isinstance(config, str) else yaml.safe_dump({"config": config}, sort_keys=False)
    (project / STACK_FILE).write_text(text)
    return project


def vcenter(vcsim, server: str | None = None, trusted: bool = True) -> dict:
    return {
        "vsphere:vsphereServer": server or vcsim.server,
        "vsphere:user": "u",
        **({"vsphere:caFile": str(vcsim.ca_file)} if trusted else {}),
    }


def declaring(library: str) -> dict:
    """An existing library, and one image in it scoped to team-a that nobody uploaded."""
    return {
        "vmimage:libraries": [{"name": library, "existing": True}],
        "vmimage:images": [
            {"displayName": "never-uploaded", "source": "build/never.ova", "library": library, "scope": ["team-a"]}
        ],
    }


def verify(project: Path, kube, *args: str):
    return vmimage("verify", "--stack", STACK, "--kubeconfig", str(kube.kubeconfig), *args, cwd=project, env=ENV)


def get(project: Path, *args: str):
    return vmimage("get", "vmi,cvmi", "-A", "--from-vcenter", "--stack", STACK, *args, cwd=project, env=ENV)


@pytest.fixture(scope="module")
def empty_library(vcsim) -> str:
    """A library vCenter has, with no item."""
    settings = resolve_settings({**vsphere_config(vcsim), "vsphere:password": PASSWORD}, {})
    with direct_client(vcsim) as client:
        client.create_library("verify-empty", find_datastore_id(settings, "LocalDS_0"))
    return "verify-empty"


@contextmanager
def vcenter_that(failure: str, vcsim) -> Iterator[tuple[dict, str]]:
    """Stack settings for a vCenter that fails so, and what the one-line error must say."""
    key = vcsim.ca_file.with_name("key.pem")
    logins = {"/api/session": 0, "/rest/com/vmware/cis/session": 0}
    finds = {"/api/content/library": 0, "/rest/com/vmware/content/library": 0}
    with ExitStack() as stack:
        if failure == "refused":
            port = closed_port()
            yield (
                vcenter(vcsim, server=f"127.0.0.1:{port}"),
                f"vCenter 127.0.0.1:{port}: POST /api/session: connection failed (ConnectError: [Errno 111] "
                "Connection refused)",
            )
        elif failure == "untrusted":
            yield (
                vcenter(vcsim, trusted=False),
                f"vCenter {vcsim.server}: POST /api/session: TLS: vCenter's certificate is not trusted "
                "(self-signed certificate)",
            )
        elif failure in ("401", "403"):
            proxy = stack.enter_context(
                fault_proxy(vcsim.server, vcsim.ca_file, key, answer={path: int(failure) for path in logins})
            )
            said = (
                "login as 'u' refused (HTTP 401): check vsphere:user and vsphere:password"
                if failure == "401"
                else f"login at /api/session: HTTP 403 ({INJECTED})"
            )
            yield vcenter(vcsim, server=proxy.server), f"vCenter {proxy.server}: {said}"
        else:  # a server error in the library lookup itself, after a good login
            proxy = stack.enter_context(
                fault_proxy(vcsim.server, vcsim.ca_file, key, answer={path: int(failure) for path in finds})
            )
            yield (
                vcenter(vcsim, server=proxy.server),
                f"vCenter {proxy.server}: POST /rest/com/vmware/content/library: HTTP {failure} ({INJECTED})",
            )
            assert any(path == "/rest/com/vmware/cis/session" for _, path, _ in proxy.requests)  # logged in first


FAILURES = ["refused", "untrusted", "401", "403", "500", "503"]


@pytest.mark.vcsim
@pytest.mark.parametrize("failure", FAILURES)
def test_verify_is_exit_2_naming_what_failed_when_vcenter_cannot_be_asked(
    failure, vcsim, kube, empty_library, tmp_path
):
    with vcenter_that(failure, vcsim) as (settings, said):
        project = write_stack(tmp_path, {**settings, **declaring(empty_library)})
        result = verify(project, kube)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {said}"), result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr


@pytest.mark.vcsim
@pytest.mark.parametrize("failure", FAILURES)
def test_get_from_vcenter_is_exit_2_naming_what_failed_never_no_resources(failure, vcsim, empty_library, tmp_path):
    with vcenter_that(failure, vcsim) as (settings, said):
        project = write_stack(tmp_path, {**settings, **declaring(empty_library)})
        result = get(project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {said}"), result.stderr
    assert result.stderr.count("\n") == 1 and "No resources found" not in result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr


@pytest.mark.vcsim
def test_a_declared_image_vcenter_has_no_item_for_fails_verify_naming_it(vcsim, kube, empty_library, tmp_path):
    project = write_stack(tmp_path, {**vcenter(vcsim), **declaring(empty_library)})
    absent = (
        f"image 'never-uploaded' (vmimage:images[0], library '{empty_library}', namespace team-a): "
        "declared but vCenter has no item: not published yet, or deleted"
    )
    result = verify(project, kube)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [absent]
    assert result.stderr == "0 of 0 images differ from the prediction; 1 declared but not in vCenter\n"
    scoped = verify(project, kube, "-n", "team-a")
    assert scoped.returncode == 1 and scoped.stdout.splitlines() == [absent]
    elsewhere = verify(project, kube, "-n", "team-b")  # a namespace the stack publishes nothing in checks nothing
    assert elsewhere.returncode == 2
    assert elsewhere.stderr == (
        f"error: --namespace team-b: {STACK_FILE} publishes no image in this namespace (its namespaces: team-a)\n"
    )
    listed = get(project)  # get lists what exists, and says what the stack declares beyond it
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == f"warning: {absent}\nNo resources found.\n"
    cluster_only = vmimage("get", "cvmi", "--from-vcenter", "--stack", STACK, cwd=project, env=ENV)
    assert cluster_only.returncode == 0 and cluster_only.stderr == "No resources found.\n"  # not a cluster image


@pytest.mark.vcsim
def test_a_declared_library_vcenter_does_not_have_is_a_problem_not_nothing(vcsim, kube, empty_library, tmp_path):
    config = declaring("no-such-library")
    config["vmimage:libraries"].append({"name": empty_library, "existing": True})
    config["vmimage:sync"] = [{"library": "no-such-library", "scope": "cluster"}, {"library": empty_library}]
    project = write_stack(tmp_path, {**vcenter(vcsim), **config})
    result = verify(project, kube)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"library 'no-such-library' (vmimage:libraries[0]): vCenter {vcsim.server} has no content library of this "
        "name: it must exist before the stack uses it (existing: true)",
        "image 'never-uploaded' (vmimage:images[0], library 'no-such-library', namespace team-a): declared but "
        "vCenter has no item: its library does not exist",
        f"library '{empty_library}' (vmimage:sync[1], cluster scope): synced, but it holds no item: nothing of it "
        "to publish or verify (a subscribed library that has not synced yet?)",
    ]
    assert "3 declared but not in vCenter" in result.stderr
    listed = get(project)
    assert listed.returncode == 0 and listed.stderr.count("warning: ") == 3 and listed.stdout == ""


@pytest.mark.vcsim
def test_a_cluster_that_cannot_be_asked_is_exit_2_naming_it(vcsim, kube, empty_library, tmp_path):
    project = write_stack(tmp_path, {**vcenter(vcsim), **declaring(empty_library)})
    kubeconfig = yaml.safe_load(kube.kubeconfig.read_text())
    port = closed_port()
    for cluster in kubeconfig["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    unreachable = tmp_path / "unreachable.kubeconfig"
    unreachable.write_text(yaml.safe_dump(kubeconfig))
    kubeconfig = yaml.safe_load(kube.kubeconfig.read_text())
    for user in kubeconfig["users"]:
        user["user"] = {"token": "not-a-token-the-server-knows"}
    refused = tmp_path / "refused.kubeconfig"
    refused.write_text(yaml.safe_dump(kubeconfig))
    for path, said in ((unreachable, "connection failed"), (refused, "HTTP 401")):
        result = vmimage("verify", "--stack", STACK, "--kubeconfig", str(path), cwd=project, env=ENV)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith(f"error: Kubernetes cluster (current context) of {path}: ")
        assert said in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert "not-a-token-the-server-knows" not in result.stderr


MALFORMED = [
    ("config:\n  vmimage:images: [a, b\n", f"error: {STACK_FILE}:3:1: not valid YAML: while parsing a flow sequence"),
    ("- config\n", f"error: {STACK_FILE}:1: a stack file is a mapping (config: ...), not a list"),
    ("config:\n  - vmimage:images\n", f"error: {STACK_FILE}:2: config is a list, not a mapping"),
    (
        "config:\n  vmimage:libraries:\n    - name: x\n      existing: true\n  vmimage:images:\n"
        "    - displayName: a\n      source: a.txt\n      library: x\n",
        f"error: {STACK_FILE}:7: vmimage:images[0].source: a source is a path or https URL ending in .ova",
    ),
]


@pytest.mark.parametrize(("text", "said"), MALFORMED)
def test_a_malformed_stack_file_is_exit_2_naming_the_file_and_line(text, said, tmp_path):
    project = write_stack(tmp_path, text)
    for result in (
        vmimage("verify", "--stack", STACK, "--kubeconfig", "/nonexistent", cwd=project, env=ENV),
        get(project),
    ):
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(said) and result.stderr.count("\n") == 1, result.stderr
        assert "internal error" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "config", ["", "config:\n  vsphere:user: u\n", "config:\n  vmimage:libraries: [{name: x, existing: true}]\n"]
)
def test_nothing_to_verify_is_exit_0_only_for_a_stack_that_declares_nothing(config, tmp_path):
    """Nothing declared: nothing to ask vCenter or the cluster (neither is configured here)."""
    project = write_stack(tmp_path, config)
    result = vmimage("verify", "--stack", STACK, "--kubeconfig", "/nonexistent", cwd=project, env=ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"nothing to verify: {STACK_FILE} declares no images and syncs no library\n"
    listed = get(project)
    assert listed.returncode == 0
    assert listed.stderr == f"warning: {STACK_FILE} declares no images and syncs no library\nNo resources found.\n"
