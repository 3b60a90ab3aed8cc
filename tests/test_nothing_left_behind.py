"""Nothing of a run stays on the machine: no copy of the cluster's credentials in the temporary
folder after `preview`, `up` and `destroy` (pulumi-kubernetes writes one in each), and no process
of a run killed with the CLI and the processes it started itself (the program and the provider
host are their children, and outlived them for good).

The real CLI, simulator and API server; providers/kubeconfig_copies.py and providers/lifeline.py
say how.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from providers import kubeconfig_copies, lifeline
from tests.devcluster import Cluster, start_cluster
from tests.proxy import fault_proxy
from tests.pulumi_cli import ROOT, Stack
from tests.test_engine import dev_config
from tests.test_interrupted import children, killed_up, new_stack, stack_config
from tests.test_providers import PASSWORD
from vmimage.descriptor.samples import SampleImage, write_ova

CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def kubeconfig(key: str, token: str | None = None) -> dict:
    user = {"client-certificate-data": "Y2VydA==", "client-key-data": key} | ({"token": token} if token else {})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "admin", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "admin"}}],
        "current-context": "c",
    }


def write(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


# --- the rules, on files ----------------------------------------------------------------------


def test_only_go_named_copies_of_the_stacks_own_credentials_are_removed(tmp_path):
    ours = write(tmp_path / "ours.yaml", kubeconfig("b3Vycy1rZXk="))
    folder = tmp_path / "tmp"
    folder.mkdir()
    copy = write(folder / "kubeconfig1234567", kubeconfig("b3Vycy1rZXk=") | {"preferences": {}})  # as Go writes it
    others = write(folder / "kubeconfig7654321", kubeconfig("b3RoZXIta2V5"))  # another cluster's
    named = write(folder / "kubeconfig-mine", kubeconfig("b3Vycy1rZXk="))  # not a name Go gives
    (folder / "kubeconfig42").symlink_to(ours)  # a link: not followed, not removed
    assert kubeconfig_copies.remove_copies([str(ours)], folder) == [copy]
    assert sorted(p.name for p in folder.iterdir()) == ["kubeconfig-mine", "kubeconfig42", "kubeconfig7654321"]
    assert others.exists() and named.exists() and ours.exists()


def test_the_stacks_own_kubeconfig_under_a_name_go_gives_is_never_removed(tmp_path):
    """A careless but ordinary set-up: the stack's kubeconfig itself is `$TMPDIR/kubeconfig2` (or a
    link to it, or a hard link): it holds the stack's credentials under a name Go gives, yet it is no
    copy. The copy beside it goes; the kubeconfig stays."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    ours = write(folder / "kubeconfig2", kubeconfig("b3Vycy1rZXk="))
    (tmp_path / "link.yaml").symlink_to(ours)
    os.link(ours, folder / "kubeconfig3")
    copy = write(folder / "kubeconfig1234567", kubeconfig("b3Vycy1rZXk="))
    assert kubeconfig_copies.remove_copies([str(ours)], folder) == [copy]
    assert kubeconfig_copies.remove_copies([str(tmp_path / "link.yaml")], folder) == []
    assert sorted(p.name for p in folder.iterdir()) == ["kubeconfig2", "kubeconfig3"]


def test_a_copy_of_a_token_or_an_oidc_login_counts_and_a_kubeconfig_without_credentials_matches_nothing(tmp_path):
    oidc = {"users": [{"name": "u", "user": {"auth-provider": {"name": "oidc", "config": {"id-token": "eyJ0b2tlbg"}}}}]}
    ours = write(tmp_path / "ours.yaml", oidc)
    copy = write(tmp_path / "kubeconfig1", oidc)
    assert kubeconfig_copies.remove_copies([str(ours)], tmp_path) == [copy]
    token = write(tmp_path / "token.yaml", kubeconfig("a2V5", token="s3cr3t-token"))
    copy = write(tmp_path / "kubeconfig2", {"users": [{"name": "x", "user": {"token": "s3cr3t-token"}}]})
    assert kubeconfig_copies.remove_copies([str(token)], tmp_path) == [copy]
    empty = write(tmp_path / "exec.yaml", {"users": [{"name": "u", "user": {"exec": {"command": "login"}}}]})
    write(tmp_path / "kubeconfig3", {"users": [{"name": "u", "user": {"exec": {"command": "login"}}}]})
    assert kubeconfig_copies.remove_copies([str(empty), str(tmp_path / "missing")], tmp_path) == []


def test_the_stacks_kubeconfig_is_the_one_it_names_or_the_default():
    assert kubeconfig_copies.stack_kubeconfig('{"kubeconfig": "/k/config", "installCrds": true}') == "/k/config"
    default = os.environ.get("KUBECONFIG") or "~/.kube/config"
    assert kubeconfig_copies.stack_kubeconfig('{"mode": "publish"}') == default
    assert kubeconfig_copies.stack_kubeconfig(None) is None  # a stack without a cluster


# --- the rules, on processes -------------------------------------------------------------------

CHILD = """
import atexit, sys, threading, time
from pathlib import Path
from providers import lifeline
assert lifeline.arm(poll_seconds=0.1)
atexit.register(lambda: Path(sys.argv[1]).write_text("exit hooks ran"))
threading.Thread(target=time.sleep, args=(600,)).start()  # a busy thread does not keep it
print("armed", flush=True)
threading.Event().wait()
"""

PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
child.wait()
"""


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_process_whose_parent_dies_runs_its_exit_hooks_and_exits_within_seconds(tmp_path):
    assert not lifeline.under_engine()  # this test process imports it, and has no engine to outlive
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, str(marker)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        pid, said = (parent.stdout.readline() if parent.stdout else "").split()
        assert said == "armed"
        time.sleep(1)
        assert alive(int(pid)) and not marker.exists()  # its parent is alive: it stays
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while alive(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(int(pid)), "the orphan is still running"
        assert marker.read_text() == "exit hooks ran"
    finally:
        parent.kill()
        if alive(int(pid)):
            os.kill(int(pid), 9)


# --- the real engine ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster without the CRDs: the stack installs them, so `destroy` configures the
    Kubernetes provider too (to delete them)."""
    running = start_cluster(tmp_path_factory.mktemp("left-behind-cluster"), ("dev",))
    try:
        yield running
    finally:
        running.stop()


def secrets_of(cluster: Cluster) -> list[bytes]:
    """The cluster's client key as a kubeconfig holds it, and decoded."""
    user = yaml.safe_load(cluster.kubeconfig.read_text())["users"][0]["user"]
    key = user["client-key-data"]
    pem = base64.b64decode(key)
    body = b"".join(pem.splitlines()[1:-1])  # the PEM's base64 body, as one line
    return [key.encode(), body]


def holding_a_secret(folder: Path, secrets: list[bytes]) -> list[Path]:
    """The files in ``folder`` and under it that hold one of ``secrets``."""
    return [p for p in folder.rglob("*") if p.is_file() and any(s in p.read_bytes() for s in secrets)]


def copies_in_tmp(secrets: list[bytes]) -> set[Path]:
    """The files /tmp holds by the name pulumi-kubernetes gives its copies, with one of ``secrets``."""
    found = set()
    for path in Path("/tmp").glob("kubeconfig*"):
        try:
            if any(s in path.read_bytes() for s in secrets):
                found.add(path)
        except OSError:  # another's, or gone meanwhile
            continue
    return found


@pytest.mark.vcsim
def test_preview_up_and_destroy_leave_no_copy_of_the_clusters_key_in_the_temporary_folder(
    simulator, cluster, samples, tmp_path
):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    stack = Stack(tmp_path / "stack", name="dev-k8s", env={"TMPDIR": str(temporary)})
    config = dev_config(simulator, samples)
    config["vmimage:images"] = config["vmimage:images"][:1]
    config["vmimage:kubernetes"] = {"kubeconfig": str(cluster.kubeconfig), "installCrds": True}
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    secrets = secrets_of(cluster)
    # what an earlier release's runs left, and what another cluster's provider left
    earlier = temporary / "kubeconfig4000000001"
    earlier.write_bytes(cluster.kubeconfig.read_bytes())
    earlier.chmod(0o600)
    another = write(temporary / "kubeconfig4000000002", kubeconfig("YW5vdGhlci1jbHVzdGVy"))
    before = copies_in_tmp(secrets)

    stack.preview()
    assert holding_a_secret(temporary, secrets) == []
    stack.up()
    assert len(stack.resources(CRD_TYPE)) == 2  # installed by pulumi-kubernetes, whose Configure copies
    assert holding_a_secret(temporary, secrets) == []
    stack.preview("--expect-no-changes")
    assert holding_a_secret(temporary, secrets) == []
    stack.destroy()
    assert stack.resources(CRD_TYPE) == {}  # deleted by pulumi-kubernetes, configured again to do it
    assert holding_a_secret(temporary, secrets) == []
    assert another.exists()  # not a copy of this stack's kubeconfig: not this run's to remove
    # the provider wrote where TMPDIR said, not to /tmp: nothing new holds this cluster's key there
    assert copies_in_tmp(secrets) == before


@pytest.mark.vcsim
def test_a_stack_whose_kubeconfig_is_in_the_temporary_folder_under_a_name_go_gives_keeps_it(
    simulator, cluster, samples, tmp_path
):
    """`up` removed the stack's own kubeconfig when it was `$TMPDIR/kubeconfig2`: the next command
    could not read the cluster. (Before the kill below, which leaves the dev library behind.)"""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    ours = temporary / "kubeconfig2"
    ours.write_bytes(cluster.kubeconfig.read_bytes())
    ours.chmod(0o600)
    stack = Stack(tmp_path / "stack", name="dev-k8s", env={"TMPDIR": str(temporary)})
    config = dev_config(simulator, samples)
    config["vmimage:images"] = config["vmimage:images"][:1]
    config["vmimage:kubernetes"] = {"kubeconfig": str(ours), "installCrds": True}
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    stack.up()
    assert ours.read_bytes() == cluster.kubeconfig.read_bytes()
    assert holding_a_secret(temporary, secrets_of(cluster)) == [ours]  # and no copy beside it
    stack.preview("--expect-no-changes")
    stack.destroy()
    assert ours.exists()


def project_processes(stack: Stack) -> list[str]:
    """The running processes with this stack's environment (its backend is its own folder): the
    program, the provider hosts, the plugins."""
    marker = f"PULUMI_BACKEND_URL={stack.env['PULUMI_BACKEND_URL']}".encode()
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0") and alive(int(entry)):
                found.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


@pytest.mark.vcsim
def test_a_run_killed_with_the_processes_the_cli_started_leaves_no_process_and_logs_out_of_vcenter(
    simulator, cluster, samples, tmp_path
):
    write_ova(samples / "big-sample.ova", SampleImage(name="big-sample"), disk_bytes=8 * 2**20)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    key = simulator.ca_file.with_name("key.pem")
    with fault_proxy(simulator.server, simulator.ca_file, key, slow_put=120) as proxy:
        stack = new_stack(tmp_path, stack_config(simulator, samples, cluster, server=proxy.server))
        stack.env["TMPDIR"] = str(temporary)
        running: list[str] = []

        def uploading(_: str) -> bool:  # a transfer in flight: the provider host is busy, the program waits
            if proxy.in_put > 0:
                running.extend(project_processes(stack))
            return bool(running)

        # with the policy pack, as the deploy job runs `up`: its host (`python -m pulumi.policy`, a child of
        # the language host) outlived the kill too, with the job's secrets in its environment
        pack = ("--policy-pack", str(ROOT / "policies"), "--policy-pack-config", str(ROOT / "policies" / "dev.json"))
        killed_up(stack, uploading, victims=children, args=pack)
        killed = len(proxy.requests)
        assert any("-m pulumi.dynamic" in p for p in running), running  # the provider host
        assert any("pulumi-language-python-exec" in p for p in running), running  # the program
        assert any("-m pulumi.policy" in p for p in running), running  # the policy pack's host
        deadline = time.monotonic() + 30
        while (left := project_processes(stack)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == [], "still running 30 s after the kill:\n" + "\n".join(left)
        logouts = [r for r in proxy.requests[killed:] if r[0] == "DELETE" and r[1].endswith("/session")]
        assert logouts, textwrap.shorten(f"no logout after the kill: {proxy.requests[killed:]}", 2000)
    assert holding_a_secret(temporary, secrets_of(cluster)) == []  # nor the killed provider's copy
