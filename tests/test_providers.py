"""The content library and item providers, driven through the engine protocol against vcsim."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from providers.common import is_unknown
from providers.content_library import ContentLibraryProvider
from providers.library_item import ContentLibraryItemProvider
from tests.engine import UNKNOWN, provider_host
from tests.helpers import inspect_file
from vmimage.contract.ids import vmi_id
from vmimage.contract.status import CONTRACT
from vmimage.descriptor.samples import SAMPLES, SampleImage, write_iso, write_ova, write_ovf
from vmimage.vsphere.content_library import ContentLibraryClient
from vmimage.vsphere.publish import upload_source
from vmimage.vsphere.rest import VapiSession
from vmimage.vsphere.settings import resolve_settings

pytestmark = pytest.mark.vcsim
PROVIDER_ENV = {"VMIMAGE_PROGRESS_INTERVAL": "0"}
LIBRARY_NAME = "providers-test"

LIBRARY = "pulumi-python:dynamic/vmimage:ContentLibrary"
ITEM = "pulumi-python:dynamic/vmimage:ContentLibraryItem"
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
PASSWORD = "s3cr3t-Pa55word!"


def vsphere_config(vcsim, password: str = PASSWORD, server: str | None = None) -> dict:
    return {
        "vsphere:vsphereServer": server or vcsim.server,
        "vsphere:user": "administrator@vsphere.local",
        "vsphere:password": {**SECRET_SIG, "value": password},  # secret config, as the engine sends it
        "vsphere:caFile": str(vcsim.ca_file),
        "vmimage:deletionProtection": "false",  # a sandbox, as the dev stack: the guard's own tests turn it on
    }


@pytest.fixture
def ova(tmp_path) -> Path:
    return write_ova(tmp_path / "photon.ova", SAMPLES[0], disk_bytes=3 * 2**20 + 5)


@contextmanager
def direct_client(vcsim) -> Iterator[ContentLibraryClient]:
    """A content library client of the test's own, for what a person would do in the vSphere Client."""
    config = {**vsphere_config(vcsim), "vsphere:password": PASSWORD}
    with VapiSession(resolve_settings(config, {})) as session:
        yield ContentLibraryClient(session)


def item_inputs(library, source: Path | str, name: str, **extra) -> dict:
    return {"library_id": library.id, "name": name, "source": str(source), **extra}


# --- libraries -----------------------------------------------------------------------------


def test_library_create_outputs_and_no_op(host, library):
    assert library.outputs["library_id"] == library.id
    assert library.outputs["type"] == "LOCAL"
    assert library.outputs["datastore_id"].startswith("datastore-")  # the datastore's managed object ID
    again = host.up(
        LIBRARY,
        ContentLibraryProvider(),
        {"name": "providers-test", "datastore": "LocalDS_0"},
        after=library,
    )
    assert again.op == "same"


def test_library_rename_is_in_place_and_datastore_replaces(host):
    created = host.up(LIBRARY, ContentLibraryProvider(), {"name": "lib-a", "datastore": "LocalDS_0"})
    renamed = host.up(
        LIBRARY,
        ContentLibraryProvider(),
        {"name": "lib-b", "datastore": "LocalDS_0", "description": "renamed"},
        after=created,
    )
    assert (renamed.op, renamed.id, renamed.outputs["name"]) == ("update", created.id, "lib-b")
    diff = host.diff(created.id, renamed.outputs, {**renamed.inputs, "datastore": "OtherDS"})
    assert diff.replaces == ["datastore"] and diff.delete_before_replace
    host.delete(created.id, renamed.outputs)
    assert host.read(created.id, renamed.outputs, renamed.inputs)[0] == ""
    host.delete(created.id, renamed.outputs)  # already gone counts as done


def test_a_library_holding_items_the_stack_does_not_manage_is_left_in_vcenter(host, vcsim, tmp_path):
    """Its own items go first (the engine deletes them before their library); what is left is
    someone else's, so the library stays, with a warning, unless force_destroy allows it."""
    created = host.up(LIBRARY, ContentLibraryProvider(), {"name": "shared-lib", "datastore": "LocalDS_0"})
    with direct_client(vcsim) as client:  # a colleague's upload, in the vSphere Client
        theirs = client.create_item(created.id, "hand-made", "", "OVF")
    since = len(host.stderr)
    host.delete(created.id, created.outputs)
    with direct_client(vcsim) as client:
        assert client.get_library(created.id).name == "shared-lib"
        assert client.list_items(created.id) == [theirs]
    warning = host.wait_for_log("left content library 'shared-lib'", since)
    assert "1 item(s) this stack does not manage ('hand-made')" in warning and "forceDestroy" in warning
    allowed = host.up(
        LIBRARY, ContentLibraryProvider(), {"name": "shared-lib", "datastore": "LocalDS_0", "force_destroy": True},
        state={**created.outputs, "__id": created.id}, old_inputs=created.inputs,
    )  # fmt: skip
    assert allowed.op == "update" and allowed.outputs["force_destroy"] is True
    host.delete(created.id, allowed.outputs)
    assert host.read(created.id, allowed.outputs, allowed.inputs)[0] == ""


def test_library_name_taken_fails_the_check_and_the_create(host, library):
    """A library to create (no olds) whose name vCenter holds fails its check, which runs in the
    preview, naming the library and `existing: true`; create asks again (a name taken in between)."""
    inputs = {"name": "providers-test", "datastore": "LocalDS_0"}
    step = host.up(LIBRARY, ContentLibraryProvider(), inputs)
    assert step.op == "failed"
    ((key, reason),) = step.checked.failures
    assert key == "name" and reason.startswith("library 'providers-test': vCenter ")
    assert f"already has a library with this name ({library.id})" in reason and "`existing: true`" in reason
    own = host.check(LIBRARY, ContentLibraryProvider(), library.inputs, inputs)  # the state's own library
    assert own.failures == []
    with pytest.raises(grpc.RpcError) as caught:
        host.create(own.inputs)
    assert "already has a library with this name" in caught.value.details()
    assert "Traceback" not in caught.value.details()


def test_the_library_name_check_is_an_answer_or_a_failure(vcsim):
    """vCenter unreachable: the check fails naming the server, never reads it as a free name; a
    name not known yet is asked at `up`; VMIMAGE_OFFLINE=1 skips the question (the program warns)."""
    inputs = {"name": "anything", "datastore": "LocalDS_0"}
    with provider_host(vsphere_config(vcsim, server="127.0.0.1:9"), env={"VMIMAGE_HTTP_ATTEMPTS": "1"}) as down:
        ((key, reason),) = down.check(LIBRARY, ContentLibraryProvider(), {}, inputs).failures
        assert key == "name" and "cannot ask vCenter whether the name is free: vCenter 127.0.0.1:9:" in reason
        assert PASSWORD not in reason
        unknown = down.check(LIBRARY, ContentLibraryProvider(), {}, {**inputs, "name": UNKNOWN})  # known at `up`
        assert unknown.failures == []
    with provider_host(vsphere_config(vcsim, server="127.0.0.1:9"), env={"VMIMAGE_OFFLINE": "1"}) as offline:
        assert offline.check(LIBRARY, ContentLibraryProvider(), {}, inputs).failures == []


def test_unknown_datastore_names_what_exists(host):
    with pytest.raises(grpc.RpcError) as caught:
        host.up(LIBRARY, ContentLibraryProvider(), {"name": "nowhere", "datastore": "NoSuchDS"})
    assert "no datastore named 'NoSuchDS' (found: LocalDS_0)" in caught.value.details()


# --- items ---------------------------------------------------------------------------------


def test_item_create_publishes_the_ova(host, library, ova):
    step = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-create"))
    assert step.op == "create"
    outputs = step.outputs
    assert outputs["item_id"] == step.id
    assert outputs["vmi_id"] == vmi_id(step.id)
    assert outputs["content_version"] == "1"
    assert sorted(f["name"] for f in outputs["files"]) == ["photon-disk1.vmdk", "photon.mf", "photon.ovf"]
    # vCenter's sizes; govmomi's simulator stores a streamOptimized disk without its 1 KiB VMDK head
    assert {f["name"]: f["size"] for f in outputs["files"]}["photon-disk1.vmdk"] in (
        3 * 2**20 + 5,
        3 * 2**20 + 5 - 1024,
    )
    expected = inspect_file(ova, name="photon-create", item_id=step.id, content_version="1")["status"]
    image = outputs["image"]
    assert image["conditions"][0]["status"] == "True"
    assert {k: v for k, v in image.items() if k != "conditions"} == {
        k: v for k, v in expected.items() if k != "conditions"
    }
    host.wait_for_log("photon-create: ")
    assert any(re.search(r"photon-create: [\d.]+ MiB uploaded in \d+ s \([\d.]+ \w+/s\)", line) for line in host.stderr)


def test_no_op_diff_reads_nothing(host, library, ova):
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-noop"))
    again = host.up(
        ITEM,
        ContentLibraryItemProvider(),
        item_inputs(library, ova, "photon-noop"),
        after=created,
    )
    assert again.op == "same"
    # a different pickled provider string is not a change
    olds = {**created.outputs, "__provider": "something-else"}
    assert host.diff(created.id, olds, again.inputs).changes is False


def test_changed_source_updates_in_place_keeping_uuid_and_vmi_id(host, library, tmp_path, vcsim):
    source = write_ova(tmp_path / "img.ova", SAMPLES[0])
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, source, "photon-update"))
    newer = SampleImage(name="img", version="5.1", full_version="5.1.0", hardware_version=20)
    write_ova(source, newer, disk_bytes=8192)
    logged = len(host.stderr)
    step = host.up(
        ITEM,
        ContentLibraryItemProvider(),
        item_inputs(library, source, "photon-update"),
        after=created,
    )
    assert step.op == "update" and step.diff.replaces == []
    assert step.id == created.id
    assert step.outputs["vmi_id"] == created.outputs["vmi_id"]
    # vCenter's content version: a real one moves it on, govmomi's simulator keeps "1"
    with direct_client(vcsim) as client:
        assert step.outputs["content_version"] == client.get_item(step.id).content_version
    assert step.outputs["image"]["providerContentVersion"] == step.outputs["content_version"]
    assert step.outputs["image"]["productInfo"]["version"] == "5.1"
    assert step.outputs["image"]["hardwareVersion"] == 20
    assert "still holds" not in "".join(host.stderr[logged:])  # same file names: every file replaced


def test_a_new_package_with_other_file_names_on_the_simulator_leaves_the_item_unchanged(host, library, tmp_path):
    """A real vCenter removes the earlier files in the update session (tests/test_rest.py shows it
    against a fake that behaves like one); govmomi's simulator drops the whole session instead, and
    the update says so cleanly and changes nothing."""
    first = write_ova(tmp_path / "photon-5.0.ova", SAMPLES[0])
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, first, "photon-renamed-files"))
    second = write_ova(tmp_path / "photon-5.1.ova", SAMPLES[0])
    with pytest.raises(grpc.RpcError) as caught:
        host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, second, "photon-renamed-files"), after=created)
    details = caught.value.details()
    assert "vCenter dropped the update session when asked to remove" in details and "Traceback" not in details
    _, outputs, _ = host.read(created.id, created.outputs, created.inputs)
    assert sorted(f["name"] for f in outputs["files"]) == sorted(f["name"] for f in created.outputs["files"])


def test_rename_and_description_update_in_place(host, library, ova):
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-rename"))
    step = host.up(
        ITEM,
        ContentLibraryItemProvider(),
        item_inputs(library, ova, "photon-renamed", description="now described"),
        after=created,
    )
    assert (step.op, step.id) == ("update", created.id)
    assert step.outputs["name"] == "photon-renamed" and step.outputs["description"] == "now described"
    assert step.outputs["image"]["name"] == "photon-renamed"


def test_other_library_replaces(host, library, ova):
    other = host.up(LIBRARY, ContentLibraryProvider(), {"name": "providers-other", "datastore": "LocalDS_0"})
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-move"))
    step = host.up(
        ITEM,
        ContentLibraryItemProvider(),
        item_inputs(other, ova, "photon-move"),
        after=created,
    )
    assert step.op == "replace" and step.diff.replaces == ["library_id"]
    assert step.id != created.id
    assert host.read(created.id, created.outputs, created.inputs)[0] == ""


def test_refresh_notices_an_out_of_band_delete_and_up_recreates(host, library, ova):
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-oob"))
    host.delete(created.id, created.outputs)  # as someone deleting it in the vSphere Client
    assert host.read(created.id, created.outputs, created.inputs)[0] == ""
    again = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-oob"))
    assert again.op == "create" and again.id != created.id


def test_refresh_reports_out_of_band_rename(host, library, ova, vcsim):
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-drift"))
    with direct_client(vcsim) as client:
        client.update_item(created.id, "photon-drifted", "edited by hand")
    id_, outputs, inputs = host.read(created.id, created.outputs, created.inputs)
    assert id_ == created.id
    assert inputs["name"] == outputs["name"] == "photon-drifted"
    assert host.diff(created.id, outputs, created.inputs).changes is True  # the next up puts the name back


def test_reading_an_item_by_uuid_with_the_programs_inputs(host, library, ova):
    """A read resource (`opts=ResourceOptions(id=...)`): Read gets the id and the program's inputs."""
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-import"))
    program = item_inputs(library, ova, "photon-import")
    checked = host.check(ITEM, ContentLibraryItemProvider(), {}, program)
    # What the engine's ReadStep sends for a read resource: the program's inputs as the properties
    # (the pinned SDK finds the dynamic provider there, not in the request's inputs).
    id_, outputs, _ = host.read(created.id, checked.inputs, checked.inputs)
    assert id_ == created.id
    assert outputs["vmi_id"] == vmi_id(created.id)
    assert outputs["image"]["providerItemID"] == created.id
    assert host.diff(id_, outputs, checked.inputs).changes is False


def test_pulumi_import_reaches_no_dynamic_provider(host, library, ova):
    """`pulumi import` sends Read with the id alone: no state, no inputs, so the host cannot find
    the pickled provider (pulumi/pulumi#16175) and `adopt_id` is the way to take an item over.
    Pinned so that the day the SDK finds dynamic providers on import, this fails and says so."""
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-import-engine"))
    with pytest.raises(grpc.RpcError) as raised:
        host.read(created.id, {}, {})
    assert "__provider" in (raised.value.details() or "")


def test_delete_and_delete_again(host, library, ova):
    created = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-delete"))
    host.delete(created.id, created.outputs)
    host.delete(created.id, created.outputs)
    assert host.read(created.id, created.outputs, created.inputs)[0] == ""


def test_preview_with_unknown_inputs(host, ova):
    checked = host.check(
        ITEM, ContentLibraryItemProvider(), {}, {"library_id": UNKNOWN, "name": "photon-preview", "source": str(ova)}
    )
    assert checked.failures == []
    assert is_unknown(checked.inputs["library_id"])
    assert checked.inputs["fingerprint"].startswith("file:")
    olds = host.check(
        ITEM, ContentLibraryItemProvider(), {}, {"library_id": "x", "name": "photon-preview", "source": str(ova)}
    ).inputs
    diff = host.diff("some-id", olds, {**olds, "library_id": UNKNOWN})
    assert diff.changes and diff.replaces == ["library_id"]
    unknown_source = host.check(
        ITEM, ContentLibraryItemProvider(), {}, {"library_id": "x", "name": "p", "source": UNKNOWN}
    )
    assert unknown_source.failures == [] and is_unknown(unknown_source.inputs["fingerprint"])


def test_iso_and_ovf_sources(host, library, tmp_path):
    iso = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, write_iso(tmp_path / "tools.iso"), "tools"))
    assert iso.outputs["image"]["type"] == "ISO"
    assert [f["name"] for f in iso.outputs["files"]] == ["tools.iso"]
    package = tmp_path / "package"
    package.mkdir()
    ovf = write_ovf(package, SAMPLES[1], disk_bytes=70000)
    step = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, ovf, "ubuntu-ovf"))
    assert sorted(f["name"] for f in step.outputs["files"]) == [
        "ubuntu-24.04-sample-disk1.vmdk",
        "ubuntu-24.04-sample.mf",
        "ubuntu-24.04-sample.ovf",
    ]
    assert step.outputs["image"]["osInfo"]["type"] == "ubuntu64Guest"


# --- check ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "prop", "reason"),
    [
        (lambda d: {"source": str(d / "missing.ova")}, "source", "does not exist"),
        (lambda d: {"source": str(d / "x.vmdk")}, "source", "unknown extension"),
        (lambda d: {"name": ""}, "name", "non-empty"),
        (lambda d: {"sha256": "abc"}, "sha256", "64 hexadecimal digits"),
        (lambda d: {"source": "http://example.invalid/x.ova"}, "source", "https://"),
        (lambda d: {"source": str(_garbage_ova(d))}, "source", "unreadable"),
    ],
    ids=["missing", "extension", "empty-name", "sha256", "http", "garbage"],
)
def test_check_failures_name_the_property(host, tmp_path, ova, change, prop, reason):
    inputs = {"library_id": "lib", "name": "x", "source": str(ova), **change(tmp_path)}
    checked = host.check(ITEM, ContentLibraryItemProvider(), {}, inputs)
    assert [p for p, _ in checked.failures] == [prop]
    assert reason in checked.failures[0][1]


def _garbage_ova(directory: Path) -> Path:
    path = directory / "garbage.ova"
    path.write_bytes(b"not a tar" * 100)
    return path


def test_clean_error_shim_keeps_tracebacks_for_bugs():
    import traceback

    from providers.connection import _UserErrorsWithoutTraceback
    from vmimage.errors import ImageError

    shim = _UserErrorsWithoutTraceback(traceback)
    try:
        raise ImageError("photon.ova", "truncated OVA archive")
    except ImageError:
        assert shim.format_exc() == "photon.ova: truncated OVA archive"
    try:
        raise KeyError("bug")
    except KeyError:
        assert shim.format_exc().startswith("Traceback (most recent call last):")
    assert shim.print_exc is traceback.print_exc


def test_adopting_an_existing_item_keeps_its_uuid(host, library, ova, vcsim):
    with direct_client(vcsim) as client:
        existing = client.create_item(library.id, "made-by-hand", "", "OVF")
    step = host.up(
        ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-adopted", adopt_id=existing.upper())
    )
    assert (step.op, step.id) == ("create", existing)
    assert step.outputs["vmi_id"] == vmi_id(existing)
    assert step.outputs["name"] == "photon-adopted"
    assert step.outputs["image"]["osInfo"]["type"] == "vmwarePhoton64Guest"
    again = host.up(
        ITEM,
        ContentLibraryItemProvider(),
        item_inputs(library, ova, "photon-adopted", adopt_id=existing.upper()),
        after=step,
    )
    assert again.op == "same"


def test_adopting_an_item_that_already_holds_the_source_uploads_nothing(host, library, ova, vcsim, tmp_path):
    with direct_client(vcsim) as client:
        existing = client.create_item(library.id, "vendor-photon", "", "OVF")
        upload_source(client, existing, str(ova))  # as a vendor or a person would have published it
    step = host.up(
        ITEM, ContentLibraryItemProvider(), item_inputs(library, ova, "photon-taken-over", adopt_id=existing)
    )
    assert (step.op, step.id, step.outputs["name"]) == ("create", existing, "photon-taken-over")
    assert step.outputs["image"]["osInfo"]["type"] == "vmwarePhoton64Guest"
    log = host.wait_for_log(f"item {existing} already holds {ova}")
    assert f"item {existing} already holds {ova}" in log
    assert "photon-taken-over: " not in log  # no upload, no progress

    # a different package (same file names, another disk size) is uploaded into the item, keeping its UUID
    (tmp_path / "other").mkdir()
    other = write_ova(tmp_path / "other" / "photon.ova", SAMPLES[0], disk_bytes=2 * 2**20)
    with direct_client(vcsim) as client:
        second = client.create_item(library.id, "vendor-photon-2", "", "OVF")
        upload_source(client, second, str(ova))
    step = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, other, "photon-other", adopt_id=second))
    assert step.id == second
    assert {f["name"]: f["size"] for f in step.outputs["files"]}["photon-disk1.vmdk"] in (2 * 2**20, 2 * 2**20 - 1024)
    assert "uploaded in" in host.wait_for_log("photon-other: ")


def test_adopting_with_a_wrong_sha256_fails_and_leaves_the_item_as_it_was(host, library, ova, vcsim):
    with direct_client(vcsim) as client:
        existing = client.create_item(library.id, "vendor-photon-3", "kept", "OVF")
        upload_source(client, existing, str(ova))
    inputs = item_inputs(library, ova, "photon-renamed", adopt_id=existing, sha256="0" * 64)
    refused = host.check(ITEM, ContentLibraryItemProvider(), {}, inputs)  # the preview already says so
    assert [key for key, _ in refused.failures] == ["sha256"]
    checked = host.check(ITEM, ContentLibraryItemProvider(), {}, {**inputs, "sha256": None})
    with pytest.raises(grpc.RpcError) as caught:  # and the adoption checks again (a file changed since)
        host.create({**checked.inputs, "sha256": "0" * 64})
    assert f"not the declared sha256 {'0' * 64}" in caught.value.details()
    with direct_client(vcsim) as client:
        item = client.get_item(existing)
    assert (item.name, item.description) == ("vendor-photon-3", "kept")


def test_adopting_a_missing_or_foreign_item_fails_clearly(host, library, ova):
    with pytest.raises(grpc.RpcError) as caught:
        host.up(
            ITEM,
            ContentLibraryItemProvider(),
            item_inputs(library, ova, "nobody", adopt_id="e1968c25-dd84-4506-8dc7-9beacb6b688e"),
        )
    assert "vCenter has no library item with this UUID" in caught.value.details()
    checked = host.check(ITEM, ContentLibraryItemProvider(), {}, item_inputs(library, ova, "x", adopt_id="nope"))
    assert [p for p, _ in checked.failures] == ["adopt_id"]


def test_check_and_diff_need_no_vcenter(vcsim, tmp_path):
    """Previews stay offline: an unreachable vCenter does not matter to check and diff."""
    ova = write_ova(tmp_path / "offline.ova", SAMPLES[0])
    with provider_host(vsphere_config(vcsim, server="127.0.0.1:9")) as offline:
        checked = offline.check(
            ITEM, ContentLibraryItemProvider(), {}, {"library_id": "lib", "name": "offline", "source": str(ova)}
        )
        assert checked.failures == []
        recorded = {**checked.inputs, "contract": CONTRACT}  # the state: the inputs, and the contract an output
        assert offline.diff("id", recorded, checked.inputs).changes is False


@pytest.fixture
def https_files(tmp_path, vcsim):
    """A loopback HTTPS server over tmp_path: what vCenter pulls a URL source from. It serves the
    simulator's certificate, which the tests' vsphere:caFile trusts."""
    import functools
    import http.server
    import ssl
    import threading

    cert, key = vcsim.ca_file, vcsim.ca_file.with_name("key.pem")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_sources_are_pulled_by_vcenter(host, library, https_files):
    directory, base = https_files
    write_iso(directory / "pulled.iso")
    write_ova(directory / "pulled.ova", SAMPLES[1])
    iso = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, f"{base}/pulled.iso", "pulled-iso"))
    assert [f["name"] for f in iso.outputs["files"]] == ["pulled.iso"]
    assert iso.outputs["image"]["type"] == "ISO"
    assert iso.checked.inputs["fingerprint"] == f"url:{base}/pulled.iso"
    # the simulator gives no byte counts for a pull: the log says it is under way, then the time taken
    assert "pulled-iso: vCenter is pulling it, 0 s so far" in host.wait_for_log("pulled-iso: pulled by vCenter in")
    logged = len(host.stderr)
    ova = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, f"{base}/pulled.ova", "pulled-ova"))
    assert ova.outputs["image"]["osInfo"]["type"] == "ubuntu64Guest"  # read from the descriptor vCenter holds
    # vCenter unpacks a pulled OVA into files of its own naming: none of them is "left over"
    assert "still holds" not in host.wait_for_log(f"published 'pulled-ova' as item {ova.id}", since=logged)


def test_a_pull_reports_the_bytes_vcenter_fetched(library, https_files, vcsim):
    """Where vCenter reports ``bytes_transferred`` and ``size`` for a pulled file (the simulator
    never does), every poll passes them on: a real pull, whose file list gets vCenter's counts."""
    directory, base = https_files
    write_iso(directory / "counted.iso")
    polls = []

    class Counting(ContentLibraryClient):
        def session_files(self, session_id):
            files = super().session_files(session_id)
            polls.append(len(polls))
            return [{**f, "size": 4096, "bytes_transferred": min(4096, 1024 * len(polls))} for f in files]

    reported = []
    with direct_client(vcsim) as client:
        counting = Counting(client.session)
        item_id = counting.create_item(library.id, "counted", "", "ISO")
        upload_source(counting, item_id, f"{base}/counted.iso", progress=lambda *sent: reported.append(sent))
        counting.delete_item(item_id)
    assert reported[0] == (1024, 4096)
    assert reported == [(min(4096, 1024 * (n + 1)), 4096) for n in range(len(reported))]


def test_a_declared_sha256_is_checked_by_vcenter_for_url_sources(host, library, https_files, vcsim):
    """vCenter gets the digest with the pull's file spec and checks what it fetched."""
    directory, base = https_files
    iso = write_iso(directory / "pinned.iso")
    actual = hashlib.sha256(iso.read_bytes()).hexdigest()
    wrong = "0" * 64
    with pytest.raises(grpc.RpcError) as caught:
        host.up(
            ITEM, ContentLibraryItemProvider(), item_inputs(library, f"{base}/pinned.iso", "pinned-bad", sha256=wrong)
        )
    details = caught.value.details()
    assert f"{base}/pinned.iso: what vCenter fetched does not have the declared sha256 {wrong}" in details
    assert "Traceback" not in details
    assert _items_named(vcsim, library.id, "pinned-bad") == []
    good = host.up(
        ITEM, ContentLibraryItemProvider(), item_inputs(library, f"{base}/pinned.iso", "pinned", sha256=actual)
    )
    assert good.outputs["source_sha256"] == actual


def test_a_url_whose_certificate_is_not_trusted_is_refused(host, library, vcsim, tmp_path):
    import functools
    import http.server
    import ssl
    import threading

    from tests.tls import write_self_signed

    (tmp_path / "untrusted").mkdir()
    cert, key = write_self_signed(tmp_path / "untrusted")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    write_iso(tmp_path / "u.iso")
    url = f"https://127.0.0.1:{server.server_address[1]}/u.iso"
    try:
        with pytest.raises(grpc.RpcError) as caught:
            host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, url, "untrusted"))
    finally:
        server.shutdown()
    assert f"{url}: its TLS certificate is not trusted" in caught.value.details()
    assert _items_named(vcsim, library.id, "untrusted") == []


def test_credentials_in_a_source_url_stay_out_of_outputs_logs_and_errors(host, library, https_files, vcsim):
    directory, base = https_files
    write_iso(directory / "signed.iso")
    secret_url = base.replace("https://", "https://puller:Pa55-in-url@") + "/signed.iso?X-Amz-Signature=s1gn4ture"
    logged = len(host.stderr)
    step = host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, secret_url, "signed"))
    assert (
        step.checked.inputs["fingerprint"]
        == f"url:{base.replace('https://', 'https://***@')}/signed.iso?X-Amz-Signature=***"
    )
    shown = {k: v for k, v in step.outputs.items() if k not in ("source", "__provider")}
    assert "Pa55-in-url" not in str(shown) and "s1gn4ture" not in str(shown)
    log = host.wait_for_log("published 'signed'", since=logged)
    assert "Pa55-in-url" not in log and "s1gn4ture" not in log
    missing = secret_url.replace("signed.iso", "missing.iso")
    with pytest.raises(grpc.RpcError) as caught:
        host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, missing, "never-signed"))
    assert "Pa55-in-url" not in caught.value.details() and "s1gn4ture" not in caught.value.details()
    assert "https://***@127.0.0.1" in caught.value.details()


def test_a_url_that_answers_404_fails_and_leaves_no_item(host, library, https_files, vcsim):
    _, base = https_files
    with pytest.raises(grpc.RpcError) as caught:
        host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, f"{base}/missing.iso", "never"))
    assert f"{base}/missing.iso: the URL answers HTTP 404" in caught.value.details()
    assert _items_named(vcsim, library.id, "never") == []


def test_a_url_vcenter_cannot_reach_fails_and_leaves_no_item(host, library, vcsim):
    url = "https://127.0.0.1:9/unreachable.iso"  # the discard port: nothing listens
    with pytest.raises(grpc.RpcError) as caught:
        host.up(ITEM, ContentLibraryItemProvider(), item_inputs(library, url, "unreachable"))
    assert f"{url}: vCenter could not fetch it" in caught.value.details()
    assert _items_named(vcsim, library.id, "unreachable") == []


def _items_named(vcsim, library_id: str, name: str) -> list[str]:
    with direct_client(vcsim) as client:
        return client.find_items(library_id, name)


def test_subscribed_library(host, library, vcsim):
    url = f"https://{vcsim.server}/cls/vcsp/lib/{library.id}"
    step = host.up(
        LIBRARY, ContentLibraryProvider(), {"name": "subscriber", "datastore": "LocalDS_0", "subscription_url": url}
    )
    assert step.outputs["type"] == "SUBSCRIBED"
    assert step.outputs["subscription_url"] == url
    host.delete(step.id, step.outputs)
    assert host.read(step.id, step.outputs, step.inputs)[0] == ""


def test_a_new_form_of_the_same_url_fingerprint_is_no_new_content():
    """A source that becomes secret changes its fingerprint's form, not its content: no upload."""
    from providers.library_item import fingerprint, new_content

    url = "https://downloads.example.com/t0ken/photon.ova"
    olds = {"source": url, "sha256": None, "fingerprint": fingerprint(url, None)}
    secret = {"source": url, "sha256": None, "fingerprint": fingerprint(url, None, secret=True)}
    assert secret["fingerprint"].startswith("url-sha256:") and "t0ken" not in secret["fingerprint"]
    assert not new_content(olds, secret)
    assert new_content(olds, {**secret, "source": url.replace("photon", "photon-2")})
    assert new_content(olds, {**secret, "sha256": "a" * 64})
    local = {"source": "photon.ova", "sha256": None, "fingerprint": "file:1:aa"}
    assert new_content(local, {**local, "fingerprint": "file:1:bb"})  # a file's content moved
