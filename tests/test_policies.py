"""The policy pack (policies/) on the real engine: `pulumi preview --policy-pack`, on stacks that
break each rule and on one that breaks none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pulumi_cli import ROOT, Stack
from tests.test_engine import dev_config
from tests.test_integrity import ova_of, photon_members
from tests.test_providers import PASSWORD

pytestmark = pytest.mark.vcsim
PACK = ROOT / "policies"


@pytest.fixture(scope="module")
def stack(simulator, tmp_path_factory) -> Stack:
    stack = Stack(tmp_path_factory.mktemp("policy-stack"), name="dev")
    stack.configure({}, secrets={"vsphere:password": PASSWORD})
    return stack


def preview(stack: Stack, config: dict, policy_config: dict, tmp_path: Path):
    stack.configure(config)
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps(policy_config))
    return stack.run("preview", "--policy-pack", str(PACK), "--policy-pack-config", str(path), check=False)


def violations(output: str) -> list[str]:
    """The `[level]  policy-name` lines of the preview's Policies section."""
    section = output.split("Policies:", 1)[1] if "Policies:" in output else ""
    return [line.strip() for line in section.splitlines() if line.strip().startswith("- [")]


def test_a_stack_that_breaks_no_rule(stack, simulator, samples, tmp_path):
    result = preview(
        stack, dev_config(simulator, samples), {"vmimage-image-floors": {"minHardwareVersion": 19}}, tmp_path
    )
    assert result.returncode == 0, result.output
    assert "vmimage@" in result.stdout  # the pack ran
    assert violations(result.stdout) == [], result.stdout


SECOND_PACK = """
from pulumi_policy import EnforcementLevel, PolicyPack, StackValidationPolicy

def validate(args, report_violation):
    report_violation(f"the second pack saw {len(args.resources)} resources")

PolicyPack(name="second-pack", enforcement_level=EnforcementLevel.ADVISORY, policies=[
    StackValidationPolicy(name="second-pack-ran", description="Always reports.", validate=validate)])
"""


def test_each_policy_pack_named_runs_from_its_own_folder(stack, simulator, samples, tmp_path):
    """`--policy-pack DIR` runs the pack in DIR, wherever it is (not ./policies), and two packs run both."""
    import shutil

    copy = tmp_path / "a folder with spaces" / "rules"
    shutil.copytree(PACK, copy, ignore=shutil.ignore_patterns("__pycache__"))
    main = copy / "__main__.py"
    assert main.read_text().count('name="vmimage"') == 1
    main.write_text(main.read_text().replace('name="vmimage"', 'name="vmimage-copy"'))
    second = tmp_path / "second"
    second.mkdir()
    (second / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (second / "__main__.py").write_text(SECOND_PACK)
    stack.configure(dev_config(simulator, samples))
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"vmimage-image-floors": {"minHardwareVersion": 21}}))
    none = tmp_path / "none.json"
    none.write_text("{}")
    result = stack.run(
        "preview", "--policy-pack", str(copy), "--policy-pack-config", str(config),
        "--policy-pack", str(second), "--policy-pack-config", str(none), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert "vmimage-copy@" in result.stdout and "second-pack@" in result.stdout
    assert not any(line.strip().startswith("vmimage@") for line in result.stdout.splitlines())
    found = violations(result.stdout)
    assert any("[advisory]  vmimage-image-floors" in line for line in found), result.stdout
    assert any("[advisory]  second-pack-ran" in line for line in found), result.stdout
    assert "the second pack saw" in result.stdout


def test_production_images_must_pin_their_content(stack, simulator, samples, tmp_path):
    result = preview(
        stack, dev_config(simulator, samples), {"vmimage-production-sha256": {"production": True}}, tmp_path
    )
    assert result.returncode != 0  # mandatory: the preview fails
    found = violations(result.stdout)
    assert len(found) == 3 and all("[mandatory]  vmimage-production-sha256" in line for line in found)
    assert "image 'photon-5-sample'" in result.stdout and "declares no sha256" in result.stdout
    assert PASSWORD not in result.output


def test_unverified_tls_is_refused_outside_dev_stacks(stack, simulator, samples, tmp_path):
    config = {**dev_config(simulator, samples), "vsphere:allowUnverifiedSsl": "true"}
    result = preview(stack, config, {}, tmp_path)
    assert result.returncode != 0
    assert any("vmimage-no-unverified-ssl" in line for line in violations(result.stdout))
    assert "vsphere:allowUnverifiedSsl is true" in result.stdout
    allowed = preview(stack, config, {"vmimage-no-unverified-ssl": {"dev": True}}, tmp_path)
    assert not any("vmimage-no-unverified-ssl" in line for line in violations(allowed.stdout))


def test_floors_are_advisory_unless_the_stack_makes_them_mandatory(stack, simulator, samples, tmp_path):
    floors = {"minHardwareVersion": 21, "requireEfi": True, "allowedOsTypes": ["vmwarePhoton64Guest", "ubuntu64Guest"]}
    advisory = preview(stack, dev_config(simulator, samples), {"vmimage-image-floors": floors}, tmp_path)
    assert advisory.returncode == 0
    found = violations(advisory.stdout)
    assert found == ["- [advisory]  vmimage-image-floors  (pulumi-python:dynamic/vmimage:ContentLibraryItem: "
                     "catalog-item-dev-images-photon-5-sample-09bcc2)"]  # fmt: skip
    assert "image 'photon-5-sample' has hardware version 19, under the floor vmx-21" in advisory.stdout
    mandatory = preview(
        stack, dev_config(simulator, samples), {"vmimage-image-floors": {**floors, "enforcementLevel": "mandatory"}},
        tmp_path,
    )  # fmt: skip
    assert mandatory.returncode != 0
    disabled = preview(
        stack, dev_config(simulator, samples), {"vmimage-image-floors": {**floors, "enforcementLevel": "disabled"}},
        tmp_path,
    )  # fmt: skip
    assert disabled.returncode == 0 and violations(disabled.stdout) == []


def test_a_broken_package_is_reported_before_its_upload(stack, simulator, samples, tmp_path):
    broken = ova_of(samples / "broken-sample.ova", [*photon_members(), ("notes.txt", b"x")])
    extra = {"displayName": "broken-sample", "source": str(broken), "library": "dev-images", "scope": "cluster"}
    result = preview(stack, dev_config(simulator, samples, extra_images=[extra]), {}, tmp_path)
    found = [line for line in violations(result.stdout) if "vmimage-package-lint" in line]
    assert len(found) == 1 and "broken-sample" in found[0]
    assert "unlisted-file: the manifest does not list 'notes.txt'" in result.stdout


def test_the_pr_summary_lists_the_violations_from_the_engine_event_stream(stack, simulator, samples, tmp_path):
    import subprocess
    import sys

    stack.configure(dev_config(simulator, samples))
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({"vmimage-image-floors": {"minHardwareVersion": 21}}))
    stream = stack.run(
        "preview", "--json", "--policy-pack", str(PACK), "--policy-pack-config", str(config),
        env={"PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "true"},
    ).stdout  # fmt: skip
    events = tmp_path / "events.jsonl"
    events.write_text(stream)
    done = subprocess.run(
        [sys.executable, "-m", "vmimage", "preview-summary", str(events)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "**3 added**" in done.stdout  # the steps came from the same stream
    assert (
        "- [advisory] vmimage-image-floors (catalog-item-dev-images-photon-5-sample-09bcc2): image 'photon-5-sample' "
        "has hardware version 19, under the floor vmx-21 (upgrade the VM's compatibility before exporting it)"
    ) in done.stdout


def test_the_same_display_name_twice_in_one_scope(simulator, tmp_path):
    """Published by a program without the catalog's own check: the pack reports both resources."""
    stack = Stack(
        tmp_path / "dup",
        name="dup",
        program=ROOT / "tests" / "projects" / "duplicate_names",
    )
    stack.configure({"vsphere:vsphereServer": simulator.server, "vsphere:caFile": str(simulator.ca_file)})
    result = stack.run("preview", "--policy-pack", str(PACK), check=False)
    assert result.returncode != 0
    found = violations(result.stdout)
    assert len(found) == 1 and "[mandatory]  vmimage-unique-display-names" in found[0]
    assert "display name 'Photon OS 5.0' appears twice in cluster scope: photon-a and photon-b" in result.stdout


@pytest.fixture(scope="module")
def vm_stack(simulator, kube, samples, tmp_path_factory):
    """The VM program, up once: a Ready GPU image (a real item), a VM that names it, in dev."""
    import yaml

    from providers.library_item import ContentLibraryItemProvider
    from tests.conftest import FIXTURES
    from tests.engine import provider_host
    from tests.test_providers import ITEM, direct_client, vsphere_config
    from vmimage.vsphere.inventory import find_datastore_id
    from vmimage.vsphere.settings import resolve_settings

    kube.apply(yaml.safe_load((FIXTURES / "crds" / "vmoperator.vmware.com_virtualmachines.yaml").read_text()))
    kube.wait_established("virtualmachines.vmoperator.vmware.com")
    settings = resolve_settings({**vsphere_config(simulator), "vsphere:password": PASSWORD}, {})
    with direct_client(simulator) as client:
        library = client.create_library("vm-policies", find_datastore_id(settings, "LocalDS_0"))
    with provider_host(vsphere_config(simulator)) as host:
        source = str(samples / "photon-5-sample.ova")
        item = host.up(ITEM, ContentLibraryItemProvider(), {"library_id": library, "name": "gpu", "source": source})
    stack = Stack(
        tmp_path_factory.mktemp("vm-stack"),
        name="vms",
        program=ROOT / "tests" / "projects" / "vms",
    )
    base = {
        "vsphere:vsphereServer": simulator.server,
        "vsphere:user": "user",
        "vsphere:caFile": str(simulator.ca_file),
        "test:kubeconfig": str(kube.kubeconfig),
        "test:itemId": item.id,
    }
    stack.configure({**base, "test:withMissing": "true"}, secrets={"vsphere:password": PASSWORD})
    stack.up()  # the policies see the images' status from here on
    return stack, base


def test_a_vm_whose_image_lacks_a_capability_it_requires(vm_stack):
    stack, base = vm_stack
    stack.configure({**base, "test:withMissing": "true", "test:required": "nvidia-gpu,sev-snp"})
    result = stack.run("preview", "--policy-pack", str(PACK), check=False)
    assert result.returncode != 0
    assert any("[mandatory]  vmimage-vm-capabilities" in line for line in violations(result.stdout))
    assert "VM dev/web requires capabilities its image" in result.stdout and "does not have: sev-snp" in result.stdout


def test_a_not_ready_image_in_a_namespace_where_vms_run(vm_stack):
    stack, base = vm_stack
    stack.configure({**base, "test:withMissing": "true", "test:required": "nvidia-gpu"})
    result = stack.run("preview", "--policy-pack", str(PACK), check=False)
    found = violations(result.stdout)
    assert [line.split("  ")[1] for line in found] == ["vmimage-not-ready-where-vms-run"], result.stdout
    assert "image 'Missing image'" in result.stdout and "is not Ready" in result.stdout
    stack.configure({**base, "test:withMissing": "false", "test:required": "nvidia-gpu"})  # breaks no rule
    result = stack.run("preview", "--policy-pack", str(PACK), check=False)
    assert result.returncode == 0 and violations(result.stdout) == [], result.stdout


def test_a_resource_the_preview_cannot_know_yet_is_skipped_alone(vm_stack):
    """A VM and an image whose namespace is unknown at preview leave every rule judging the rest."""
    stack, base = vm_stack
    stack.configure(
        {**base, "test:withMissing": "true", "test:required": "nvidia-gpu,sev-snp", "test:withUnknowns": "true"}
    )
    result = stack.run("preview", "--policy-pack", str(PACK), check=False)
    assert result.returncode != 0
    rules = sorted(line.split("  ")[1] for line in violations(result.stdout))
    assert rules == [
        "vmimage-not-ready-where-vms-run", "vmimage-unique-display-names", "vmimage-vm-capabilities"
    ], result.stdout  # fmt: skip
    assert "VM dev/web requires capabilities its image" in result.stdout
    assert "display name 'GPU image' appears twice in namespace dev: gpu and gpu-again" in result.stdout
    assert "image 'Missing image'" in result.stdout


SIGNED = {"type": "OVF", "ready": "True", "signature": {"status": "verified", "signer": "CN=Platform", "trusted": True}}


def signed_violations(output: str) -> list[str]:
    """This rule's lines (the other item rules read the sources, which these items do not have)."""
    return [line for line in violations(output) if "vmimage-production-signed" in line]


def signed_stack(tmp_path: Path, items: list[dict], libraries: list[dict]) -> Stack:
    stack = Stack(tmp_path / "signed", name="prod", program=ROOT / "tests" / "projects" / "signed_items")
    stack.configure({"test:items": items, "test:libraries": libraries})
    return stack


def test_production_images_must_be_signed_by_a_trusted_certificate(tmp_path):
    """The agreed shape, through the engine: each item judged on its becomes.signature, each created
    library on its security_policy; a value the preview cannot know yet is left to `up`."""
    unsigned = {**SIGNED, "signature": {"status": "unsigned", "signer": None, "trusted": False}}
    untrusted = {**SIGNED, "signature": {"status": "verified", "signer": "CN=Laptop", "trusted": False}}
    stack = signed_stack(
        tmp_path,
        items=[
            {"name": "signed", "source": "signed.ova", "becomes": SIGNED},
            {"name": "unsigned", "source": "unsigned.ova", "becomes": unsigned},
            {"name": "untrusted", "source": "untrusted.ova", "becomes": untrusted},
            {"name": "unread", "source": "https://user:hunter2@example.com/unread.ova"},  # no becomes at all
            {"name": "older", "source": "older.ova", "becomes": {"type": "OVF", "ready": "True"}},
            {"name": "tools", "source": "tools.iso", "becomes": {"type": "ISO", "ready": "True"}},
            {"name": "later", "source": "later.ova", "becomes": unsigned, "later": True},
        ],
        libraries=[{"name": "strict", "securityPolicy": "OVF default policy"}, {"name": "open"}],
    )
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps({"vmimage-production-signed": {"production": True}}))
    result = stack.run("preview", "--policy-pack", str(PACK), "--policy-pack-config", str(path), check=False)
    assert result.returncode != 0  # mandatory: the preview fails
    found = signed_violations(result.stdout)
    judged = sorted(line.rsplit(": ", 1)[1].rstrip(")") for line in found)
    assert judged == ["older", "open", "unread", "unsigned", "untrusted"], result.stdout
    assert all("[mandatory]  vmimage-production-signed" in line for line in found)
    assert "image 'unsigned' (unsigned.ova) is not signed: sign it with `vmimage sign`" in result.stdout
    assert "image 'untrusted' (untrusted.ova) is signed by CN=Laptop, whose certificate chains to none" in (
        result.stdout
    )
    assert "image 'unread' (https://***@example.com/unread.ova): its signature could not be checked" in result.stdout
    assert "image 'older' (older.ova): its signature could not be checked" in result.stdout
    assert "library 'open' has no security policy" in result.stdout and "set `securityPolicy:`" in result.stdout
    assert "hunter2" not in result.output

    path.write_text(json.dumps({"vmimage-production-signed": {"production": True, "enforcementLevel": "advisory"}}))
    advisory = stack.run("preview", "--policy-pack", str(PACK), "--policy-pack-config", str(path), check=False)
    assert advisory.returncode == 0, advisory.output  # the other rules here are advisory too
    assert len(signed_violations(advisory.stdout)) == 5
    assert all("[advisory]" in line for line in signed_violations(advisory.stdout))
    path.write_text("{}")  # off outside production
    off = stack.run("preview", "--policy-pack", str(PACK), "--policy-pack-config", str(path), check=False)
    assert signed_violations(off.stdout) == [], off.stdout

    # one the preview could not know yet is judged by `up`, once its becomes is known
    stack.configure({"test:items": [{"name": "later", "source": "later.ova", "becomes": unsigned, "later": True}]})
    path.write_text(json.dumps({"vmimage-production-signed": {"production": True}}))
    previewed = stack.run("preview", "--policy-pack", str(PACK), "--policy-pack-config", str(path), check=False)
    assert signed_violations(previewed.stdout) == [], previewed.output
    up = stack.run(
        "up", "--yes", "--skip-preview", "--policy-pack", str(PACK), "--policy-pack-config", str(path), check=False
    )
    assert up.returncode != 0
    assert "image 'later' (later.ova) is not signed" in up.output


def test_the_shipped_configs_hold_prod_to_signed_images_and_warn_in_staging():
    configs = {name: json.loads((PACK / f"{name}.json").read_text()) for name in ("prod", "staging", "dev")}
    assert configs["prod"]["vmimage-production-signed"] == {"production": True}  # mandatory: the pack's default
    assert configs["staging"]["vmimage-production-signed"] == {"production": True, "enforcementLevel": "advisory"}
    assert "vmimage-production-signed" not in configs["dev"]


def test_a_production_dev_stack_is_refused_until_its_images_are_signed(stack, simulator, samples, tmp_path):
    """The catalog's own resources on the simulator: the unsigned samples and the library the stack
    creates without a security policy are each named; the ISO is not judged."""
    result = preview(
        stack, dev_config(simulator, samples), {"vmimage-production-signed": {"production": True}}, tmp_path
    )
    assert result.returncode != 0
    found = [line for line in violations(result.stdout) if "vmimage-production-signed" in line]
    assert len(found) == 3 and all("[mandatory]" in line for line in found), result.stdout
    # the items' own signature facts (becomes.signature, read from each package): unsigned, not unknown
    for name in ("photon-5-sample", "ubuntu-24.04-sample"):
        assert f"image '{name}' (" in result.stdout and f"{name}.ova) is not signed" in result.stdout
    assert "could not be checked" not in result.stdout
    assert "image 'tools-sample'" not in result.stdout
    assert "library 'dev-images' has no security policy" in result.stdout
    assert PASSWORD not in result.output


def test_a_production_image_signed_by_vmimage_sign_with_a_trusted_ca_passes(stack, simulator, samples, tmp_path):
    """End to end: a package signed by `vmimage sign`, the CA in `vmimage:trustedCertificates`, a
    library with the security policy. The item's check verifies the signature against the stack's
    certificates, the rule reads it from becomes.signature: only the unsigned image is named."""
    from tests.test_signature import Pki, vmimage
    from vmimage.descriptor.samples import SAMPLES, write_ova

    (tmp_path / "pki").mkdir()
    pki = Pki(tmp_path / "pki")
    root = pki.root("Platform Root")
    signer = pki.issue("Platform Images", root)
    signed = tmp_path / "photon-5-signed.ova"
    unsigned = write_ova(tmp_path / "photon-5.ova", SAMPLES[0], manifest=False)
    done = vmimage("sign", str(unsigned), "--key", str(signer.key), "--cert", str(signer.pem), "-o", str(signed))
    assert done.returncode == 0, done.stderr
    config = dev_config(simulator, samples)
    (library,) = config["vmimage:libraries"]
    config["vmimage:libraries"] = [{**library, "securityPolicy": "ovf-strict"}]
    photon = next(image for image in config["vmimage:images"] if image["displayName"] == "photon-5-sample")
    photon["source"] = str(signed)
    config["vmimage:trustedCertificates"] = [str(root.pem)]
    result = preview(stack, config, {"vmimage-production-signed": {"production": True}}, tmp_path)
    found = [line for line in violations(result.stdout) if "vmimage-production-signed" in line]
    assert len(found) == 1 and "ubuntu-24-04-sample" in found[0], result.stdout
    assert "image 'ubuntu-24.04-sample' (" in result.stdout and "is not signed" in result.stdout
    assert "image 'photon-5-sample'" not in result.stdout and "has no security policy" not in result.stdout
    # the same package with the CA not trusted: named, with its signer
    config["vmimage:trustedCertificates"] = []
    result = preview(stack, config, {"vmimage-production-signed": {"production": True}}, tmp_path)
    assert "image 'photon-5-sample' (" in result.stdout
    assert "is signed by Platform Images, whose certificate chains to none in vmimage:trustedCertificates" in (
        result.stdout
    )
