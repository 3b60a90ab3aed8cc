"""`vmimage preview-summary` on what the real engine says: the dev stack, then a change that
updates one image's source, adds a scope to another, removes a third and replaces a fourth."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pulumi_cli import Stack
from tests.test_engine import dev_config
from tests.test_providers import PASSWORD
from vmimage.contract.ids import vmi_id
from vmimage.descriptor.samples import SAMPLES, SampleImage, write_ova, write_samples
from vmimage.review.summary import image_changes

pytestmark = pytest.mark.vcsim

EXTRA = {"displayName": "extra-sample", "source": "extra-sample.ova", "library": "dev-images", "scope": "cluster"}


@pytest.fixture(scope="module")
def scenario(simulator, tmp_path_factory) -> dict:
    """The engine's preview JSON for the change, and the stack's outputs before it."""
    samples = tmp_path_factory.mktemp("summary-samples")
    write_samples(samples)
    write_ova(samples / "extra-sample.ova", SampleImage(name="extra-sample"))
    stack = Stack(tmp_path_factory.mktemp("summary-stack"), name="dev")
    stack.configure(dev_config(simulator, samples, extra_images=[EXTRA]), secrets={"vsphere:password": PASSWORD})
    stack.up()
    before = stack.outputs()
    items = {r["outputs"]["name"]: r["id"] for r in stack.resources("dynamic/vmimage:ContentLibraryItem").values()}

    # a new build: a new version, hardware and disk size, all read from the local descriptor
    write_ova(
        samples / "ubuntu-24.04-sample.ova",
        dataclasses.replace(
            SAMPLES[1], version="24.10", full_version="24.10 LTS", hardware_version=22, disk_capacity_gib=12
        ),
    )
    config = dev_config(simulator, samples, extra_images=[{**EXTRA, "library": "other-images"}])
    images = [image for image in config["vmimage:images"] if image["displayName"] != "tools-sample"]
    next(i for i in images if i["displayName"] == "photon-5-sample")["scope"] = ["team-a", "dev"]
    config["vmimage:images"] = images
    config["vmimage:libraries"] = [*config["vmimage:libraries"], {"name": "other-images", "datastore": "LocalDS_0"}]
    stack.configure(config)
    preview = json.loads(stack.run("preview", "--json").stdout)
    diff = stack.preview().stdout
    return {"preview": preview, "diff": diff, "outputs": before, "items": items, "stack": stack}


def test_the_changes_in_image_terms(scenario):
    changes = {(c.kind, c.display_name, c.scope): c for c in image_changes(scenario["preview"])}
    items = scenario["items"]
    ubuntu = changes[("changed", "ubuntu-24.04-sample", "dev")]
    assert ubuntu.vmi_id == vmi_id(items["ubuntu-24.04-sample"])
    assert ubuntu.what == [
        "new content (a new content version of the same item; the VMI ID stays)",
        "disks: disk0 10Gi → disk0 12Gi",
    ]
    # what it becomes, read from the new local descriptor; what it was, from the state
    assert ubuntu.facts["os"] == "ubuntu64Guest" and ubuntu.facts["hardware"] == "vmx-22"
    assert ubuntu.facts["version"] == "24.10" and ubuntu.facts["ready"] == "True"
    assert ubuntu.before is not None and (ubuntu.before["version"], ubuntu.before["hardware"]) == ("24.04", "vmx-21")

    for namespace in ("team-a", "dev"):
        added = changes[("added", "photon-5-sample", namespace)]
        assert added.vmi_id == vmi_id(items["photon-5-sample"])  # the same item, one more scope
        assert added.what[0] == f"scope added: {namespace}"
        assert added.facts["os"] == "vmwarePhoton64Guest" and added.facts["capabilities"] == ["nvidia-gpu"]
    removed_scope = changes[("removed", "photon-5-sample", "cluster")]
    assert removed_scope.what[0] == "scope removed: cluster"

    tools = changes[("removed", "tools-sample", "cluster")]
    assert tools.vmi_id == vmi_id(items["tools-sample"]) and tools.facts["type"] == "ISO"

    extra = changes[("replaced", "extra-sample", "cluster")]
    old = vmi_id(items["extra-sample"])
    assert extra.what == [f"replaced (item_id): the VMI ID changes ({old} → a new ID); VMs that name {old} break"]
    assert extra.facts["version"] == "5.0"


def test_the_markdown_a_reviewer_reads(scenario, tmp_path):
    preview = tmp_path / "preview.json"
    preview.write_text(json.dumps(scenario["preview"]))
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(scenario["outputs"]))
    done = subprocess.run(
        [sys.executable, "-m", "vmimage", "preview-summary", str(preview), "--outputs", str(outputs)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("### vmimage catalog · `dev`\n")
    assert "**2 added** · **1 replaced** · **1 changed** · **2 removed**" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "image" not in line[:12]]
    assert [row.split(" | ")[0] for row in rows] == ["| ➕ added"] * 2 + ["| ♻️ replaced", "| ✏️ changed"] + [
        "| ➖ removed"
    ] * 2
    assert "VMs in namespaces without an image of their own named 'tools-sample' stop resolving it" in text
    ubuntu = next(row for row in rows if "ubuntu-24.04-sample" in row)
    assert "| ubuntu64Guest | 24.04 → 24.10 | vmx-21 → vmx-22 | efi |" in ubuntu
    photon = next(row for row in rows if "➕ added | photon-5-sample | dev" in row)
    assert "| vmwarePhoton64Guest | 5.0 | vmx-19 | efi |" in photon
    assert PASSWORD not in text and "[secret]" not in text
    Path(tmp_path / "summary.md").write_text(text)


def test_the_diff_shows_what_the_image_becomes(scenario):
    """`pulumi preview --diff` shows the new image in readable values, not only a fingerprint, and the
    internal inputs stay out of an update's diff."""
    diff = scenario["diff"]
    block = diff[diff.index("ubuntu-24.04-sample") :]
    assert re.search(r'version\s*:\s*"24.04" => "24.10"', block), diff
    assert re.search(r'hardware\s*:\s*"vmx-21" => "vmx-22"', block), diff
    steps = re.split(r"\n(?=\s*(?:[~+-]|\+-) ?pulumi-python:dynamic)", diff)
    updates = [part for part in steps if "~ pulumi-python" in part]
    assert updates and not any("contract" in part or "declaration" in part for part in updates), diff
    assert "__instance" not in diff  # the stack instance's salt, on every item and image: never shown


def test_a_preview_without_image_changes_says_so(scenario, tmp_path):
    quiet = {"steps": [], "changeSummary": {"same": 9}}
    path = tmp_path / "quiet.json"
    path.write_text(json.dumps(quiet))
    done = subprocess.run(
        [sys.executable, "-m", "vmimage", "preview-summary", str(path), "--stack", "prod"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout == "### vmimage catalog · `prod`\n\nNo image changes.\n"
    bad = tmp_path / "bad.json"
    bad.write_text("Previewing update (dev):")
    refused = subprocess.run(
        [sys.executable, "-m", "vmimage", "preview-summary", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "give the output of `pulumi preview --json`" in refused.stderr
