"""A preview fails where `up` would: a declared sha256 that does not match the file, a library
name vCenter already holds, a refused login, an unreachable vCenter. An offline preview
(VMIMAGE_OFFLINE=1) passes and says what it did not check, and so does its summary."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import vmimage.descriptor.source
from providers.library_item import ContentLibraryItemProvider
from tests.proxy import fault_proxy
from tests.pulumi_cli import Stack
from tests.test_engine import dev_config
from tests.test_providers import PASSWORD, direct_client, vsphere_config
from vmimage.descriptor.samples import SAMPLES, write_iso, write_ova, write_ovf
from vmimage.errors import ImageError
from vmimage.review.preview_checks import UNCHECKED, offline, unchecked, unchecked_in
from vmimage.review.summary import parse_preview, summary_markdown
from vmimage.vsphere.inventory import find_datastore_id
from vmimage.vsphere.settings import resolve_settings

FAST = {"VMIMAGE_HTTP_ATTEMPTS": "1"}  # an unreachable vCenter fails at once, not after five attempts


# --- the pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), (" Yes ", True), ("0", False), ("", False)]
)
def test_offline_is_asked_for_with_an_environment_variable(value, expected):
    assert offline({"VMIMAGE_OFFLINE": value}) is expected
    assert offline({}) is False


def test_an_offline_value_that_is_no_boolean_is_refused():
    with pytest.raises(ImageError, match=r"VMIMAGE_OFFLINE: 'maybe' is not a boolean: set it to 1"):
        offline({"VMIMAGE_OFFLINE": "maybe"})


def test_the_offline_warning_names_what_it_left_out_and_is_found_again():
    text = unchecked("vc.example.com", ["images", "iso"], ["team-a"])
    assert text.startswith(UNCHECKED) and "\n" not in text
    left_out = unchecked_in(f"warning: {text}\n")
    assert left_out is not None and left_out.startswith("the login to vCenter vc.example.com")
    assert "library named 'images', 'iso'" in left_out and "Supervisor namespaces 'team-a'" in left_out
    assert "vsphere:vsphereServer is not set" in unchecked(None, [])
    assert "library" not in unchecked("vc", []).split(";", 1)[-1]
    assert unchecked_in("a warning about something else") is None


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "event-stream"])
def test_the_summary_says_what_an_offline_preview_left_out(streamed):
    warning = {"message": unchecked("vc.example.com", ["images"]) + "\n", "severity": "warning", "prefix": "warning: "}
    other = {"message": "some other warning\n", "severity": "warning"}
    if streamed:
        events = [{"sequence": i, "diagnosticEvent": d} for i, d in enumerate([warning, other])]
        text = "\n".join(json.dumps(event) for event in events) + "\n"
    else:
        text = json.dumps({"steps": [], "changeSummary": {"same": 3}, "diagnostics": [warning, other]})
    markdown = summary_markdown(parse_preview(text, "preview.json"), "dev")
    lines = markdown.splitlines()
    assert lines[2].startswith(
        "⚠️ **Offline preview**, not checked against vCenter: the login to vCenter vc.example.com"
    )
    assert "library named 'images'" in lines[2] and "some other warning" not in markdown
    assert lines[4] == "No image changes."
    online = json.dumps({"steps": [], "diagnostics": [other]})
    assert "Offline" not in summary_markdown(parse_preview(online, "preview.json"), "dev")


@pytest.mark.parametrize("kind", ["ova", "iso", "ovf"])
def test_a_declared_sha256_is_checked_from_the_digests_the_fingerprint_cached(kind, tmp_path, monkeypatch):
    """What `sha256` pins (the file; a bare .ovf's manifest) is compared in the item's check from
    the digests the fingerprint reads through the cache: a second preview reads no file again."""
    monkeypatch.setenv("VMIMAGE_CACHE_DIR", str(tmp_path / "cache"))
    if kind == "ova":
        source = pinned = write_ova(tmp_path / "photon.ova", SAMPLES[0])
    elif kind == "iso":
        source = pinned = write_iso(tmp_path / "tools.iso")
    else:
        source, pinned = write_ovf(tmp_path, SAMPLES[0]), tmp_path / f"{SAMPLES[0].name}.mf"
    declared = hashlib.sha256(pinned.read_bytes()).hexdigest()
    reads: list[str] = []
    real = vmimage.descriptor.source.file_sha256
    monkeypatch.setattr(
        vmimage.descriptor.source, "file_sha256", lambda path, follow=True: reads.append(path) or real(path, follow)
    )
    news = {"library_id": "a-library", "name": "x", "source": str(source), "sha256": declared}
    assert ContentLibraryItemProvider().check({}, news).failures == []
    read_once = len(reads)
    assert read_once >= 1
    failures = ContentLibraryItemProvider().check({}, {**news, "sha256": "0" * 64}).failures
    assert [(f.property, f.reason) for f in failures] == [
        ("sha256", f"{source}: SHA-256 is {declared}, not the declared sha256 {'0' * 64}")
    ]
    assert len(reads) == read_once  # the same digests, from the cache


# --- through the real engine --------------------------------------------------------------------


def stack_of(tmp_path: Path, config: dict, env: dict[str, str] | None = None, password: str = PASSWORD) -> Stack:
    stack = Stack(tmp_path / "stack", name="dev", env={**FAST, **(env or {})})
    stack.configure(config, secrets={"vsphere:password": password} if password else None)
    return stack


def error_lines(output: str) -> list[str]:
    """The run's errors, but the engine's own line that the program failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("error:")]
    return [
        line
        for line in lines
        if line != "error: an unhandled error occurred: program exited with non-zero exit code: 1"
    ]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the probe is: nothing listens there


@pytest.mark.vcsim
def test_a_declared_sha256_that_does_not_match_fails_the_preview(simulator, samples, tmp_path):
    config = dev_config(simulator, samples)
    photon = next(image for image in config["vmimage:images"] if image["displayName"] == "photon-5-sample")
    actual = hashlib.sha256(Path(photon["source"]).read_bytes()).hexdigest()
    photon["sha256"] = "0" * 64
    stack = stack_of(tmp_path, config)
    failed = stack.preview(check=False)
    assert failed.returncode != 0
    assert f"{photon['source']}: SHA-256 is {actual}, not the declared sha256 {'0' * 64}" in failed.output
    assert "Traceback" not in failed.output
    photon["sha256"] = actual.upper()  # what `up` accepts, the preview accepts
    stack.configure(config)
    assert "+ 12 to create" in stack.preview().stdout


@pytest.mark.vcsim
def test_a_library_name_vcenter_already_holds_fails_the_preview(simulator, samples, tmp_path):
    settings = resolve_settings({**vsphere_config(simulator), "vsphere:password": PASSWORD}, {})
    with direct_client(simulator) as client:  # made in the vSphere Client, or by another stack
        taken = client.create_library("someone-elses", find_datastore_id(settings, "LocalDS_0"))
    config = dev_config(simulator, samples)
    config["vmimage:libraries"] = [{**config["vmimage:libraries"][0], "name": "someone-elses"}]
    config["vmimage:images"] = [{**image, "library": "someone-elses"} for image in config["vmimage:images"]]
    stack = stack_of(tmp_path, config)
    failed = stack.preview(check=False)
    assert failed.returncode != 0, failed.output
    assert f"library 'someone-elses': vCenter {simulator.server} already has a library with this name ({taken})" in (
        failed.output
    )
    assert "declare it in vmimage:libraries with `existing: true`" in failed.output
    config["vmimage:libraries"] = [{"name": "someone-elses", "existing": True}]  # what the message says to do
    stack.configure(config)
    assert "+ 11 to create" in stack.preview().stdout  # no library to create: the stack publishes into it
    with direct_client(simulator) as client:
        assert client.find_libraries("someone-elses") == [taken]  # the preview wrote nothing


@pytest.mark.vcsim
def test_an_unreachable_vcenter_fails_the_preview_in_one_line(simulator, samples, tmp_path):
    server = f"127.0.0.1:{closed_port()}"
    stack = stack_of(tmp_path, dev_config(simulator, samples, server=server))
    failed = stack.preview(check=False)
    assert failed.returncode != 0
    (line,) = error_lines(failed.output)
    assert line.startswith(f"error: vCenter {server}: POST /api/session: connection failed (ConnectError: ")
    assert line.endswith("(to preview without vCenter, set VMIMAGE_OFFLINE=1)")
    assert PASSWORD not in failed.output and "Traceback" not in failed.output


@pytest.mark.vcsim
def test_a_refused_login_fails_the_preview_in_one_line(simulator, samples, tmp_path):
    """A vCenter whose account has PASSWORD (the simulator takes any, so a proxy in front of it
    refuses another one, as vCenter does): a wrong password fails the preview, the right one passes."""
    key = simulator.ca_file.with_name("key.pem")
    with fault_proxy(simulator.server, simulator.ca_file, key, password=PASSWORD) as proxy:
        config = dev_config(simulator, samples, server=proxy.server)
        stack = stack_of(tmp_path, config, password="not-the-Pa55word")
        failed = stack.preview(check=False)
        stack.configure(config, secrets={"vsphere:password": PASSWORD})
        passed = stack.preview()
    assert failed.returncode != 0
    (line,) = error_lines(failed.output)
    assert (
        line
        == f"error: vCenter {proxy.server}: login as 'user' refused (HTTP 401): check vsphere:user and vsphere:password"
    )
    assert "not-the-Pa55word" not in failed.output and "Traceback" not in failed.output
    assert "+ 12 to create" in passed.stdout


@pytest.mark.vcsim
def test_an_offline_preview_passes_and_says_what_it_left_out(simulator, samples, tmp_path):
    """No vCenter, no password: the preview runs on what it has locally (the files, their sha256,
    the config) and warns what it did not check; its summary says it too; `up` refuses to run."""
    server = f"127.0.0.1:{closed_port()}"
    config = dev_config(simulator, samples, server=server)
    stack = stack_of(tmp_path, config, env={"VMIMAGE_OFFLINE": "1"}, password="")
    previewed = stack.preview()
    assert "+ 12 to create" in previewed.stdout
    (warning,) = [line for line in previewed.output.splitlines() if UNCHECKED in line]
    assert warning.strip().startswith(f"warning: {UNCHECKED} the login to vCenter {server}")
    assert "whether vCenter already has a library named 'dev-images'" in warning
    preview = tmp_path / "preview.json"
    preview.write_text(stack.run("preview", "--json").stdout)
    done = subprocess.run(
        [sys.executable, "-m", "vmimage", "preview-summary", str(preview)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"⚠️ **Offline preview**, not checked against vCenter: the login to vCenter {server}" in done.stdout
    assert "**3 added**" in done.stdout
    refused = stack.up(check=False)
    assert refused.returncode != 0
    (line,) = error_lines(refused.output)
    assert line == "error: VMIMAGE_OFFLINE is set: it is for previews, and `pulumi up` needs vCenter; unset it"
    photon = next(image for image in config["vmimage:images"] if image["displayName"] == "photon-5-sample")
    photon["sha256"] = "0" * 64  # what needs no vCenter is still checked
    stack.configure(config)
    assert "not the declared sha256" in stack.preview(check=False).output
