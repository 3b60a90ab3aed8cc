"""Failures mid-way leave nothing half-made in vCenter, say what happened, and the next run works."""

from __future__ import annotations

import hashlib
import socket
import tarfile

import grpc
import pytest

from providers.common import INSTANCE
from providers.library_item import UNFINISHED, ContentLibraryItemProvider
from tests.engine import provider_host
from tests.proxy import cutting_proxy, fault_proxy
from tests.test_providers import ITEM, PASSWORD, vsphere_config
from vmimage.declaration import new_instance, unmarked
from vmimage.descriptor.samples import SAMPLES, write_ova
from vmimage.vsphere.content_library import ContentLibraryClient
from vmimage.vsphere.rest import Call

pytestmark = pytest.mark.vcsim
LIBRARY_NAME = "reliability"
FAST_RETRIES = {"VMIMAGE_HTTP_BACKOFF": "0.01", "VMIMAGE_PROGRESS_INTERVAL": "0"}
PROVIDER_ENV = FAST_RETRIES


def active_sessions(client: ContentLibraryClient) -> list[dict]:
    ids = (
        client.session.call(
            Call("GET", "/com/vmware/content/library/item/update-session", "/content/library/item/update-session")
        )
        or []
    )
    sessions = [client.get_update_session(i) for i in ids]
    return [s for s in sessions if s and s.get("state") == "ACTIVE"]


def failing_create(host, inputs: dict, provider: ContentLibraryItemProvider | None = None) -> str:
    """Why the item was refused: by the create's one-line error, or already by the check
    (which lints a local package before anything is created)."""
    try:
        step = host.up(ITEM, provider or ContentLibraryItemProvider(), inputs)
    except grpc.RpcError as error:
        details = error.details()
    else:
        assert step.op == "failed", step
        details = " ".join(reason for _, reason in step.checked.failures)
    assert "Traceback" not in details, details
    return details


def test_wrong_sha256_leaves_no_item_and_the_next_run_works(host, library, client, tmp_path):
    ova = write_ova(tmp_path / "a.ova", SAMPLES[0])
    inputs = {"library_id": library.id, "name": "bad-sha", "source": str(ova), "sha256": "0" * 64}
    refused = host.check(ITEM, ContentLibraryItemProvider(), {}, inputs)  # the preview already says so
    assert [key for key, _ in refused.failures] == ["sha256"]
    # the upload checks again (the file may change between check and create), and leaves nothing
    checked = host.check(ITEM, ContentLibraryItemProvider(), {}, {**inputs, "sha256": None})
    with pytest.raises(grpc.RpcError) as caught:
        host.create({**checked.inputs, "sha256": "0" * 64})
    details = caught.value.details()
    assert f"{ova}: SHA-256 is " in details and "not the declared sha256 " + "0" * 64 in details
    assert [reason for _, reason in refused.failures] == [details]  # the same words, from the same check
    assert client.find_items(library.id, "bad-sha") == []
    assert active_sessions(client) == []
    good = hashlib.sha256(ova.read_bytes()).hexdigest()
    step = host.up(ITEM, ContentLibraryItemProvider(), {**inputs, "sha256": good})
    assert step.op == "create" and step.outputs["source_sha256"] == good


def test_truncated_ova_leaves_no_item(host, library, client, tmp_path):
    ova = write_ova(tmp_path / "t.ova", SAMPLES[0], disk_bytes=2 * 2**20)
    ova.write_bytes(ova.read_bytes()[: 2**20])  # the disk member ends early
    details = failing_create(host, {"library_id": library.id, "name": "truncated", "source": str(ova)})
    assert "truncated" in details
    assert client.find_items(library.id, "truncated") == []
    assert active_sessions(client) == []


def test_disk_that_does_not_match_the_manifest(host, library, client, tmp_path):
    ova = write_ova(tmp_path / "m.ova", SAMPLES[0], disk_bytes=4096)
    with tarfile.open(ova) as archive:
        disk_start = archive.getmember("m-disk1.vmdk").offset_data
    data = bytearray(ova.read_bytes())
    data[disk_start + 100] = 0xFF
    ova.write_bytes(bytes(data))
    details = failing_create(host, {"library_id": library.id, "name": "corrupt", "source": str(ova)})
    assert "m-disk1.vmdk" in details and "corrupt or was changed" in details
    assert client.find_items(library.id, "corrupt") == []


def test_duplicate_item_name_is_refused(host, library, client, tmp_path):
    ova = write_ova(tmp_path / "d.ova", SAMPLES[0])
    inputs = {"library_id": library.id, "name": "twice", "source": str(ova)}
    first = host.up(ITEM, ContentLibraryItemProvider(), inputs)
    details = failing_create(host, inputs)
    assert "already has an item with this name" in details and first.id in details
    assert client.find_items(library.id, "twice") == [first.id]


def test_a_package_holding_a_file_name_twice_is_refused_as_lint_says(host, library, client, tmp_path):
    from tests.test_integrity import ova_of, photon_members
    from vmimage.review.lint import lint_package

    members = photon_members()
    ova = ova_of(tmp_path / "twice.ova", [*members, ("extra/p-disk1.vmdk", members[2][1])])
    (finding,) = lint_package(str(ova)).findings
    details = failing_create(host, {"library_id": library.id, "name": "twice-in-it", "source": str(ova)})
    assert finding.code == "duplicate-file" and finding.message in details
    assert client.find_items(library.id, "twice-in-it") == []


def test_a_session_that_ends_mid_transfer_of_an_ova_member_is_renewed_and_the_member_sent_again(
    vcsim, library, client, tmp_path
):
    """vCenter answers 401 to a disk's PUT (its API session ended during a long transfer): the
    session is renewed, the member is read again from the archive, and the upload completes."""
    ova = write_ova(tmp_path / "long.ova", SAMPLES[0], disk_bytes=3 * 2**20)
    key = vcsim.ca_file.with_name("key.pem")
    inputs = {"library_id": library.id, "name": "long-transfer", "source": str(ova)}
    with (
        fault_proxy(vcsim.server, vcsim.ca_file, key, expire_on_put="-disk1.vmdk") as proxy,
        provider_host(vsphere_config(vcsim, server=proxy.server), env=FAST_RETRIES) as through_proxy,
    ):
        step = through_proxy.up(ITEM, ContentLibraryItemProvider(), inputs)
    assert step.op == "create" and proxy.expired == 1
    disk_puts = [r for r in proxy.requests if r[0] == "PUT" and r[1].endswith("-disk1.vmdk")]
    assert len(disk_puts) == 2  # cut short once, then sent whole from the archive
    sizes = {f["name"]: f["size"] for f in step.outputs["files"]}
    with tarfile.open(ova) as archive:
        disk = next(m for m in archive.getmembers() if m.name.endswith("-disk1.vmdk"))
    assert sizes[disk.name] >= disk.size - 1024  # the simulator drops a streamOptimized disk's head
    assert client.find_items(library.id, "long-transfer") == [step.id]


def test_a_long_transfer_keeps_its_update_session_alive(vcsim, library, tmp_path):
    """While a transfer runs, the update session's keep-alive is called (with the progress),
    so neither it nor the API session idles out, however long the transfer takes."""
    ova = write_ova(tmp_path / "slow.ova", SAMPLES[0], disk_bytes=2**20)
    key = vcsim.ca_file.with_name("key.pem")
    env = {**FAST_RETRIES, "VMIMAGE_KEEPALIVE_SECONDS": "0.2"}
    inputs = {"library_id": library.id, "name": "slow-transfer", "source": str(ova)}
    with (
        fault_proxy(vcsim.server, vcsim.ca_file, key, slow_put=1.5) as proxy,
        provider_host(vsphere_config(vcsim, server=proxy.server), env=env) as through_proxy,
    ):
        assert through_proxy.up(ITEM, ContentLibraryItemProvider(), inputs).op == "create"
    keep_alives = [r for r in proxy.during_put if "keep-alive" in r[2]]
    assert len(keep_alives) >= 3, proxy.requests
    assert all("update-session" in path for _, path, _ in keep_alives)


def test_connection_cut_mid_upload(vcsim, library, client, tmp_path):
    ova = write_ova(tmp_path / "c.ova", SAMPLES[0], disk_bytes=4 * 2**20)
    inputs = {"library_id": library.id, "name": "cut", "source": str(ova)}
    with cutting_proxy((vcsim.host, vcsim.port), cut_after=2**20) as proxy:
        config = vsphere_config(vcsim, server=proxy.server)
        with provider_host(config, env=FAST_RETRIES) as through_proxy:
            details = failing_create(through_proxy, inputs)
    assert proxy.cuts >= 1
    assert "upload to" in details and "connection failed" in details
    assert client.find_items(library.id, "cut") == []
    assert active_sessions(client) == []
    with provider_host(vsphere_config(vcsim), env=FAST_RETRIES) as direct:
        assert direct.up(ITEM, ContentLibraryItemProvider(), inputs).op == "create"


def test_a_failed_create_whose_cleanup_fails_too_keeps_its_error_and_the_next_create_converges(
    vcsim, library, client, tmp_path
):
    """The unfinished item carries its declaration's token (of this stack instance), so the
    next create of that declaration removes it; nothing else does."""
    ova = write_ova(tmp_path / "o.ova", SAMPLES[0], disk_bytes=4 * 2**20)
    inputs = {
        "library_id": library.id,
        "name": "orphan",
        "source": str(ova),
        "description": "the real one",
        INSTANCE: new_instance(),
    }
    declared = ContentLibraryItemProvider("vmimage/dev/catalog-item-reliability-orphan")
    with (
        cutting_proxy((vcsim.host, vcsim.port), cut_after=2**20, dead_after_cut=True) as proxy,
        provider_host(vsphere_config(vcsim, server=proxy.server), env=FAST_RETRIES) as through_proxy,
    ):
        details = failing_create(through_proxy, inputs, declared)
        log = through_proxy.wait_for_log("could not remove the unfinished item")
    assert "upload to" in details and "connection failed" in details  # the upload's error, not the cleanup's
    assert "the next `pulumi up` removes it" in log
    (left,) = client.find_items(library.id, "orphan")  # the network was down: the item stayed
    assert unmarked(client.get_item(left).description) == (UNFINISHED, declared.token(inputs, library.id))
    with provider_host(vsphere_config(vcsim), env=FAST_RETRIES) as direct:
        elsewhere = failing_create(direct, {**inputs, INSTANCE: new_instance()}, declared)
        assert f"({left})" in elsewhere and "another writer" in elsewhere  # another stack's create leaves it
        step = direct.up(ITEM, declared, inputs)
        assert step.op == "create" and step.id != left
        assert "left unfinished by an earlier failed create" in direct.wait_for_log(f"removing item {left}")
    assert client.find_items(library.id, "orphan") == [step.id]
    assert unmarked(client.get_item(step.id).description)[0] == "the real one"


def test_a_failed_create_without_a_declaration_says_its_item_stays(vcsim, library, client, tmp_path):
    """An item no declaration's token marks is no create's to remove: the warning says so."""
    ova = write_ova(tmp_path / "n.ova", SAMPLES[0], disk_bytes=4 * 2**20)
    inputs = {"library_id": library.id, "name": "nobodys", "source": str(ova)}
    with (
        cutting_proxy((vcsim.host, vcsim.port), cut_after=2**20, dead_after_cut=True) as proxy,
        provider_host(vsphere_config(vcsim, server=proxy.server), env=FAST_RETRIES) as through_proxy,
    ):
        failing_create(through_proxy, inputs)
        log = through_proxy.wait_for_log("could not remove the unfinished item")
    assert "delete it by hand" in log
    (left,) = client.find_items(library.id, "nobodys")
    assert client.get_item(left).description == UNFINISHED
    with provider_host(vsphere_config(vcsim), env=FAST_RETRIES) as direct:
        details = failing_create(direct, inputs)
    assert f"({left})" in details and "another writer is uploading" in details
    assert client.find_items(library.id, "nobodys") == [left]
    client.delete_item(left)


def test_an_item_made_outside_pulumi_still_blocks_a_create(library, client, host, tmp_path):
    other = client.create_item(library.id, "by-hand", "someone's own", "OVF")
    ova = write_ova(tmp_path / "h.ova", SAMPLES[0])
    details = failing_create(host, {"library_id": library.id, "name": "by-hand", "source": str(ova)})
    assert f"already has an item with this name ({other})" in details
    assert client.find_items(library.id, "by-hand") == [other]


def test_unreachable_vcenter(vcsim, library, tmp_path):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    ova = write_ova(tmp_path / "u.ova", SAMPLES[0])
    with provider_host(vsphere_config(vcsim, server=f"127.0.0.1:{port}"), env=FAST_RETRIES) as unreachable:
        details = failing_create(unreachable, {"library_id": library.id, "name": "u", "source": str(ova)})
    assert f"vCenter 127.0.0.1:{port}" in details and "connection failed" in details
    assert PASSWORD not in details


@pytest.mark.parametrize("href", ["../outside.vmdk", "/etc/passwd", "missing.vmdk"])
def test_ovf_references_outside_the_package_or_missing(host, library, client, tmp_path, href):
    package = tmp_path / "package"
    package.mkdir()
    ovf = package / "p.ovf"
    ovf.write_bytes(SAMPLES[0].descriptor(href, 10))
    # Refused at check, before anything is created: reading the package's content for the
    # fingerprint follows its references
    step = host.up(
        ITEM, ContentLibraryItemProvider(), {"library_id": library.id, "name": f"refs-{len(href)}", "source": str(ovf)}
    )
    assert step.op == "failed"
    details = " ".join(reason for _, reason in step.checked.failures)
    assert f"{ovf}: " in details and repr(href) in details and "Traceback" not in details
    assert client.find_items(library.id, f"refs-{len(href)}") == []
