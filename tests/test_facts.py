"""What an image is in a reviewer's terms (vmimage/review/facts.py), from real descriptors."""

from __future__ import annotations

from datetime import UTC, datetime

from vmimage.contract.image import file_image
from vmimage.contract.status import image_status, not_synced_status
from vmimage.descriptor.samples import SAMPLES, SampleImage, write_ova
from vmimage.descriptor.source import read_image_file
from vmimage.review.facts import image_facts, moves, with_capabilities

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_facts_of_a_sample_ova(tmp_path):
    ova = write_ova(tmp_path / "ubuntu.ova", SAMPLES[1])
    facts = image_facts(file_image(read_image_file(str(ova)), name="ubuntu").status.wire())
    assert facts == {
        "type": "OVF",
        "os": "ubuntu64Guest",
        "version": "24.04",
        "hardware": "vmx-21",
        "firmware": "efi",
        "disks": ["disk0 10Gi"],
        "ready": "True",
    }


def test_an_iso_and_a_not_synced_image():
    assert image_facts(image_status(None, name="tools", now=NOW).wire()) == {"type": "ISO", "ready": "True"}
    refused = not_synced_status(image_status(None, name="x", now=NOW).model_copy(update={"type": "OVF"}), NOW)
    assert image_facts(refused.wire())["ready"].startswith("False: VirtualMachineImageNotSynced: Failed to sync")


def test_declared_capabilities_join_the_descriptors(tmp_path):
    ova = write_ova(tmp_path / "p.ova", SampleImage(name="p", capabilities=("nvidia-gpu",)))
    facts = image_facts(file_image(read_image_file(str(ova)), name="p").status.wire())
    assert with_capabilities(facts, ["sriov", "nvidia-gpu"])["capabilities"] == ["nvidia-gpu", "sriov"]
    assert "capabilities" not in with_capabilities({"type": "ISO"}, [])


def test_moves_say_old_and_new_for_each_fact_that_differs():
    before = {"type": "OVF", "version": "12.8", "hardware": "vmx-20", "disks": ["disk0 10Gi"]}
    after = {"type": "OVF", "version": "12.9", "hardware": "vmx-21", "disks": ["disk0 10Gi", "disk1 2Gi"]}
    assert moves(before, after) == [
        "version: 12.8 → 12.9",
        "hardware: vmx-20 → vmx-21",
        "disks: disk0 10Gi → disk0 10Gi, disk1 2Gi",
    ]
    assert moves(after, after) == []
