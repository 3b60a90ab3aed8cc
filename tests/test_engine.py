"""The dev stack through the real engine: `pulumi preview`, `up`, `refresh`, `import`, `destroy`.

The Pulumi CLI and its Python language host (scripts/toolchain) run the repository's program
against this module's own vCenter simulator, as a platform team would over a few days. The
tests run in order and share one stack: each step starts from what the previous one left.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from providers.library_item import ContentLibraryItemProvider
from tests.engine import provider_host
from tests.proxy import cutting_proxy
from tests.pulumi_cli import ROOT, Stack
from tests.test_providers import ITEM, PASSWORD, direct_client, vsphere_config
from tests.vcsim import Simulator
from vmimage.contract.ids import vmi_id
from vmimage.descriptor.samples import SampleImage, write_iso, write_ova
from vmimage.vsphere.inventory import find_datastore_id
from vmimage.vsphere.rest import NotFoundError
from vmimage.vsphere.settings import resolve_settings

pytestmark = pytest.mark.vcsim

ITEM_TYPE = "dynamic/vmimage:ContentLibraryItem"


def dev_config(simulator: Simulator, samples: Path, server: str | None = None, extra_images=()) -> dict[str, Any]:
    """stacks/Pulumi.dev.yaml, pointed at this module's simulator and samples."""
    config = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    images = [*config["vmimage:images"], *extra_images]
    for image in images:
        image["source"] = str(samples / Path(image["source"]).name)
    return {
        **config,
        "vsphere:vsphereServer": server or simulator.server,
        "vsphere:caFile": str(simulator.ca_file),
        "vmimage:images": images,
    }


@pytest.fixture(scope="module")
def stack(simulator, samples, tmp_path_factory) -> Stack:
    stack = Stack(tmp_path_factory.mktemp("engine-stack"), name="dev")
    stack.configure(dev_config(simulator, samples), secrets={"vsphere:password": PASSWORD})
    return stack


def items(stack: Stack) -> dict[str, dict[str, Any]]:
    """The stack's library items by display name: the state's outputs, with the resource ID."""
    found = {}
    for resource in stack.resources(ITEM_TYPE).values():
        found[resource["outputs"]["name"]] = {**resource["outputs"], "id": resource["id"]}
    return found


def vmimage_id(item_id: str) -> str:
    """What `vmimage id` prints for an item, as a user would ask it."""
    done = subprocess.run([str(ROOT / "venv" / "bin" / "vmimage"), "id", item_id], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_preview_shows_readable_creates_and_no_secret(stack):
    preview = stack.preview()
    assert "pulumi-python:dynamic/vmimage:ContentLibraryItem: (create)" in preview.stdout
    assert 'name       : "photon-5-sample"' in preview.stdout
    assert "+ 12 to create" in preview.stdout  # stack, catalog, its instance, library, 3 items, 3 images, 2 guards
    assert "vmimage:StackInstance: (create)" in preview.stdout and "__instance" not in preview.output  # internal
    assert PASSWORD not in preview.output
    config_text = stack.config_file.read_text()
    assert PASSWORD not in config_text and "secure:" in config_text


def test_up_publishes_and_ids_match_vmimage_id(stack, simulator):
    result = stack.up()
    assert "+ 12 created" in result.stdout
    # no cluster in this stack: the image objects are in the state only, and the create lines say so
    assert "info: VirtualMachineImage vmi-" in result.stdout
    creates = [line for line in result.stdout.splitlines() if "VirtualMachineImage vmi-" in line]
    assert len(creates) == 6 and all(line.rstrip().endswith("): state only: no cluster configured") for line in creates)
    assert PASSWORD not in result.output
    published = items(stack)
    assert set(published) == {"photon-5-sample", "ubuntu-24.04-sample", "tools-sample"}
    outputs = stack.outputs()
    for name, item in published.items():
        (placement,) = outputs["images"][name]
        assert placement["vmi_id"] == vmimage_id(item["id"]) == vmi_id(item["id"])
    assert outputs["images"]["ubuntu-24.04-sample"][0]["namespace"] == "dev"
    with direct_client(simulator) as client:
        assert client.get_item(published["photon-5-sample"]["id"]).name == "photon-5-sample"
    state = stack.run("stack", "export", "--stack", stack.name).stdout
    assert PASSWORD not in state


def test_second_preview_expects_no_changes_even_after_touch(stack, samples):
    stack.preview("--expect-no-changes")
    for path in samples.iterdir():  # same bytes, new mtime: a fresh checkout or a re-download
        os.utime(path)
    result = stack.preview("--expect-no-changes")
    assert "12 unchanged" in result.stdout


def test_changed_source_updates_the_item_in_place(stack, samples, simulator):
    before = items(stack)["photon-5-sample"]
    write_ova(
        samples / "photon-5-sample.ova",
        SampleImage(name="photon-5-sample", version="5.1", full_version="5.1.0", hardware_version=20),
    )
    steps = stack.preview_steps()
    changed = {name: op for name, op in steps.items() if op != "same"}
    assert sorted(changed.values()) == ["update", "update"], changed  # the item and its image, no replace
    assert any(name.startswith("catalog-item-dev-images-photon") for name in changed)
    stack.up()
    after = items(stack)["photon-5-sample"]
    assert after["id"] == before["id"] and after["vmi_id"] == before["vmi_id"]
    assert after["image"]["productInfo"]["version"] == "5.1"
    # The content version is vCenter's: a real one moves it on; govmomi's simulator keeps every item
    # at "1" (its update session has a TODO there), and the image follows the content regardless.
    (image,) = [
        r["outputs"]
        for r in stack.resources("dynamic/vmimage:ClusterVirtualMachineImage").values()
        if r["outputs"]["display_name"] == "photon-5-sample"
    ]
    assert image["status"]["productInfo"]["version"] == "5.1" and image["status"]["hardwareVersion"] == 20
    assert image["status"]["providerContentVersion"] == after["content_version"]
    assert stack.outputs()["images"]["photon-5-sample"][0]["vmi_id"] == before["vmi_id"]
    stack.preview("--expect-no-changes")


def test_refresh_notices_an_item_deleted_out_of_band_and_up_recreates_it(stack, simulator):
    gone = items(stack)["tools-sample"]
    with direct_client(simulator) as client:
        assert client.delete_item(gone["id"])
    refreshed = stack.refresh()
    assert "deleted" in refreshed.stdout
    assert "tools-sample" not in items(stack)
    steps = stack.preview_steps()
    assert steps[next(name for name in steps if "tools-sample" in name and "item" in name)] == "create"
    stack.up()
    recreated = items(stack)["tools-sample"]
    assert recreated["id"] != gone["id"]
    with direct_client(simulator) as client:
        assert client.get_item(recreated["id"]).name == "tools-sample"
    stack.preview("--expect-no-changes")


def test_pulumi_import_of_a_dynamic_item_is_refused_by_the_engine(stack, simulator):
    """Pins the engine's behaviour (pulumi/pulumi#16175): ImportStep calls Read with the ID
    alone, and the Python host finds a dynamic provider only in state or inputs."""
    item_id = items(stack)["photon-5-sample"]["id"]
    result = stack.run("import", "--yes", f"pulumi-python:{ITEM_TYPE}", "imported-photon", item_id, check=False)
    assert result.returncode != 0 and "__provider" in result.output
    assert "imported-photon" not in stack.resources(ITEM_TYPE)
    with direct_client(simulator) as client:  # a failed import leaves the item alone
        assert client.get_item(item_id).name == "photon-5-sample"
    stack.preview("--expect-no-changes")


def test_a_connection_cut_mid_upload_fails_cleanly_and_the_next_up_converges(stack, simulator, samples):
    big = SampleImage(name="big-sample")
    write_ova(samples / "big-sample.ova", big, disk_bytes=24 * 2**20)
    extra = [{"displayName": "big-sample", "source": "big-sample.ova", "library": "dev-images", "scope": "cluster"}]
    with cutting_proxy((simulator.host, simulator.port), cut_after=6 * 2**20) as proxy:
        stack.configure(dev_config(simulator, samples, server=proxy.server, extra_images=extra))
        failed = stack.up(check=False)
    assert failed.returncode != 0, failed.output
    assert "Traceback" not in failed.output, failed.output
    errors = [line.strip() for line in failed.stdout.splitlines() if line.strip().startswith("error: vCenter")]
    assert errors, failed.output
    assert "big-sample" not in items(stack)
    with direct_client(simulator) as client:
        library_id = next(iter(stack.resources("dynamic/vmimage:ContentLibrary").values()))["id"]
        assert client.find_items(library_id, "big-sample") == []  # nothing half-made stays behind

    stack.configure(dev_config(simulator, samples, extra_images=extra))
    stack.up()
    assert "big-sample" in items(stack)
    stack.preview("--expect-no-changes")


def renamed(config: dict[str, Any], library: str, images: dict[str, str]) -> dict[str, Any]:
    """``config`` with its one library renamed to ``library`` and images renamed (old → new), each
    naming what it was called (renamedFrom), and the images listed in the reverse order."""
    (entry,) = config["vmimage:libraries"]
    old_library = entry["name"]
    config["vmimage:libraries"] = [{**entry, "name": library, "renamedFrom": [old_library]}]
    moved = []
    for image in reversed(config["vmimage:images"]):
        new_name = images.get(image["displayName"], image["displayName"])
        former = [image["displayName"]] if new_name != image["displayName"] else []
        moved.append(
            {**image, "displayName": new_name, "library": library, **({"renamedFrom": former} if former else {})}
        )
    config["vmimage:images"] = moved
    return config


def test_renaming_an_image_or_its_library_updates_them_in_place(stack, simulator, samples):
    """The layout a stack was deployed with, then a rename of the library and of an image (and the
    entries reordered): the preview shows updates only, and the item keeps its UUID and VMI ID."""
    extra = [{"displayName": "big-sample", "source": "big-sample.ova", "library": "dev-images", "scope": "cluster"}]
    before = items(stack)
    library_id = next(iter(stack.resources("dynamic/vmimage:ContentLibrary").values()))["id"]
    config = renamed(dev_config(simulator, samples, extra_images=extra), "dev-catalog", {"photon-5-sample": "Photon 5"})
    stack.configure(config)
    steps = stack.preview_steps()
    assert set(steps.values()) <= {"same", "update"}, steps
    assert list(steps.values()).count("update") == 3, steps  # the library, the item and its image: their names
    stack.up()
    after = items(stack)
    assert set(after) == {"Photon 5", "ubuntu-24.04-sample", "tools-sample", "big-sample"}
    assert after["Photon 5"]["id"] == before["photon-5-sample"]["id"]
    assert after["Photon 5"]["vmi_id"] == before["photon-5-sample"]["vmi_id"]
    assert {n: i["id"] for n, i in after.items() if n != "Photon 5"} == {
        n: i["id"] for n, i in before.items() if n != "photon-5-sample"
    }
    with direct_client(simulator) as client:
        assert client.get_library(library_id).name == "dev-catalog"
        assert client.get_item(after["Photon 5"]["id"]).name == "Photon 5"
    assert stack.outputs()["images"]["Photon 5"][0]["vmi_id"] == before["photon-5-sample"]["vmi_id"]
    stack.preview("--expect-no-changes")
    back = renamed(dev_config(simulator, samples, extra_images=extra), "dev-images", {})  # and back again
    back["vmimage:libraries"][0]["renamedFrom"] = ["dev-catalog"]
    for image in back["vmimage:images"]:
        if image["displayName"] == "photon-5-sample":
            image["renamedFrom"] = ["Photon 5"]
    stack.configure(back)
    assert set(stack.preview_steps().values()) <= {"same", "update"}
    stack.up()
    assert {n: i["id"] for n, i in items(stack).items()} == {n: i["id"] for n, i in before.items()}


def test_destroy_leaves_nothing_in_vcenter(stack, simulator):
    library_id = next(iter(stack.resources("dynamic/vmimage:ContentLibrary").values()))["id"]
    item_ids = [item["id"] for item in items(stack).values()]
    stack.destroy()
    assert stack.resources() == {} or set(stack.resources()) <= {"vmimage-dev"}
    with direct_client(simulator) as client:
        assert client.find_libraries("dev-images") == []
        for item_id in item_ids:
            with pytest.raises(NotFoundError):
                client.get_item(item_id)
    assert library_id


def test_outputs_are_plain_json(stack):
    """After destroy the stack has no outputs left; `stack output --json` still answers JSON."""
    assert json.loads(stack.run("stack", "output", "--json", "--stack", stack.name).stdout) == {}


def test_the_import_resource_option_on_an_existing_item(simulator, samples, tmp_path):
    """Pins what the engine does with `ResourceOptions(import_=...)` on a dynamic resource: as with
    `pulumi import`, its ImportStep reads with the ID alone and the SDK's host finds no provider.
    `adopt_id` is the way to take an item over; the day this passes through, this test says so."""
    with direct_client(simulator) as client:
        settings = resolve_settings({**vsphere_config(simulator), "vsphere:password": PASSWORD}, {})
        library_id = client.create_library("import-option", find_datastore_id(settings, "LocalDS_0"))
    with provider_host(vsphere_config(simulator)) as host:
        existing = host.up(
            ITEM,
            ContentLibraryItemProvider(),
            {"library_id": library_id, "name": "to-import", "source": str(samples / "photon-5-sample.ova")},
        )
    stack = Stack(tmp_path, name="import-option", program=ROOT / "tests" / "projects" / "import_item")
    stack.configure(
        {
            "vsphere:vsphereServer": simulator.server,
            "vsphere:user": "user",
            "vsphere:caFile": str(simulator.ca_file),
            "test:libraryId": library_id,
            "test:name": "to-import",
            "test:source": str(samples / "photon-5-sample.ova"),
            "test:itemId": existing.id,
        },
        secrets={"vsphere:password": PASSWORD},
    )
    result = stack.up(check=False)
    assert result.returncode != 0
    assert "importing failed" in result.stdout and "KeyError: '__provider'" in result.stdout
    assert stack.resources(ITEM_TYPE) == {}
    with direct_client(simulator) as client:  # the item is left as it was
        assert client.get_item(existing.id).name == "to-import"


def test_a_secret_source_url_never_reaches_the_state_the_output_or_a_message(stack, simulator, samples, tmp_path):
    """Through the real engine: a source URL set as secret config (`--secret --path`), with
    credentials, a signed query and a token in its path, stays a secret everywhere: preview,
    up, a no-change preview, the exported state, the fingerprint, and a failed upload's error."""
    import functools
    import http.server
    import ssl
    import threading

    (tmp_path / "PaTh-t0ken").mkdir()
    write_iso(tmp_path / "PaTh-t0ken" / "tools.iso")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(simulator.ca_file, simulator.ca_file.with_name("key.pem"))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"https://puller:Pa55-in-url@127.0.0.1:{server.server_address[1]}/PaTh-t0ken"
    url = f"{base}/tools.iso?sig=s1gn4ture"
    config = dev_config(simulator, samples)
    config["vmimage:images"] = [
        {"displayName": "pulled-tools", "source": "set below", "library": "dev-images", "scope": "cluster"}
    ]
    try:
        stack.configure(config)
        stack.run("config", "set", "--secret", "--path", "vmimage:images[0].source", url)
        outputs = [stack.preview(), stack.up(), stack.preview("--expect-no-changes")]
        state = stack.run("stack", "export", "--stack", stack.name).stdout
        stack.run("config", "set", "--secret", "--path", "vmimage:images[0].source", f"{base}/gone.iso?sig=x")
        refused = stack.up(check=False)  # an upload that fails: vCenter cannot fetch the URL
    finally:
        server.shutdown()
    assert refused.returncode != 0 and "[secret source]" in refused.output
    for text in [*(result.output for result in outputs), state, refused.output]:
        assert "Pa55-in-url" not in text and "s1gn4ture" not in text and "PaTh-t0ken" not in text
    (item,) = items(stack).values()
    assert item["name"] == "pulled-tools" and item["fingerprint"].startswith("url-sha256:")
    stack.destroy()


def test_a_no_change_preview_asks_vcenter_only_for_the_programs_login(simulator, samples, tmp_path):
    """Check and diff work from the state (issue 19): a no-change preview of the dev stack (no
    synced library, so the program lists nothing) sends vCenter the program's login and its logout,
    which check the credentials and that vCenter answers (issue 25), and nothing else: the
    libraries are in the state, so none is looked up."""
    config = dev_config(simulator, samples)
    config["vmimage:libraries"] = [{**config["vmimage:libraries"][0], "name": "quiet-images"}]
    config["vmimage:images"] = [{**image, "library": "quiet-images"} for image in config["vmimage:images"]]
    stack = Stack(tmp_path / "quiet", name="dev")
    stack.configure(config, secrets={"vsphere:password": PASSWORD})
    simulator.requests.take()
    stack.up()
    assert simulator.requests.take()  # the up's requests are in the simulator's log
    stack.preview("--expect-no-changes")
    # /api first; the simulator has only /rest (a vCenter 7.0U2 or later answers the first POST)
    login = {"POST /api/session": 1, "POST /rest/com/vmware/cis/session": 1, "DELETE /rest/com/vmware/cis/session": 1}
    assert simulator.requests.take() == login
    # a library to create (not in the state) is one lookup more, from its check in the provider host
    config["vmimage:libraries"] = [*config["vmimage:libraries"], {"name": "quiet-new", "datastore": "LocalDS_0"}]
    stack.configure(config)
    stack.preview()
    asked = simulator.requests.take()
    assert asked.pop("POST /rest/com/vmware/content/library") == 1  # ?~action=find, by name
    assert asked == {key: 2 * count for key, count in login.items()}  # the program's and the provider host's
    stack.destroy()
