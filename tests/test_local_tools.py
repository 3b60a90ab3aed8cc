"""The local tools as a developer runs them on a shared machine: the dev API server is locked
down, `dev-up --stop` signals only what dev-up started, and a changed pin is built by every
script that uses the tools."""

from __future__ import annotations

import os
import pwd
import shutil
import ssl
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.checkout import dev_checkout, free_port, held_port, new_shell_env, run_bash, stop_dev_up
from tests.postgres import SCRIPT, postgres_folder, psql, start_postgres
from tests.pulumi_cli import ROOT


def test_the_dev_api_server_is_private_authenticated_and_its_etcd_needs_a_client_certificate(kube):
    assert stat.S_IMODE(kube.kubeconfig.stat().st_mode) & 0o077 == 0  # the admin's key is in it
    pki = kube.directory / "pki"
    assert [p.name for p in pki.iterdir() if stat.S_IMODE(p.stat().st_mode) & 0o077] == []
    server = next(line.split()[-1] for line in kube.kubeconfig.read_text().splitlines() if "server:" in line)
    ca = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    anonymous = httpx.get(f"{server}/readyz", verify=ca, timeout=10)
    assert anonymous.status_code == 401
    etcd = f"127.0.0.1:{kube.etcd_port}"
    with pytest.raises(httpx.HTTPError):  # no plain HTTP: a TLS server hangs up (or answers 400)
        httpx.get(f"http://{etcd}/version", timeout=10).raise_for_status()
    with pytest.raises((httpx.HTTPError, ssl.SSLError)):  # TLS without a client certificate
        httpx.get(f"https://{etcd}/version", verify=ca, timeout=10).raise_for_status()
    client = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    client.load_cert_chain(pki / "etcd-client.pem", pki / "etcd-client-key.pem")
    assert "etcdserver" in httpx.get(f"https://{etcd}/version", verify=client, timeout=10).json()


# --- scripts/postgres: the state database -----------------------------------------------------


def test_the_state_database_takes_tls_with_the_password_only_and_keeps_its_data_across_restarts():
    server = start_postgres()
    try:
        assert server.password not in server.url and "sslmode=verify-full" in server.url
        assert stat.S_IMODE((server.directory / "password").stat().st_mode) == 0o600
        created = psql(server.url, server.password, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
        assert created.returncode == 0, created.stderr
        plain = psql(server.url.replace("sslmode=verify-full", "sslmode=disable"), server.password)
        assert plain.returncode != 0 and "no encryption" in plain.stderr  # TCP without TLS: refused
        wrong = psql(server.url, "not-the-password")
        assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
        password = server.password
        server.stop(keep=True)
        server = start_postgres(server.directory)  # started again on its folder
        assert server.password == password
        assert psql(server.url, server.password, "SELECT n FROM kept").stdout.strip() == "7"
    finally:
        server.stop()
    assert not server.directory.exists()


def run_postgres(directory: Path) -> subprocess.CompletedProcess:
    """scripts/postgres on ``directory``, for a run that is to stop before the server starts."""
    return subprocess.run(
        [str(SCRIPT), "--dir", str(directory), "--port", "1"], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", ["password", "tls/ca-key.pem", "tls/server-key.pem"])
def test_the_state_database_refuses_a_link_in_place_of_its_password_or_a_key(tmp_path, name):
    """The attack of the third review: the password file replaced by a link to a file only root
    reads, which the script (as root) read and spliced into SQL, so the server logged it."""
    secret = tmp_path / "root-only"
    secret.write_text("root-only-secret\n")
    secret.chmod(0o600)
    directory = postgres_folder()
    try:
        (directory / "tls").mkdir(mode=0o711)
        (directory / name).symlink_to(secret)
        refused = run_postgres(directory)
        assert refused.returncode != 0
        assert f"postgres: {directory / name} is a symbolic link" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1  # one clear line
        assert secret.read_text() == "root-only-secret\n"  # neither read nor written
        assert not (directory / "data").exists()  # refused before anything started
        assert "root-only-secret" not in refused.stdout + refused.stderr
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_password_with_quotes_and_backslashes_is_the_roles_password_as_written():
    directory = postgres_folder()
    password = "it's \"quoted\"; \\ -- '); DROP ROLE vmimage; --"
    (directory / "password").write_text(password + "\n")
    (directory / "password").chmod(0o600)
    server = start_postgres(directory)
    try:
        assert server.password == password
        assert psql(server.url, password).returncode == 0
        assert psql(server.url, "it").returncode != 0  # the whole of it, not a prefix
        assert password not in (directory / "postgres.log").read_text()
    finally:
        server.stop()


def test_run_as_root_the_named_folder_stays_roots_and_the_postgres_user_cannot_write_in_it():
    """Root's files (the password, the CA's key) sit in --dir: no one else may replace them."""
    if os.geteuid() != 0:  # as any other user everything is that user's: nothing to check here
        assert start_postgres().stop() is None
        return
    server = start_postgres()
    try:
        directory = server.directory
        for path in (directory, directory / "password", directory / "tls", directory / "tls" / "ca-key.pem"):
            assert path.stat().st_uid == 0, path
        assert stat.S_IMODE((directory / "tls" / "ca-key.pem").stat().st_mode) == 0o600
        assert (directory / "data").owner() == "postgres" and (directory / "run").owner() == "postgres"
        key = directory / "tls" / "server-key.pem"  # root's, read by the server through its group
        assert (key.owner(), key.group(), stat.S_IMODE(key.stat().st_mode)) == ("root", "postgres", 0o640)
        as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]
        for attempt in (["ln", "-sf", "/etc/shadow", str(directory / "password")], ["touch", str(directory / "x")]):
            done = subprocess.run([*as_postgres, *attempt], capture_output=True, text=True, timeout=30)
            assert done.returncode != 0, attempt
        assert not (directory / "password").is_symlink()
    finally:
        server.stop()


def test_run_as_root_a_folder_given_to_another_user_is_refused_not_taken(tmp_path):
    """An earlier release gave --dir to postgres: as root, the script now refuses it, naming the owner."""
    directory = postgres_folder()
    try:
        if os.geteuid() == 0:
            os.chown(directory, pwd.getpwnam("postgres").pw_uid, -1)
            refused = run_postgres(directory)
            assert refused.returncode != 0
            assert f"postgres: {directory} belongs to postgres, not root" in refused.stderr
            assert directory.owner() == "postgres" and list(directory.iterdir()) == []  # untouched
        else:  # as another user, a folder of one's own is the usual case: it starts
            start_postgres(directory).stop(keep=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("name", ["data", "run"])
def test_a_folder_that_already_has_a_data_or_run_folder_of_anothers_is_refused_untouched(name):
    """--dir naming a folder in use (`--dir /srv`, `--dir /`): the script deleted a `data/` without
    PG_VERSION whole (`rm -rf`, as root), and gave an existing `run/` to `postgres` (`/run`, for
    `--dir /`). Refused with one line before anything is written; what was there stays."""
    directory = postgres_folder()
    try:
        (directory / name).mkdir()
        (directory / name / "notes.txt").write_text("someone's\n")
        refused = run_postgres(directory)
        assert refused.returncode != 0
        assert refused.stderr.startswith(f"postgres: {directory / name} is there")
        assert len(refused.stderr.strip().splitlines()) == 1
        assert (directory / name / "notes.txt").read_text() == "someone's\n"
        assert (directory / name).stat().st_uid == os.geteuid()  # not given to the server's user
        assert sorted(p.name for p in directory.iterdir()) == [name]  # nothing written beside it
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_data_folder_left_by_an_initdb_that_was_cut_off_is_made_again():
    """What the script may remove: a data/ its own initdb left unfinished (the marker beside it)."""
    directory = postgres_folder()
    try:
        (directory / "data").mkdir()
        (directory / "data" / "half-made").write_text("")
        (directory / "initdb.unfinished").write_text("")
        server = start_postgres(directory)
        assert (directory / "data" / "PG_VERSION").exists() and not (directory / "data" / "half-made").exists()
        assert not (directory / "initdb.unfinished").exists()
        server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --- dev-up --stop ---------------------------------------------------------------------------


def process_start(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def make_sandbox(folder: Path) -> Path:
    """A copy of dev-up with stand-in scripts/vcsim, devcluster and postgres that only wait."""
    (folder / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "dev-up", folder / "scripts" / "dev-up")
    for name in ("vcsim", "devcluster", "postgres"):
        script = folder / "scripts" / name
        script.write_text("#!/usr/bin/env bash\ntrap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n")
        script.chmod(0o755)
    (folder / ".build").mkdir()
    return folder


@pytest.fixture
def sandbox(tmp_path) -> Path:
    return make_sandbox(tmp_path)


def stop(sandbox: Path) -> str:
    done = subprocess.run(
        [str(sandbox / "scripts" / "dev-up"), "--stop"], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_dev_up_stop_leaves_a_process_it_did_not_start(sandbox):
    other = subprocess.Popen(["sleep", "60"])  # a pid file naming someone else's process
    try:
        (sandbox / ".build" / "vcsim.pid").write_text(f"{other.pid} {process_start(other.pid)}\n")
        (sandbox / ".build" / "devcluster.pid").write_text(f"{other.pid}\n")  # an earlier release's file
        said = stop(sandbox)
        time.sleep(0.3)
        assert other.poll() is None, "dev-up --stop killed a process it did not start"
        # the pid is alive: not "it has exited" alone, as the line once said
        assert said.count("names no process dev-up started (it has exited, or its pid is now another process's)") == 2
        assert not (sandbox / ".build" / "vcsim.pid").exists()
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("name", ["vcsim", "postgres"])
@pytest.mark.parametrize("folder", ["plain", "a checkout [1] with 'quotes' and *"])
def test_dev_up_stop_stops_what_it_started(tmp_path, name, folder):
    """In a checkout whose path reads as a pattern ([1], *) too: dev-up once matched it as one,
    never found its own simulator, started another on the next run and left both to run."""
    sandbox = make_sandbox(tmp_path / folder)
    script = sandbox / "scripts" / name
    ours = subprocess.Popen([str(script), "--port", "1"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while str(script) not in Path(f"/proc/{ours.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (sandbox / ".build" / f"{name}.pid").write_text(f"{ours.pid} {process_start(ours.pid)}\n")
        assert f"stopped {name}" in stop(sandbox)
        assert ours.wait(10) == 0
    finally:
        if ours.poll() is None:
            ours.kill()


def test_dev_up_in_a_checkout_whose_build_folder_is_not_the_users_says_so_in_one_line():
    """dev-up takes a lock in .build/ first: where that cannot be written (sudo ran setup, say),
    bash's own error was all a user saw."""
    folder = Path(tempfile.mkdtemp(prefix="vmimage-not-mine-"))
    try:
        folder.chmod(0o755)
        sandbox = make_sandbox(folder / "checkout")
        command = [str(sandbox / "scripts" / "dev-up"), "--stop"]
        if os.geteuid() == 0:  # root writes anywhere: another user meets root's .build/
            command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
            owner = "root"
        else:
            (sandbox / ".build").chmod(0o555)
            owner = pwd.getpwuid(os.geteuid()).pw_name
        done = subprocess.run(command, cwd=sandbox, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert done.stderr == (
            f"dev-up: cannot write in {sandbox}/.build (it is {owner}'s): "
            "run dev-up as the user who set this checkout up\n"
        )
    finally:
        (folder / "checkout" / ".build").chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(
    ("flag", "variable", "value", "as_variable"),
    [
        ("--vcsim-port", "VMIMAGE_VCSIM_PORT", "0", False),
        ("--vcsim-port", "VMIMAGE_VCSIM_PORT", "99999", False),
        ("--postgres-port", "VMIMAGE_POSTGRES_PORT", "abc", False),
        ("--kube-port", "VMIMAGE_KUBE_PORT", "70000", True),
    ],
)
def test_dev_up_refuses_a_port_that_is_no_port_at_once_in_one_line(sandbox, flag, variable, value, as_variable):
    """Port 0 started a simulator on any port, waited 30 s for it on port 0 and left it running;
    99999 printed a Python traceback, then started it. Now: one line, before anything."""
    env = {key: v for key, v in os.environ.items() if not key.startswith("VMIMAGE_")}
    args, env = ([], {**env, variable: value}) if as_variable else ([flag, value], env)
    began = time.monotonic()
    done = subprocess.run(
        [str(sandbox / "scripts" / "dev-up"), *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and time.monotonic() - began < 5
    assert done.stderr == f"dev-up: {flag} (or {variable}): '{value}' is not a port number (1 to 65535)\n"
    assert sorted(p.name for p in (sandbox / ".build").iterdir()) == ["dev-up.lock"]  # nothing started


# --- a changed pin is built by the scripts that use the tools ---------------------------------

STUB_GO = """#!/bin/sh
# go, as scripts/toolchain calls it, without building: `go build -o OUT` records OUT
case "$1" in
  version) echo "go version go1.26.0 linux/amd64" ;;
  build)
    out=$3
    printf '#!/bin/sh\\nexit 1\\n' >"$out" && chmod +x "$out"
    echo "$(basename "$out")" >>"$GO_LOG" ;;
  *) echo "stub go: $*" >&2; exit 1 ;;
esac
"""


@pytest.fixture
def toolchain_sandbox(tmp_path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", root / "scripts")
    (root / "tools" / "toolchain").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "toolchain" / "versions", root / "tools" / "toolchain" / "versions")
    for tool in ("vcsim", "kubernetes", "etcd"):
        shutil.copytree(ROOT / "tools" / "toolchain" / tool, root / "tools" / "toolchain" / tool)
    bin_dir = tmp_path / "go-bin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(STUB_GO)
    (bin_dir / "go").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GO_LOG": str(tmp_path / "builds")}
    return root, env


def builds(env: dict[str, str]) -> list[str]:
    log = Path(env["GO_LOG"])
    return log.read_text().split() if log.exists() else []


def test_a_changed_pin_is_built_by_the_scripts_that_use_the_tools(toolchain_sandbox):
    root, env = toolchain_sandbox

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)

    assert run("scripts/vcsim", "--build-only").returncode == 0
    assert builds(env) == ["vcsim"]
    quiet = run("scripts/vcsim", "--build-only")  # up to date: a stamp check, silent
    assert quiet.returncode == 0 and quiet.stderr == "" and builds(env) == ["vcsim"]
    versions = root / "tools" / "toolchain" / "versions"
    versions.write_text(versions.read_text().replace("GOVMOMI_VERSION=", "GOVMOMI_VERSION=0.0.1-changed-"))
    assert run("scripts/vcsim", "--build-only").returncode == 0
    assert builds(env) == ["vcsim", "vcsim"]
    # devcluster checks its two tools before it starts them (here they are stand-ins that fail)
    started = run("scripts/devcluster", "--dir", str(root / ".build" / "devcluster"))
    assert started.returncode != 0
    assert sorted(builds(env)[2:]) == ["etcd", "kube-apiserver", "kubectl"]
    versions.write_text(versions.read_text().replace("ETCD_VERSION=", "ETCD_VERSION=9"))
    run("scripts/devcluster", "--dir", str(root / ".build" / "devcluster"))
    assert sorted(builds(env)[5:]) == ["etcd", "kube-apiserver", "kubectl"]


# --- dev-up on ports of one's choosing ---------------------------------------------------------

DEFAULT_PORTS = (8989, 6443, 2379, 2380, 55432)


@pytest.fixture
def checkout() -> Iterator[Path]:
    yield from dev_checkout("vmimage-checkout-")


def dev_env(checkout: Path) -> dict[str, str]:
    """.build/dev-env as a shell that sources it sees it."""
    dump = subprocess.run(
        ["bash", "-c", f"set -a; . {checkout / '.build' / 'dev-env'}; env -0"], capture_output=True, check=True
    ).stdout.decode()
    return dict(entry.split("=", 1) for entry in dump.split("\0") if "=" in entry)


def test_dev_up_runs_on_other_ports_while_the_defaults_are_taken(checkout):
    """Taken default ports: dev-up says which at once, in one line, and starts nothing; with
    --free-ports it brings the stacks up elsewhere, and a new shell with `. scripts/env` reaches
    them (the stack files name no server). Then the PostgreSQL backend, on a free port, gets a
    simulator of its own: its dev stack does not meet the file backend's library."""
    env = new_shell_env(checkout)
    with ExitStack() as held:
        for port in DEFAULT_PORTS:
            held.enter_context(held_port(port))
        began = time.monotonic()
        refused = run_bash(checkout, "./scripts/dev-up --kube", env)
        assert refused.returncode != 0 and time.monotonic() - began < 15
        assert refused.stdout.splitlines() == [
            "dev-up: port 8989 on 127.0.0.1 (the vCenter simulator) is taken; pick another with --vcsim-port N "
            "(or VMIMAGE_VCSIM_PORT=N), or pass --free-ports"
        ]
        vcsim_port = free_port()
        refused = run_bash(checkout, "./scripts/dev-up --kube", {**env, "VMIMAGE_VCSIM_PORT": str(vcsim_port)})
        assert refused.returncode != 0 and "port 6443 on 127.0.0.1 (the API server) is taken" in refused.stdout
        assert not (checkout / ".build" / "vcsim.pid").exists()  # checked before anything started

        up = run_bash(checkout, "./scripts/dev-up --kube --free-ports", env)
        assert up.returncode == 0, up.stdout
        written = dev_env(checkout)
        ports = dict(pair.split("=") for pair in written["VMIMAGE_DEV_PORTS"].split())
        assert written["VSPHERE_SERVER"] == f"127.0.0.1:{ports['vcsim']}"
        assert not {int(port) for port in ports.values()} & set(DEFAULT_PORTS)
        kubeconfig = (checkout / ".build" / "devcluster" / "kubeconfig").read_text()
        assert f"server: https://127.0.0.1:{ports['kube']}" in kubeconfig
        same = run_bash(checkout, ". scripts/env && pulumi preview --expect-no-changes --stack dev-k8s", env)
        assert same.returncode == 0, same.stdout
        again = run_bash(checkout, "./scripts/dev-up --kube", env)  # what runs is reused, where it runs
        assert again.returncode == 0 and "starting" not in again.stdout, again.stdout
        assert dev_env(checkout)["VSPHERE_SERVER"] == written["VSPHERE_SERVER"]

        postgres = run_bash(checkout, "./scripts/dev-up --backend postgres --free-ports", env)
        assert postgres.returncode == 0, postgres.stdout
        assert "stopping the simulator: it holds the file backend's dev stacks" in postgres.stdout
        assert "already has a library" not in postgres.stdout
        back = run_bash(checkout, "./scripts/dev-up --free-ports", env)
        assert back.returncode == 0, back.stdout
        assert "stopping the simulator: it holds the postgres backend's dev stacks" in back.stdout


def scripts_running(checkout: Path, name: str) -> list[int]:
    """The pids of the processes running ``checkout``'s scripts/NAME."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if f"{checkout}/scripts/{name} " in command:
            found.append(int(proc.name))
    return found


def test_two_dev_ups_at_once_in_one_checkout_start_one_simulator_that_stop_reaches(checkout):
    """Two at once (two terminals, a double paste): both started a simulator, the second
    generated the certificate anew under the first (which then never answered) and took the pid
    file, so one simulator ran on that no --stop would reach. Now the second says why and stops.
    .build/dev-env is written whole, by a rename: a shell that sources it meanwhile never reads
    half of it (and a link in its place is replaced, not written through)."""
    env = new_shell_env(checkout)
    elsewhere = checkout / "notes"  # .build/dev-env a link to it: replaced, not written through
    elsewhere.write_text("# someone's notes\n")
    (checkout / ".build" / "dev-env").symlink_to(elsewhere)
    command = ["bash", "-c", "./scripts/dev-up --free-ports"]
    runs = [
        subprocess.Popen(command, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    said = [run.communicate(timeout=600)[0] for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes[0] == 0 and codes[1] != 0, said
    refused = said[[run.returncode for run in runs].index(codes[1])]
    assert refused.splitlines() == [
        f"dev-up: another dev-up is running in this checkout ({checkout}); wait for it to end, then run this again"
    ]
    running = scripts_running(checkout, "vcsim")
    assert len(running) == 1 and (checkout / ".build" / "vcsim.pid").read_text().split()[0] == str(running[0])
    assert elsewhere.read_text() == "# someone's notes\n" and not (checkout / ".build" / "dev-env").is_symlink()
    stop_dev_up(checkout, env)
    assert scripts_running(checkout, "vcsim") == []


def test_dev_up_postgres_then_file_then_postgres_reuses_the_database_it_started(checkout):
    """The issue's back and forth. The third run did not see its running PostgreSQL (pg_isready
    took the relative socket folder for a host name), started a second on the same data, which
    died on its lock file, and dropped the pid file: the first then ran on, out of --stop's reach.
    With a passphrase and PGPASSWORD of the user's in the environment (for stacks of theirs):
    dev-up used that passphrase for the dev stacks, encrypted with "dev", and failed."""
    env = new_shell_env(checkout, PULUMI_CONFIG_PASSPHRASE="mine", PGPASSWORD="my-db")
    runs = [run_bash(checkout, f"./scripts/dev-up --free-ports {flags}", env) for flags in ("--backend postgres", "")]
    assert [run.returncode for run in runs] == [0, 0], runs[-1].stdout[-3000:]
    started = (checkout / ".build" / "postgres.pid").read_text()
    again = run_bash(checkout, "./scripts/dev-up --free-ports --backend postgres", env)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "starting PostgreSQL" not in again.stdout and "already has a library" not in again.stdout
    assert (checkout / ".build" / "postgres.pid").read_text() == started
    outputs = run_bash(checkout, ". scripts/env && pulumi stack output table --stack dev", env)  # the tour's
    assert outputs.returncode == 0 and "photon-5-sample" in outputs.stdout, outputs.stdout[-3000:]
    stop_dev_up(checkout, env)
    assert scripts_running(checkout, "postgres") == []


def test_dev_up_refuses_one_port_for_two_services_before_starting_either(checkout):
    """Each port was free when checked: the simulator started on it, then the API server died on
    it. Now one line names the two flags, and nothing starts."""
    port = free_port()
    done = run_bash(
        checkout, f"./scripts/dev-up --kube --vcsim-port {port} --kube-port {port}", new_shell_env(checkout)
    )
    assert done.returncode != 0
    assert (
        done.stdout.splitlines()[-1] == f"dev-up: --vcsim-port and --kube-port name one port, {port}: give each its own"
    )
    assert "starting" not in done.stdout and not list((checkout / ".build").glob("*.pid"))


def test_dev_up_says_at_once_why_a_service_it_started_died(checkout):
    vcsim = checkout / "scripts" / "vcsim"
    vcsim.write_text(
        "#!/usr/bin/env bash\necho 'vcsim: certificate for clients to trust: x' >&2\n"
        "echo 'panic: listen tcp 127.0.0.1:1: bind: permission denied' >&2\necho 'goroutine 1 [running]:' >&2\n"
        "exit 2\n"
    )
    began = time.monotonic()
    done = run_bash(checkout, "./scripts/dev-up --free-ports", new_shell_env(checkout))
    assert done.returncode != 0 and time.monotonic() - began < 15
    assert done.stdout.splitlines()[-1] == (
        "dev-up: vcsim exited at once: panic: listen tcp 127.0.0.1:1: bind: permission denied (log: .build/vcsim.log)"
    )


# --- make-samples -----------------------------------------------------------------------------


def test_make_samples_force_replaces_a_link_and_never_writes_through_it(tmp_path):
    """A user's own image linked in a sample's place: --force wrote the 5.0 sample over it."""
    samples = tmp_path / "samples"
    samples.mkdir()
    (tmp_path / "mine.ova").write_text("my own image\n")
    (samples / "photon-5-sample.ova").symlink_to("../mine.ova")

    def make_samples(*args: str) -> list[str]:
        command = [str(ROOT / "venv" / "bin" / "python"), str(ROOT / "scripts" / "make-samples"), *args, str(samples)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout.split()

    assert str(samples / "photon-5-sample.ova") not in make_samples()  # what is there stays
    assert (samples / "photon-5-sample.ova").is_symlink()
    assert str(samples / "photon-5-sample.ova") in make_samples("--force")
    assert (tmp_path / "mine.ova").read_bytes() == b"my own image\n"
    assert not (samples / "photon-5-sample.ova").is_symlink()
    with tarfile.open(samples / "photon-5-sample.ova") as ova:
        assert ova.getnames()[0] == "photon-5-sample.ovf"  # the members named after the file, as before
    assert sorted(p.name for p in samples.iterdir()) == [
        "photon-5-sample.ova",
        "tools-sample.iso",
        "ubuntu-24.04-sample.ova",
    ]  # nothing left beside them


# --- scripts/env: what a shell gets, and what of the user's it keeps --------------------------


@pytest.fixture
def env_checkout(tmp_path) -> Path:
    """scripts/env beside a .build/dev-env as dev-up writes it (the simulator on port 41234)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "env", tmp_path / "scripts" / "env")
    (tmp_path / ".build").mkdir()
    (tmp_path / ".build" / "dev-env").write_text(
        "VSPHERE_SERVER=127.0.0.1:41234\nVMIMAGE_DEV_BACKEND=file\n"
        f"VMIMAGE_DEV_BACKEND_URL=file://{tmp_path}/.build/pulumi-state\nVMIMAGE_DEV_PORTS=vcsim=41234\n"
    )
    return tmp_path


def sourced(checkout: Path, script: str, shell: str = "bash", **env: str) -> dict[str, str]:
    """What ``script`` (which sources scripts/env) leaves, under ``set -u``, run from /."""
    shown = {"SERVER": "VSPHERE_SERVER", "BACKEND": "PULUMI_BACKEND_URL", "PASSPHRASE": "PULUMI_CONFIG_PASSPHRASE"}
    shown |= {"PASSPHRASE_FILE": "PULUMI_CONFIG_PASSPHRASE_FILE", "PGPASSWORD": "PGPASSWORD"}
    dump = f"set -u\n{script}\necho " + " ".join(f"{key}=${{{name}-unset}}" for key, name in shown.items())
    base = {key: v for key, v in os.environ.items() if key not in shown.values()}
    done = subprocess.run(
        [shell, "-c", dump.replace("ENV", str(checkout / "scripts" / "env"))],
        cwd="/",
        env={**base, "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    said = done.stdout.strip().splitlines()[-1]
    return {"rc": str(done.returncode), "stderr": done.stderr, **dict(kv.split("=", 1) for kv in said.split())}


def test_scripts_env_keeps_the_users_own_vcenter_as_it_keeps_their_backend(env_checkout):
    """A user's VSPHERE_SERVER was replaced by the simulator's, their credentials and backend
    kept: a stack of theirs that names no server then met the simulator (or, after a reboot,
    whoever listens on its port). Now theirs stays; the one scripts/env set follows dev-env."""
    own = sourced(env_checkout, ". ENV; . ENV", VSPHERE_SERVER="vc.example.com", PULUMI_BACKEND_URL="s3://mine")
    assert (own["SERVER"], own["BACKEND"]) == ("vc.example.com", "s3://mine")
    dev = sourced(env_checkout, ". ENV; . ENV")  # sourced twice, under set -u: the dev ones
    assert (dev["SERVER"], dev["BACKEND"]) == ("127.0.0.1:41234", f"file://{env_checkout}/.build/pulumi-state")
    moved = f"sed -i s/41234/41235/ {env_checkout}/.build/dev-env"  # another dev-up since
    assert sourced(env_checkout, f". ENV; {moved}; . ENV")["SERVER"] == "127.0.0.1:41235"
    stopped = f"rm {env_checkout}/.build/dev-env"  # dev-up --stop: nothing runs for it to name
    assert sourced(env_checkout, f". ENV; {stopped}; . ENV")["SERVER"] == "unset"


def test_scripts_env_gives_the_dev_backend_its_passphrase_and_password_and_a_users_backend_theirs(env_checkout):
    """A passphrase (or file) or PGPASSWORD of the user's, meant for stacks of theirs, was kept
    with the dev backend, whose stacks are encrypted with "dev": every tour command failed with
    "incorrect passphrase" (PostgreSQL: "password authentication failed")."""
    (env_checkout / ".build" / "postgres").mkdir()
    (env_checkout / ".build" / "postgres" / "password").write_text("the-dev-database's\n")
    dev_env = env_checkout / ".build" / "dev-env"
    dev_env.write_text(dev_env.read_text().replace("BACKEND=file", "BACKEND=postgres"))
    users = {
        "PULUMI_CONFIG_PASSPHRASE": "mine",
        "PULUMI_CONFIG_PASSPHRASE_FILE": "/home/me/pass",
        "PGPASSWORD": "my-db",
    }
    dev = sourced(env_checkout, ". ENV", **users)
    assert (dev["PASSPHRASE"], dev["PASSPHRASE_FILE"], dev["PGPASSWORD"]) == ("dev", "unset", "the-dev-database's")
    own = sourced(env_checkout, ". ENV", PULUMI_BACKEND_URL="s3://mine", **users)
    assert (own["PASSPHRASE"], own["PASSPHRASE_FILE"], own["PGPASSWORD"]) == ("mine", "/home/me/pass", "my-db")


def test_scripts_env_in_sh_says_it_needs_bash_and_sets_nothing(env_checkout):
    """dash cannot tell where a sourced file is: scripts/env took / for the checkout and pointed
    Pulumi at file:////.build/pulumi-state."""
    done = sourced(env_checkout, ". ENV || echo refused", shell="dash")
    assert done["rc"] == "0" and done["BACKEND"] == "unset"
    assert done["stderr"] == (
        "scripts/env: source it from bash or zsh (this shell cannot tell where the file is): bash, then . scripts/env\n"
    )


# --- setup: its steps on the terminal, the tools' output in a log --------------------------------

SETUP_STUBS = {
    # on PATH: every package installed, Go new enough, python3 makes a venv whose python is a stub
    "bin/dpkg-query": "printf 'install ok installed'",
    "bin/go": "echo 'go version go1.26.0 linux/amd64'; [ \"$1\" = env ] && echo go1.26.0",
    "bin/python3": 'case "$*" in *\'-m venv\'*) exit 0 ;; *) exec /usr/bin/python3 "$@" ;; esac',
    # pip's noise, then success (or a failure when PIP_FAILS is set)
    "repo/venv/bin/python": (
        "case \"$*\" in *'pip install'*) echo 'BuildBackendWarning: noise'; echo 'Collecting noise' >&2;"
        " [ -z \"${PIP_FAILS:-}\" ] || { echo 'ERROR: No matching distribution found for noise' >&2; exit 7; } ;;"
        " *) true ;; esac"
    ),
    "repo/venv/bin/vmimage": "echo 'NAME  vmi-0123'",
    "repo/scripts/toolchain": "echo 'go: downloading example.com/noise v1' >&2; echo 'toolchain: vcsim is up to date'",
}


def test_setup_prints_its_steps_and_keeps_the_tools_output_in_its_log(tmp_path):
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup", root / "scripts" / "setup")
    for name, body in SETUP_STUBS.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/usr/bin/env bash\n{body}\n")
        path.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}

    done = subprocess.run([root / "scripts" / "setup"], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "noise" not in done.stdout + done.stderr  # pip's and go's output is in the log only
    assert [line for line in done.stdout.splitlines() if line.startswith("==> ")][:3] == [
        "==> installing the project and its test tools into venv/ (an editable install: "
        "venv/ works for this checkout's path only)",
        "==> building the toolchain from its Go modules (.build/toolchain/bin; Go's output: .build/setup.log)",
        "==> writing the sample images missing from build/samples/",
    ]
    assert "toolchain: vcsim is up to date" in done.stdout and "vmi-0123" in done.stdout
    log = (root / ".build" / "setup.log").read_text()
    assert "BuildBackendWarning: noise" in log and "go: downloading example.com/noise v1" in log

    failed = subprocess.run(
        [root / "scripts" / "setup"],
        cwd=root,
        env={**env, "PIP_FAILS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 7
    first_pip = "venv/bin/python -m pip install -q --require-hashes -r requirements.lock"
    assert f"setup: failed (exit 7): {first_pip}" in failed.stderr
    assert "ERROR: No matching distribution found for noise" in failed.stderr  # the log's tail, shown
    assert "==> building the toolchain" not in failed.stdout
