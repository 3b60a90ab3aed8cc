"""`pulumi up` killed (SIGKILL, the CLI and every plugin it started, as an OOM kill or a CI
timeout does) at three moments, then `pulumi cancel` where the lock stayed and `pulumi up`
again: the stack converges with no orphan item, no duplicate and no lost object, `pulumi
refresh` agrees, and `destroy` leaves nothing behind.

The moments: mid-upload (a transfer slowed by a proxy), between an item and its image object
(the item recorded, its object not yet applied), mid-apply (the object in the cluster, the
resource not yet recorded), and after items were published that the state never recorded
(PULUMI_SKIP_CHECKPOINTS). Each runs on a fresh stack, the real CLI, simulator and API server:
a first run, whose stack instance (providers/instance.py) the engine records before any item.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from providers.library_item import UNFINISHED
from tests.devcluster import Cluster, start_cluster
from tests.proxy import fault_proxy
from tests.pulumi_cli import Stack, pulumi_binary
from tests.test_engine import dev_config, items
from tests.test_providers import PASSWORD, direct_client, vsphere_config
from vmimage.declaration import unmarked
from vmimage.descriptor.samples import SampleImage, write_ova
from vmimage.vsphere.inventory import find_datastore_id
from vmimage.vsphere.publish import upload_source
from vmimage.vsphere.settings import resolve_settings

pytestmark = pytest.mark.vcsim


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("interrupted-cluster"), ("dev",))
    try:
        yield running
    finally:
        running.stop()


def stack_config(simulator, samples: Path, cluster: Cluster, server: str | None = None) -> dict:
    config = dev_config(simulator, samples, server=server)
    config["vmimage:images"].append(
        {"displayName": "big-sample", "source": str(samples / "big-sample.ova"), "library": "dev-images"}
    )
    config["vmimage:kubernetes"] = {"kubeconfig": str(cluster.kubeconfig), "installCrds": True}
    return config


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (the CLI starts each plugin in a process group of its own)."""
    children = _children()
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def children(pid: int) -> list[int]:
    """The processes ``pid`` started itself (the CLI's: the language host and the plugins)."""
    return _children().get(pid, [])


def killed_up(
    stack: Stack,
    when: Callable[[str], bool],
    timeout: float = 300,
    args: tuple[str, ...] = (),
    victims: Callable[[int], list[int]] = descendants,
) -> str:
    """Run `pulumi up [ARGS]` and SIGKILL it and every process under it (the language host, the
    program, the provider hosts) as soon as ``when`` is true of the output so far (checked on every
    line and every 20 ms), as a CI job's timeout or an OOM kill of its container does. Returns the output.
    ``victims``: which processes under the CLI die with it (``children``: those it started itself)."""
    command = [pulumi_binary(), "up", "--yes", "--skip-preview", "--non-interactive", "--stack", stack.name, *args]
    process = subprocess.Popen(
        command,
        cwd=stack.project_dir,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while not when("".join(lines)):
            assert process.poll() is None, "up ended before the moment came:\n" + "".join(lines)
            assert time.monotonic() < deadline, "the moment never came:\n" + "".join(lines)
            time.sleep(0.02)
    finally:
        for pid in [*victims(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        reader.join(5)
    return "".join(lines)


def recover(stack: Stack) -> None:
    """What the runbook says (docs/reference.md): cancel where the lock stayed, up again."""
    again = stack.up(check=False)
    if again.returncode != 0 and "locked" in again.output:
        stack.run("cancel", "--yes")
        again = stack.up(check=False)
    assert again.returncode == 0, again.output


def converged(stack: Stack, simulator, cluster: Cluster) -> None:
    """One finished item per image, one object per image, each applied by one vmimage owner;
    refresh changes nothing and the next preview expects none."""
    published = items(stack)
    assert set(published) == {"photon-5-sample", "ubuntu-24.04-sample", "tools-sample", "big-sample"}
    library_id = next(iter(stack.resources("dynamic/vmimage:ContentLibrary").values()))["id"]
    with direct_client(simulator) as client:
        found = {client.get_item(i).name: client.get_item(i) for i in client.list_items(library_id)}
        assert len(client.list_items(library_id)) == 4  # no duplicate, no orphan
        assert {name: item.id for name, item in found.items()} == {n: i["id"] for n, i in published.items()}
        assert not any(item.description.startswith(UNFINISHED[:20]) for item in found.values())
    listed = json.loads(cluster.kubectl("get", "vmi,cvmi", "-A", "-o", "json", "--show-managed-fields").stdout)
    objects = {o["metadata"]["name"]: o for o in listed["items"]}
    assert set(objects) == {i["vmi_id"] for i in published.values()}
    for obj in objects.values():
        owners = {e["manager"] for e in obj["metadata"]["managedFields"] if e["manager"].startswith("vmimage/")}
        assert len(owners) == 1, (obj["metadata"]["name"], owners)  # no second manager left by the killed run
    refreshed = stack.run("refresh", "--yes", "--skip-preview", "--clear-pending-creates", check=False)
    assert refreshed.returncode == 0, refreshed.output
    stack.preview("--expect-no-changes")


def destroyed(stack: Stack, simulator, cluster: Cluster) -> None:
    stack.destroy()
    with direct_client(simulator) as client:
        assert client.find_libraries("dev-images") == []
    listed = json.loads(cluster.kubectl("get", "vmi,cvmi", "-A", "-o", "json").stdout)
    assert listed["items"] == []  # nothing left behind by the killed run's owner


@pytest.fixture
def samples_with_big(samples: Path) -> Path:
    write_ova(samples / "big-sample.ova", SampleImage(name="big-sample"), disk_bytes=8 * 2**20)
    return samples


def new_stack(tmp_path: Path, config: dict) -> Stack:
    stack = Stack(tmp_path / "stack", name="dev-k8s")
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    return stack


def test_killed_mid_upload(simulator, cluster, samples_with_big, tmp_path):
    key = simulator.ca_file.with_name("key.pem")
    with fault_proxy(simulator.server, simulator.ca_file, key, slow_put=30) as proxy:
        stack = new_stack(tmp_path, stack_config(simulator, samples_with_big, cluster, server=proxy.server))
        killed_up(stack, lambda _: proxy.in_put > 0 and len(proxy.requests) > 0)
    with direct_client(simulator) as client:  # the killed run's item: marked unfinished
        libraries = client.find_libraries("dev-images")
        left = [client.get_item(i) for i in client.list_items(libraries[0])] if libraries else []
        assert all(item.description.startswith(UNFINISHED[:20]) for item in left), left
    stack.configure(stack_config(simulator, samples_with_big, cluster))
    recover(stack)
    converged(stack, simulator, cluster)
    destroyed(stack, simulator, cluster)


def test_killed_between_an_item_and_its_image_object(simulator, cluster, samples_with_big, tmp_path):
    stack = new_stack(tmp_path, stack_config(simulator, samples_with_big, cluster))
    output = killed_up(
        stack, lambda out: "ContentLibraryItem" in out and "created" in out.split("ContentLibraryItem", 1)[1]
    )
    assert "ContentLibraryItem" in output
    recover(stack)
    converged(stack, simulator, cluster)
    destroyed(stack, simulator, cluster)


def test_killed_mid_apply_to_the_cluster(simulator, cluster, samples_with_big, tmp_path):
    stack = new_stack(tmp_path, stack_config(simulator, samples_with_big, cluster))

    def an_object_is_in_the_cluster(_: str) -> bool:
        done = cluster.kubectl("get", "cvmi", "-o", "name", check=False)
        return done.returncode == 0 and bool(done.stdout.strip())

    killed_up(stack, an_object_is_in_the_cluster)
    recover(stack)
    converged(stack, simulator, cluster)
    destroyed(stack, simulator, cluster)


def record_instance_first(stack: Stack) -> None:
    """A new stack's first run with PULUMI_SKIP_CHECKPOINTS is refused, saying what to run: the
    salt it made would be lost with it if it were killed. That command records the instance alone."""
    refused = stack.up(check=False)
    command = "PULUMI_SKIP_CHECKPOINTS= pulumi up --target '**::catalog' --target '**::catalog-instance'"
    assert refused.returncode != 0 and command in refused.output, refused.output
    assert stack.resources("StackInstance") == {} and stack.resources("ContentLibraryItem") == {}
    targets = ("--target", "**::catalog", "--target", "**::catalog-instance")
    stack.run("up", "--yes", "--skip-preview", *targets, env={"PULUMI_SKIP_CHECKPOINTS": ""})
    assert len(stack.resources("StackInstance")) == 1 and stack.resources("ContentLibraryItem") == {}


def test_a_run_killed_before_pulumi_recorded_its_items_takes_them_back_on_the_next_up(
    simulator, cluster, samples_with_big, tmp_path
):
    """The moment no checkpoint shows: items finished in vCenter that no state knows. With
    PULUMI_SKIP_CHECKPOINTS nothing of a run is recorded until it ends, so a kill once the first
    item is published (one step at a time, each upload slowed) leaves it finished, the next one
    half-uploaded, and the state without either. The next `up` takes the finished one back (same
    UUID, so the same VMI ID) and removes the unfinished one: both carry this stack instance's
    token, which the killed run found in the state."""
    key = simulator.ca_file.with_name("key.pem")
    with fault_proxy(simulator.server, simulator.ca_file, key, slow_put=2) as proxy:
        stack = Stack(tmp_path / "stack", name="dev-k8s", env={"PULUMI_SKIP_CHECKPOINTS": "true"})
        config = stack_config(simulator, samples_with_big, cluster, server=proxy.server)
        stack.configure({**config, "vmimage:images": []}, secrets={"vsphere:password": PASSWORD})
        record_instance_first(stack)
        stack.up()  # the library (a library made by a killed run would stay unrecorded, and block the next up)
        stack.configure(config)
        output = killed_up(stack, lambda out: "published '" in out, args=("--parallel", "1"))
    name, leftover = re.search(r"published '([^']+)' as item ([0-9a-f-]{36})", output).groups()  # type: ignore[union-attr]
    assert stack.resources("ContentLibraryItem") == {}  # the risk: vCenter has it, the state does not
    with direct_client(simulator) as client:
        (library,) = client.find_libraries("dev-images")
        left = {item.id: unmarked(item.description) for item in map(client.get_item, client.list_items(library))}
    text, token = left[leftover]
    assert text == "" and token  # finished, with its declaration's token
    stack.configure(stack_config(simulator, samples_with_big, cluster))
    again = stack.up(check=False)
    if again.returncode != 0 and "locked" in again.output:
        stack.run("cancel", "--yes")
        again = stack.up(check=False)
    assert again.returncode == 0, again.output
    assert f"taking back item {leftover} ({name!r})" in again.output
    assert items(stack)[name]["id"] == leftover
    for item_id, (text, _) in left.items():  # what the killed run was still uploading: its own, removed
        if item_id != leftover:
            assert text == UNFINISHED and f"removing item {item_id}" in again.output
    converged(stack, simulator, cluster)
    destroyed(stack, simulator, cluster)


def test_a_first_sync_with_checkpoints_skipped_killed_midway_converges_on_the_next_up(
    simulator, cluster, samples, tmp_path
):
    """PULUMI_SKIP_CHECKPOINTS=true (docs/benchmarks.md: for a large first sync) writes the state once,
    at the end: a run killed midway leaves a state that knows nothing of what it applied. For a
    synced library that costs nothing but time: the next `up` applies each image object again as the
    same owner (its declaration's field manager, from the stack instance recorded first), and no
    second owner or orphan is left."""
    settings = resolve_settings({**vsphere_config(simulator), "vsphere:password": PASSWORD}, {})
    with direct_client(simulator) as client:
        library = client.create_library("vendor-sync", find_datastore_id(settings, "LocalDS_0"))
        for index in range(6):
            item_id = client.create_item(library, f"vendor-{index}", "", "OVF")
            upload_source(client, item_id, str(samples / "photon-5-sample.ova"))
    stack = Stack(tmp_path / "stack", name="sync", env={"PULUMI_SKIP_CHECKPOINTS": "true"})
    stack.configure(
        {
            **{k: v for k, v in dev_config(simulator, samples).items() if k.startswith("vsphere:")},
            "vmimage:libraries": [{"name": "vendor-sync", "existing": True}],
            "vmimage:images": [],
            "vmimage:sync": [{"library": "vendor-sync", "scope": "cluster"}],
            "vmimage:kubernetes": {"kubeconfig": str(cluster.kubeconfig), "installCrds": True},
        },
        secrets={"vsphere:password": PASSWORD},
    )
    record_instance_first(stack)

    def an_image_is_published(output: str) -> bool:  # the provider says so as each create ends
        return "info: ClusterVirtualMachineImage vmi-" in output

    # two at a time, so that the kill lands midway (six creates end within one poll of the cluster)
    killed_up(stack, an_image_is_published, args=("--parallel", "2"))
    midway = cluster.kubectl("get", "cvmi", "-o", "name").stdout.count("\n")
    assert 0 < midway < 6, f"the kill was to land midway; {midway} of 6 objects were applied"
    assert stack.resources("ClusterVirtualMachineImage") == {}  # nothing recorded: the risk
    recover(stack)
    recorded = stack.resources("ClusterVirtualMachineImage")
    assert len(recorded) == 6
    # no attribute sidecar beside any checkpoint (metadata=skip): written in place, a kill could
    # leave one empty and the stack unreadable ("failed to load checkpoint: EOF")
    assert not list((tmp_path / "stack" / "state").rglob("*.attrs"))
    assert list((tmp_path / "stack" / "state").rglob("sync.json"))
    listed = json.loads(cluster.kubectl("get", "cvmi", "-o", "json", "--show-managed-fields").stdout)
    assert {o["metadata"]["name"] for o in listed["items"]} == {r["id"] for r in recorded.values()}
    for obj in listed["items"]:
        owners = {e["manager"] for e in obj["metadata"]["managedFields"] if e["manager"].startswith("vmimage/")}
        assert len(owners) == 1, (obj["metadata"]["name"], owners)
    stack.preview("--expect-no-changes")
    stack.destroy()
    assert json.loads(cluster.kubectl("get", "cvmi", "-o", "json").stdout)["items"] == []
