"""The catalog's state in PostgreSQL (the CLI's `postgres://` DIY backend), as a team shares it.

A real server (scripts/postgres: Debian's package, loopback, TLS, a password), the real CLI
and simulator. What a team relies on: a second `up` of a stack while one runs is refused at
once, naming the holder, and nothing is applied twice; a run killed with SIGKILL leaves its
lock, the next `up` says how to clear it, and `pulumi cancel` then `up` converges; the state
moves in and out by `stack export`/`import`; and the database rows hold no secret.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from providers.library_item import UNFINISHED
from tests.postgres import Postgres
from tests.proxy import fault_proxy
from tests.pulumi_cli import PASSPHRASE, Stack, pulumi_binary
from tests.test_engine import dev_config, items
from tests.test_interrupted import killed_up
from tests.test_providers import PASSWORD, direct_client

pytestmark = pytest.mark.vcsim

LOCK_MESSAGE = "the stack is currently locked by 1 lock(s)"


def postgres_stack(workdir: Path, postgres: Postgres, config: dict) -> tuple[Stack, str]:
    """A dev stack whose state is a table of its own in the server; the password comes from PGPASSWORD."""
    url, env = postgres.backend()
    stack = Stack(workdir, name="dev", env={"PULUMI_BACKEND_URL": url, **env})
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    return stack, url


def locks(postgres: Postgres, url: str) -> list[str]:
    return [key for key in postgres.rows(url) if "/.pulumi/locks/" in key]


def published_once(stack: Stack, simulator) -> None:
    """One finished item in vCenter per image in the state: no duplicate, no orphan."""
    published = items(stack)
    assert set(published) == {"photon-5-sample", "ubuntu-24.04-sample", "tools-sample"}
    library_id = next(iter(stack.resources("dynamic/vmimage:ContentLibrary").values()))["id"]
    with direct_client(simulator) as client:
        found = [client.get_item(item_id) for item_id in client.list_items(library_id)]
    assert {item.name: item.id for item in found} == {name: item["id"] for name, item in published.items()}
    assert len(found) == 3
    assert not any(item.description.startswith(UNFINISHED[:20]) for item in found)


def destroyed(stack: Stack, simulator) -> None:
    stack.destroy()
    with direct_client(simulator) as client:
        assert client.find_libraries("dev-images") == []


def test_a_second_up_while_one_runs_is_refused_at_once_naming_the_holder(simulator, samples, postgres, tmp_path):
    with fault_proxy(simulator.server, simulator.ca_file, simulator.ca_file.with_name("key.pem"), slow_put=4) as proxy:
        stack, url = postgres_stack(tmp_path, postgres, dev_config(simulator, samples, server=proxy.server))
        command = [pulumi_binary(), "up", "--yes", "--skip-preview", "--non-interactive", "--stack", stack.name]
        first = subprocess.Popen(
            command, cwd=stack.project_dir, env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 120
        while not locks(postgres, url):  # the first holds the stack's lock
            assert first.poll() is None and time.monotonic() < deadline, "the first up never took the lock"
            time.sleep(0.1)
        second = stack.up(check=False)
        assert first.poll() is None  # refused while the first was still applying: at once, not after it
        output, _ = first.communicate(timeout=600)
        assert first.returncode == 0, output
        proxy.slow_put = 0
        assert second.returncode != 0
        assert LOCK_MESSAGE in second.output and "pulumi cancel" in second.output
        assert f"(pid {first.pid})" in second.output  # the holder: user@host (pid N) at <time>
        assert postgres.password not in second.output  # the CLI masks the URL's user; the password is never in it
        assert locks(postgres, url) == []  # the first released its lock
        history = json.loads(stack.run("stack", "history", "--json").stdout)
        assert [(update["kind"], update["result"]) for update in history] == [("update", "succeeded")]  # applied once
        published_once(stack, simulator)
        stack.preview("--expect-no-changes")
        destroyed(stack, simulator)


def test_a_killed_up_leaves_its_lock_until_cancel_then_up_converges(simulator, samples, postgres, tmp_path):
    stack, url = postgres_stack(tmp_path, postgres, dev_config(simulator, samples))
    killed_up(stack, lambda out: "ContentLibraryItem" in out and "created" in out.split("ContentLibraryItem", 1)[1])
    assert len(locks(postgres, url)) == 1  # no lease: the killed run's lock stays
    blocked = stack.up(check=False)
    assert blocked.returncode != 0
    assert LOCK_MESSAGE in blocked.output and "delete the lock file with `pulumi cancel`" in blocked.output
    stack.run("cancel", "--yes")
    assert locks(postgres, url) == []
    stack.up()
    published_once(stack, simulator)
    refreshed = stack.run("refresh", "--yes", "--skip-preview", "--clear-pending-creates", check=False)
    assert refreshed.returncode == 0, refreshed.output
    stack.preview("--expect-no-changes")
    destroyed(stack, simulator)


def test_the_rows_hold_no_secret_and_the_state_moves_by_export_and_import(simulator, samples, postgres, tmp_path):
    """A secret source (a path with a marker in it), the vCenter password, the secrets passphrase and
    the database's own password: none is in any row, decoded as the CLI wrote it. Then the state goes
    out to a file:// backend and back into another table, and each copy previews no change."""
    folder = samples.parent / "s3cret-f0lder"
    folder.mkdir(exist_ok=True)
    (folder / "tools-sample.iso").write_bytes((samples / "tools-sample.iso").read_bytes())
    config = dev_config(simulator, samples)
    stack, url = postgres_stack(tmp_path / "a", postgres, config)
    index = next(i for i, image in enumerate(config["vmimage:images"]) if image["displayName"] == "tools-sample")
    secret_source = str(folder / "tools-sample.iso")
    stack.run("config", "set", "--secret", "--path", f"vmimage:images[{index}].source", secret_source)
    stack.up()
    rows = postgres.rows(url)
    assert any(key.endswith("/dev.json") for key in rows)  # the checkpoint is there, decoded
    for key, blob in rows.items():
        text = blob.decode("utf-8", "replace")
        for secret in ("s3cret-f0lder", PASSWORD, PASSPHRASE, postgres.password):
            assert secret not in text, (key, secret)
    exported = tmp_path / "dev.json"
    stack.run("stack", "export", "--file", str(exported))
    resources = json.loads(stack.run("stack", "export", "--show-secrets").stdout)["deployment"]["resources"]

    # Out to a single user's file:// backend, and into another table of the server.
    for backend, env in ((f"file://{tmp_path / 'file-state'}", {}), postgres.backend()):
        (tmp_path / "file-state").mkdir(exist_ok=True)
        workdir = tmp_path / f"copy-{len(list(tmp_path.glob('copy-*')))}"
        copy = Stack(workdir, name="dev", env={"PULUMI_BACKEND_URL": backend, **env})
        copy.config_file.write_text(stack.config_file.read_text())  # the same config, salt and ciphertexts included
        copy.run("stack", "import", "--file", str(exported))
        again = json.loads(copy.run("stack", "export", "--show-secrets").stdout)  # ciphertexts are made anew
        assert again["deployment"]["resources"] == resources
        copy.preview("--expect-no-changes")
    destroyed(stack, simulator)
